import Foundation

/// Open MPI has no collective timeout: a rank whose peer vanished (host cut off, process
/// frozen) would wait forever. Like Horovod's stall inspector, this watchdog runs on its own
/// thread; the communicator marks each collective's start and end, and if one has been in
/// progress longer than `timeout` seconds the watchdog reports what the rank was waiting for
/// and calls `onStall` (which aborts the job).
public final class StallWatchdog {
    public let timeout: TimeInterval
    private let lock = NSLock()
    private var current: (what: String, since: Date)?
    private var fired = false
    private let onStall: (String) -> Void

    public init(timeout: TimeInterval, onStall: @escaping (String) -> Void) {
        self.timeout = timeout
        self.onStall = onStall
        guard timeout > 0 else { return }
        let poll = min(1.0, timeout / 4)
        Thread.detachNewThread { [weak self] in
            while let self {
                Thread.sleep(forTimeInterval: poll)
                self.check()
            }
        }
    }

    /// Runs `body` (one collective) under the watchdog.
    @inline(__always)
    public func watch<T>(_ what: @autoclosure () -> String, _ body: () -> T) -> T {
        guard timeout > 0 else { return body() }
        lock.lock()
        current = (what(), Date())
        lock.unlock()
        let result = body()
        lock.lock()
        current = nil
        lock.unlock()
        return result
    }

    func check() {
        lock.lock()
        var message: String? = nil
        if let c = current, !fired, Date().timeIntervalSince(c.since) > timeout {
            fired = true
            message = String(format: "stalled for %.0f s in %@ (no progress from the other ranks within --stall-timeout %.0f s); aborting the job",
                             Date().timeIntervalSince(c.since), c.what, timeout)
        }
        lock.unlock()
        if let message { onStall(message) }
    }
}
