import BSVI
import Foundation

/// Everything that defines a training run. Stored as JSON in every checkpoint, so a resumed
/// run can check that it continues the same experiment.
public struct TrainingConfiguration: Codable, Equatable, Sendable {
    public var dataPath: String = "data/fashion-mnist.h5"
    public var method: TrainingMethod = .bsvi
    /// iwae samples, or svi/bsvi refinement steps.
    public var k: Int = 5
    public var vaeSamples: Int = 1
    public var pi: PiMode = .uniform
    public var sviLearningRate: Float = 0.05
    public var sviRule: RefinementRule = .adam
    public var sviMomentum: Float = 0.9
    public var sviClip: Float = 0
    public var hiddenDims: [Int] = [200, 200]
    public var latentDim: Int = 50
    public var activation: Activation = .tanh
    /// Global batch: split evenly across ranks.
    public var batchSize: Int = 100
    public var learningRate: Float = 1e-3
    public var epochs: Int = 10
    /// Stop after this many optimizer steps in total (0: no limit).
    public var maxSteps: Int = 0
    public var seed: UInt64 = 1
    public var runDirectory: String = "runs/default"
    /// Validation evaluation every N epochs (0: none; the final test evaluation always runs).
    public var evalEvery: Int = 0
    public var evalSamples: Int = 5000
    /// Evaluate only the first N rows of the split (0: all rows).
    public var evalLimit: Int = 0
    public var evalProposal: Proposal = .encoder
    /// Skip the final test-split evaluation.
    public var skipFinalEval: Bool = false
    public var checkpointEvery: Int = 0
    public var keepCheckpoints: Int = 3
    public var maxBadSteps: Int = 20
    public var consistencyEvery: Int = 1000

    public init() {}

    public var refinement: RefinementSettings {
        RefinementSettings(steps: method == .svi || method == .bsvi ? k : 0, learningRate: sviLearningRate,
                           rule: sviRule, momentum: sviMomentum, clipNorm: sviClip)
    }

    public var objective: ObjectiveSettings {
        ObjectiveSettings(method: method, k: k, vaeSamples: vaeSamples, pi: pi, refinement: refinement)
    }

    /// Refinement used when evaluating ELBO(λ_k) (and the refined proposal): the training rule
    /// with the training's k steps for svi/bsvi (at least one, so the amortization gap is always
    /// reported), and 5 steps for vae/iwae, whose k is not a number of steps.
    public var evaluationRefinement: RefinementSettings {
        var r = refinement
        r.steps = method == .svi || method == .bsvi ? max(k, 1) : 5
        return r
    }

    /// The evaluation refinement of the run that wrote a checkpoint (its stored configuration),
    /// or of the default configuration for checkpoints written by other tools.
    public static func evaluationRefinement(checkpointConfig json: String?) -> RefinementSettings {
        (json.flatMap { try? fromJSON($0) } ?? TrainingConfiguration()).evaluationRefinement
    }

    public var modelShape: ModelShape {
        ModelShape(inputDim: 0, latentDim: latentDim, hiddenDims: hiddenDims, activation: activation)
    }

    /// Checks the flags that do not need the data or the world size.
    public func validate() throws {
        func bad(_ flag: String, _ problem: String) -> TrainingError { .invalidConfiguration(flag: flag, problem: problem) }
        if k < 0 { throw bad("--k", "must be ≥ 0, got \(k)") }
        if method == .iwae && k < 1 { throw bad("--k", "iwae needs at least 1 sample, got \(k)") }
        if vaeSamples < 1 { throw bad("--vae-samples", "must be ≥ 1, got \(vaeSamples)") }
        if batchSize < 1 { throw bad("--batch-size", "must be ≥ 1, got \(batchSize)") }
        if !(learningRate > 0) { throw bad("--lr", "must be > 0, got \(learningRate)") }
        if !(sviLearningRate >= 0) { throw bad("--svi-lr", "must be ≥ 0, got \(sviLearningRate)") }
        if !(sviClip >= 0) { throw bad("--svi-clip", "must be ≥ 0 (0 disables clipping), got \(sviClip)") }
        if !(sviMomentum >= 0 && sviMomentum < 1) { throw bad("--svi-momentum", "must be in [0, 1), got \(sviMomentum)") }
        if latentDim < 1 { throw bad("--latent", "must be ≥ 1, got \(latentDim)") }
        if hiddenDims.contains(where: { $0 < 1 }) { throw bad("--hidden", "widths must be ≥ 1, got \(hiddenDims)") }
        if epochs < 0 { throw bad("--epochs", "must be ≥ 0, got \(epochs)") }
        if maxSteps < 0 { throw bad("--max-steps", "must be ≥ 0 (0: no limit), got \(maxSteps)") }
        if epochs == 0 && maxSteps == 0 { throw bad("--epochs", "give --epochs or --max-steps > 0") }
        if evalSamples < 1 { throw bad("--eval-samples", "must be ≥ 1, got \(evalSamples)") }
        if evalEvery < 0 { throw bad("--eval-every", "must be ≥ 0, got \(evalEvery)") }
        if evalLimit < 0 { throw bad("--eval-limit", "must be ≥ 0, got \(evalLimit)") }
        if checkpointEvery < 0 { throw bad("--checkpoint-every", "must be ≥ 0, got \(checkpointEvery)") }
        if keepCheckpoints < 1 { throw bad("--keep-checkpoints", "must be ≥ 1, got \(keepCheckpoints)") }
        if maxBadSteps < 1 { throw bad("--max-bad-steps", "must be ≥ 1, got \(maxBadSteps)") }
        if consistencyEvery < 0 { throw bad("--consistency-every", "must be ≥ 0, got \(consistencyEvery)") }
    }

    public func jsonString() -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return String(decoding: try! e.encode(self), as: UTF8.self)
    }

    public static func fromJSON(_ s: String) throws -> TrainingConfiguration {
        try JSONDecoder().decode(TrainingConfiguration.self, from: Data(s.utf8))
    }
}
