import ArgumentParser
import BSVIStorage

extension ImportFormat: ExpressibleByArgument {}
extension BinarizationMode: ExpressibleByArgument {}

/// Prints an error as one line and gives the exit status of sysexits.h (DESIGN.md §6) to
/// throw: the error's own kind when it has one, else `fallback`.
func failure(_ error: Error, fallback: FailureKind) -> ExitCode {
    printError("error: \(error)")
    let kind = (error as? StorageError)?.kind ?? fallback
    return ExitCode(kind.rawValue)
}
