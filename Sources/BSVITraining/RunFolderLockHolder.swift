import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Who holds a run folder's lock, as written in `<run-dir>/.lock`: the host, the process id and
/// when the run started. Only used to name the holder in messages and to recognise a lock file a
/// run on this host left behind; the lock itself is the kernel's (see `RunFolderLock`).
public struct RunFolderLockHolder: Equatable, Sendable, CustomStringConvertible {
    public let host: String
    public let pid: Int32
    /// Whole seconds, so that the value survives a round trip through the file.
    public let since: Date

    public init(host: String, pid: Int32, since: Date) {
        self.host = host
        self.pid = pid
        self.since = Date(timeIntervalSince1970: since.timeIntervalSince1970.rounded(.down))
    }

    /// This process, now.
    public static func current() -> RunFolderLockHolder {
        RunFolderLockHolder(host: localHostName(), pid: getpid(), since: Date())
    }

    /// "pid 4242 on host node17, since 2026-11-25T10:00:00Z"
    public var description: String { "pid \(pid) on host \(host), since \(Self.timestamp(since))" }

    /// The file's text: one `key=value` per line, readable with `cat`.
    var fileContents: String { "host=\(host)\npid=\(pid)\nsince=\(Self.timestamp(since))\n" }

    /// Parses `fileContents`; nil for anything else (a file cut short, edited, or not ours).
    init?(fileContents text: String) {
        var fields: [Substring: Substring] = [:]
        for line in text.split(separator: "\n") {
            guard let eq = line.firstIndex(of: "=") else { continue }
            fields[line[..<eq]] = line[line.index(after: eq)...]
        }
        guard let host = fields["host"], !host.isEmpty, let pid = fields["pid"].flatMap({ Int32($0) }), pid > 0,
              let since = fields["since"].flatMap({ ISO8601DateFormatter().date(from: String($0)) }) else { return nil }
        self.init(host: String(host), pid: pid, since: since)
    }

    static func timestamp(_ date: Date) -> String { ISO8601DateFormatter().string(from: date) }
}
