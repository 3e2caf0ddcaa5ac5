import BSVIParallel
import Foundation

/// Rank 0's progress output: a live, redrawn bar on a terminal; otherwise a line every
/// `interval` seconds, so logs of batch jobs stay readable.
public final class ProgressReporter {
    private let enabled: Bool
    private let isTerminal: Bool
    private let interval: TimeInterval
    private var lastPrint = Date.distantPast
    private var barShown = false

    public init(enabled: Bool, interval: TimeInterval = 10) {
        self.enabled = enabled
        // mpirun hands ranks a pseudo-terminal even when its own output goes to a file, so
        // under MPI we print plain periodic lines.
        isTerminal = isatty(STDOUT_FILENO) != 0 && !launchedByMPI
        self.interval = interval
    }

    /// A progress update; throttled on terminals too (at most ~10 redraws per second).
    public func update(_ text: String, fraction: Double) {
        guard enabled else { return }
        let now = Date()
        if isTerminal {
            guard now.timeIntervalSince(lastPrint) >= 0.1 else { return }
            let width = 24
            let filled = max(0, min(width, Int(fraction * Double(width))))
            let bar = String(repeating: "=", count: filled) + String(repeating: " ", count: width - filled)
            print("\r\u{1B}[2K[\(bar)] \(text)", terminator: "")
            fflush(stdout)
            barShown = true
        } else {
            guard now.timeIntervalSince(lastPrint) >= interval else { return }
            print(text)
            fflush(stdout)
        }
        lastPrint = now
    }

    /// A permanent line (epoch summaries, evaluations, messages).
    public func line(_ text: String) {
        guard enabled else { return }
        if barShown { print("\r\u{1B}[2K", terminator: ""); barShown = false }
        print(text)
        fflush(stdout)
    }
}
