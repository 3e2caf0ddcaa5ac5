/// Deliberate faults for the reliability tests, set by hidden `train` flags
/// (`--inject-nan STEP:RANK`, `--inject-drift STEP:RANK`, `--inject-stop-during evaluation|checkpoint`). Steps count from 0 (the step about to
/// run); an empty value injects nothing, which is the default.
public struct FaultInjection: Sendable {
    /// (step range, rank) pairs whose gradient is made NaN before the allreduce.
    public var nanGradients: [(steps: ClosedRange<Int>, rank: Int)] = []
    /// (step, rank) pairs whose parameters are nudged by one ulp after the step (a silent drift).
    public var parameterDrift: [(step: Int, rank: Int)] = []
    /// Rank 0 sends itself SIGTERM in the middle of its first evaluation or checkpoint write.
    public var stopSignalDuring: Phase? = nil

    public enum Phase: String, Sendable {
        case evaluation, checkpoint
    }

    public init() {}

    func poisonsGradient(step: Int, rank: Int) -> Bool {
        nanGradients.contains { $0.rank == rank && $0.steps.contains(step) }
    }

    func perturbsParameters(step: Int, rank: Int) -> Bool {
        parameterDrift.contains { $0.step == step && $0.rank == rank }
    }

    /// Parses "FIRST[-LAST]:RANK".
    public static func parse(_ s: String) -> (steps: ClosedRange<Int>, rank: Int)? {
        let parts = s.split(separator: ":")
        guard parts.count == 2, let rank = Int(parts[1]) else { return nil }
        let bounds = parts[0].split(separator: "-").compactMap { Int($0) }
        guard bounds.count == 1 || bounds.count == 2, bounds[0] >= 0, bounds.last! >= bounds[0] else { return nil }
        return (bounds[0]...bounds.last!, rank)
    }
}
