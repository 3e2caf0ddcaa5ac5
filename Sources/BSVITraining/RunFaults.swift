import BSVI
import Foundation

/// The points where the reliability tests break a run on purpose. The loop calls them on every
/// run; the run of a user has `NoFaults`, whose methods do nothing.
public protocol RunFaults: Sendable {
    /// This rank's gradient of `step` (counted from 0), just before the exchange.
    func beforeExchange(step: Int, rank: Int, gradients: FloatBuffer)
    /// This rank's parameters after the update of `step`.
    func afterUpdate(step: Int, rank: Int, parameters: FloatBuffer)
    /// Rank 0 is in the middle of an evaluation or a checkpoint write.
    func during(_ phase: RunPhase, rank: Int)
}

public enum RunPhase: String, Sendable {
    case evaluation, checkpoint
}

public struct NoFaults: RunFaults {
    public init() {}
    public func beforeExchange(step: Int, rank: Int, gradients: FloatBuffer) {}
    public func afterUpdate(step: Int, rank: Int, parameters: FloatBuffer) {}
    public func during(_ phase: RunPhase, rank: Int) {}
}

/// Deliberate faults set by the hidden `train` flags `--inject-nan FIRST[-LAST]:RANK` (the
/// rank's gradient becomes NaN before the allreduce), `--inject-drift STEP:RANK` (its parameters
/// move by one ulp after the step: a silent drift) and `--inject-stop-during evaluation|checkpoint`
/// (rank 0 sends itself SIGTERM in the middle of its first evaluation or checkpoint write). Steps
/// count from 0.
public final class InjectedFaults: RunFaults, @unchecked Sendable {
    public var nanGradients: [(steps: ClosedRange<Int>, rank: Int)] = []
    public var parameterDrift: [(step: Int, rank: Int)] = []
    public var stopSignalDuring: RunPhase? = nil
    private var stopSent = false

    public init() {}

    public func beforeExchange(step: Int, rank: Int, gradients: FloatBuffer) {
        if nanGradients.contains(where: { $0.rank == rank && $0.steps.contains(step) }) { gradients[0] = .nan }
    }

    public func afterUpdate(step: Int, rank: Int, parameters: FloatBuffer) {
        if parameterDrift.contains(where: { $0.step == step && $0.rank == rank }) { parameters[0] = parameters[0].nextUp }
    }

    public func during(_ phase: RunPhase, rank: Int) {
        guard rank == 0, stopSignalDuring == phase, !stopSent else { return }
        stopSent = true
        kill(getpid(), SIGTERM)
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
