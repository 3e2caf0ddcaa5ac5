import Foundation

/// Progress of a long conversion: a line at most every `interval` seconds, so a conversion
/// that takes less than that prints nothing and a long one shows it is alive.
public final class ImportProgress {
    private let report: (String) -> Void
    private let interval: TimeInterval
    private var last = Date()

    public init(interval: TimeInterval = 2, report: @escaping (String) -> Void) {
        self.interval = interval
        self.report = report
    }

    /// A reporter that reports nothing.
    public static var silent: ImportProgress { ImportProgress { _ in } }

    func update(_ text: @autoclosure () -> String) {
        let now = Date()
        guard now.timeIntervalSince(last) >= interval else { return }
        last = now
        report(text())
    }
}
