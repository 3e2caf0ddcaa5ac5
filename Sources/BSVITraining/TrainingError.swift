/// Errors a user can cause or meet during a run; each says what is wrong and what to do.
public enum TrainingError: Error, CustomStringConvertible, Equatable, ExitStatusCarrying {
    case invalidConfiguration(flag: String, problem: String)
    case data(file: String, problem: String, fix: String)
    case resume(file: String, problem: String, fix: String)
    /// --resume names a file that is not there, or a run folder with nothing to resume.
    case nothingToResume(file: String, problem: String, fix: String)
    case tooManyBadSteps(count: Int, lastCheckpoint: String?)
    case ranksDiverged(detail: String)
    /// Files of the run cannot be created or opened (folder not writable or gone).
    case cannotWrite(file: String, problem: String)
    /// A write to an open file of the run failed part way (disk full, quota, I/O error): exit 74
    /// as for a checkpoint whose write fails, not 73.
    case writeFailed(file: String, problem: String)

    public var description: String {
        switch self {
        case .invalidConfiguration(let flag, let problem):
            return "invalid \(flag): \(problem)"
        case .data(let file, let problem, let fix):
            return "\(file): \(problem) (\(fix))"
        case .resume(let file, let problem, let fix), .nothingToResume(let file, let problem, let fix):
            return "cannot resume from \(file): \(problem) (\(fix))"
        case .tooManyBadSteps(let count, let last):
            return "stopping: \(count) consecutive steps had non-finite loss or gradients, or gradients too large for Adam (lower --lr or --svi-lr, or add --svi-clip)"
                + (last.map { "; the last good checkpoint is \($0)" } ?? "")
        case .ranksDiverged(let detail):
            return "ranks' parameters diverged: \(detail)"
        case .cannotWrite(let file, let problem), .writeFailed(let file, let problem):
            return "\(file): \(problem)"
        }
    }

    public var exitStatus: ExitStatus {
        switch self {
        case .invalidConfiguration: return .usage
        case .data, .resume: return .badData
        case .nothingToResume: return .missingInput
        case .tooManyBadSteps, .ranksDiverged: return .software
        case .cannotWrite: return .cannotCreateOutput
        case .writeFailed: return .ioError
        }
    }
}

/// An error every rank learned together — found by rank 0 and broadcast (bad checkpoint,
/// unwritable run dir), or decided from reduced values (too many non-finite steps, ranks
/// diverged) — so every rank can stop cleanly with the same status; only rank 0 reports it.
public struct CollectiveError: Error, CustomStringConvertible, ExitStatusCarrying, Codable {
    public let message: String
    public let exitStatus: ExitStatus
    public var silent: Bool

    public init(message: String, exitStatus: ExitStatus, silent: Bool = false) {
        self.message = message
        self.exitStatus = exitStatus
        self.silent = silent
    }

    /// `error` as every rank will know it; silent on all ranks but rank 0.
    public init(_ error: Error, isRoot: Bool) {
        self.init(message: "\(error)", exitStatus: ExitStatus(for: error), silent: !isRoot)
    }

    public var description: String { message }
}
