import BSVI
import BSVIStorage

/// The exit statuses of every subcommand (sysexits.h; DESIGN.md §6; README "Exit status").
public enum ExitStatus: Int32, Codable, Sendable {
    /// Success, or a graceful stop (signal) that wrote its checkpoint.
    case success = 0
    /// EX_USAGE: a bad flag or flag value (also BSVI_KERNELS).
    case usage = 64
    /// EX_DATAERR: a dataset or checkpoint that is readable but wrong (including a checkpoint of
    /// another experiment for --resume).
    case badData = 65
    /// EX_NOINPUT: an input file (dataset, checkpoint) is missing.
    case missingInput = 66
    /// EX_SOFTWARE: the computation itself failed (non-finite steps beyond --max-bad-steps,
    /// ranks whose parameters diverged).
    case software = 70
    /// EX_CANTCREAT: an output cannot be created (the run folder is in use or not writable, an
    /// output file exists without --force).
    case cannotCreateOutput = 73
    /// EX_IOERR: reading or writing failed part way (disk full, I/O or communication error).
    case ioError = 74
    /// EX_TEMPFAIL: stopped by a signal before finishing, without a checkpoint to continue from
    /// (e.g. `eval` interrupted); run the command again.
    case stopped = 75

    /// The status for an error that reached the top of a command.
    public init(for error: Error) {
        switch error {
        case let e as ExitStatusCarrying: self = e.exitStatus
        case let e as StorageError: self = e.kind.map { ExitStatus(rawValue: $0.rawValue) ?? .badData } ?? .badData
        case is KernelPathError: self = .usage
        default: self = .software
        }
    }
}

/// Errors that know their exit status.
public protocol ExitStatusCarrying: Error {
    var exitStatus: ExitStatus { get }
}
