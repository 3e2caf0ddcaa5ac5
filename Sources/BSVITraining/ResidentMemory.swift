import Foundation

/// This process's memory from /proc/self/status (Linux), in MiB: the current resident set
/// (VmRSS) and its peak so far (VmHWM). nil where /proc is unavailable.
public enum ResidentMemory {
    static func field(_ name: String) -> Double? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }),
              let kb = Double(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") else { return nil }
        return kb / 1024
    }

    public static var currentMiB: Double? { field("VmRSS") }
    public static var peakMiB: Double? { field("VmHWM") }
}
