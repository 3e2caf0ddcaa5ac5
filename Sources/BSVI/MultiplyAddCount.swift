import Foundation

/// Optional count of the multiply-adds the matrix products actually issue: m·k·n for every
/// m×k by k×n product of `gemm`, `multiply` and `accumulateTransposedProduct`, counted once,
/// where the product runs (a `multiply` that falls back to BLAS is counted by its `gemm`). The
/// bias additions and bias gradients that ride along are not products and are not counted. Tests
/// check the benchmark's useful-work formula against this count instead of restating it.
///
/// Off unless a `counting` scope is open; then each product pays one predictable branch, as
/// StepProfile's probes do. The count is per thread, like the kernel path, so a test that counts
/// can run beside tests that do not: it sees only the products issued on its own thread.
public enum MultiplyAddCount {
    /// Whether any thread is counting (read without a lock on the hot path; written under one).
    nonisolated(unsafe) public private(set) static var enabled = false
    nonisolated(unsafe) private static var openScopes = 0
    private static let lock = NSLock()

    /// Runs `body` on this thread and returns its result with the multiply-adds of the products
    /// it issued (on this thread).
    public static func counting<T>(_ body: () throws -> T) rethrows -> (result: T, multiplyAdds: Int) {
        lock.withLock {
            openScopes += 1
            enabled = true
        }
        defer {
            lock.withLock {
                openScopes -= 1
                enabled = openScopes > 0
            }
        }
        let tally = Tally.ofThisThread
        let before = tally.multiplyAdds
        let result = try body()
        return (result, tally.multiplyAdds - before)
    }

    /// Adds one m×k by k×n product when counting.
    @inline(__always)
    static func record(m: Int, k: Int, n: Int) {
        guard enabled else { return }
        Tally.ofThisThread.multiplyAdds += m * k * n
    }

    /// One thread's running count (kept in the thread's dictionary: only touched while counting).
    private final class Tally {
        var multiplyAdds = 0
        static let key = "bsvi.MultiplyAddCount"

        static var ofThisThread: Tally {
            let dictionary = Thread.current.threadDictionary
            if let tally = dictionary[key] as? Tally { return tally }
            let tally = Tally()
            dictionary[key] = tally
            return tally
        }
    }
}
