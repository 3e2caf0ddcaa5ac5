import ArgumentParser
import BSVIStorage

extension ImportFormat: ExpressibleByArgument {}
extension BinarizationMode: ExpressibleByArgument {}
extension DataSplit: ExpressibleByArgument {}

/// `failure(_:)` for prepare-data, whose storage errors without a kind are write failures.
func failure(_ error: Error, fallback: FailureKind) -> ExitCode {
    failure((error as? StorageError)?.classified(as: fallback) ?? error)
}
