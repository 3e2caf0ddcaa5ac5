/// Errors a user can cause or meet during a run; each says what is wrong and what to do.
public enum TrainingError: Error, CustomStringConvertible, Equatable {
    case invalidConfiguration(flag: String, problem: String)
    case data(file: String, problem: String, fix: String)
    case resume(file: String, problem: String, fix: String)
    case tooManyBadSteps(count: Int, lastCheckpoint: String?)
    case ranksDiverged(detail: String)

    public var description: String {
        switch self {
        case .invalidConfiguration(let flag, let problem):
            return "invalid \(flag): \(problem)"
        case .data(let file, let problem, let fix):
            return "\(file): \(problem) (\(fix))"
        case .resume(let file, let problem, let fix):
            return "cannot resume from \(file): \(problem) (\(fix))"
        case .tooManyBadSteps(let count, let last):
            return "stopping: \(count) consecutive steps had non-finite loss or gradients (lower --lr or --svi-lr, or add --svi-clip)"
                + (last.map { "; the last good checkpoint is \($0)" } ?? "")
        case .ranksDiverged(let detail):
            return "ranks' parameters diverged: \(detail)"
        }
    }
}
