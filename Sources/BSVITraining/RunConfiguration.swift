import BSVI
import BSVIStorage
import Foundation

/// Everything that defines a training run, in the sections the command line groups its flags
/// by (one option group per section). Stored as JSON (snake_case) in every checkpoint, so a
/// resumed run can check that it continues the same experiment (`ConfigurationField`).
public struct RunConfiguration: Codable, Equatable, Sendable {
    public var model = ModelSection()
    public var objective = ObjectiveSection()
    public var optimizer = OptimizerSection()
    public var schedule = ScheduleSection()
    public var evaluation = EvaluationSection()
    public var files = FilesSection()

    public init() {}

    /// The data file the program prepares from Debian's dataset-fashion-mnist when --data is not given.
    public static let defaultDataPath = DataImportRequest.fashionMNISTOutput
}

/// The networks: encoder x → hidden → (μ, log σ²), decoder z → reversed hidden → logits.
public struct ModelSection: Codable, Equatable, Sendable {
    /// Hidden widths in encoder order; the decoder uses them reversed.
    public var hiddenDims: [Int] = [200, 200]
    public var latentDim: Int = 50
    public var activation: Activation = .tanh
    public init() {}

    /// The shape for rows of `inputDim` pixels.
    public func shape(inputDim: Int) -> ModelShape {
        ModelShape(inputDim: inputDim, latentDim: latentDim, hiddenDims: hiddenDims, activation: activation)
    }
}

/// The method and its objective (DESIGN.md §2), including the per-example SVI refinement.
public struct ObjectiveSection: Codable, Equatable, Sendable {
    public var method: TrainingMethod = .bsvi
    /// iwae: importance samples; svi/bsvi: refinement steps.
    public var k: Int
    /// vae: Monte Carlo samples of the ELBO.
    public var vaeSamples: Int = 1
    public var pi: PiMode
    public var sviRule: RefinementRule
    public var sviLearningRate: Float
    public var sviMomentum: Float = 0.9
    public var sviClip: Float = 0

    /// The defaults of bsvi, the default method.
    public init() { self.init(method: .bsvi) }

    /// `method` with its own defaults (`MethodDefaults`).
    public init(method: TrainingMethod) {
        let d = MethodDefaults.of(method)
        self.method = method
        k = d.k
        pi = d.pi
        sviRule = d.sviRule
        sviLearningRate = d.sviLearningRate
    }

    /// Whether the method refines each example's λ (svi, bsvi).
    public var refines: Bool { method.refines }

    public var refinement: RefinementSettings {
        RefinementSettings(steps: refines ? k : 0, learningRate: sviLearningRate, rule: sviRule, momentum: sviMomentum, clipNorm: sviClip)
    }

    public var settings: ObjectiveSettings {
        ObjectiveSettings(method: method, k: k, vaeSamples: vaeSamples, pi: pi, refinement: refinement)
    }

    /// Refinement used when evaluating ELBO(λ_k) (and the refined proposal): the training rule
    /// with the training's k steps for svi/bsvi (at least one, so the amortization gap is always
    /// reported), and 5 steps for vae/iwae, whose k is not a number of steps.
    public var evaluationRefinement: RefinementSettings {
        var r = refinement
        r.steps = refines ? max(k, 1) : 5
        return r
    }
}

/// Each method's defaults for the settings the validation sweep of docs/results.md chose:
/// svi and bsvi each at its own best SVI rule, step size and k (tuned alternately until neither
/// changed; bsvi then π), on the first 2,000 validation rows of Fashion-MNIST after 10 epochs
/// (`scripts/reproduce`, 2026-12-01).
/// iwae's k (its number of samples) and vae were not swept.
public struct MethodDefaults: Equatable, Sendable {
    public var k: Int
    public var pi: PiMode = .uniform
    public var sviRule: RefinementRule = .adam
    public var sviLearningRate: Float = 0.05

    public static func of(_ method: TrainingMethod) -> MethodDefaults {
        switch method {
        case .bsvi: return MethodDefaults(k: 10, pi: .learned, sviRule: .adam, sviLearningRate: 0.1)
        case .svi: return MethodDefaults(k: 10, sviRule: .adam, sviLearningRate: 0.1)
        case .iwae, .vae: return MethodDefaults(k: 5)
        }
    }

    /// "10 (svi, bsvi), 5 (iwae)": a setting's defaults for the help text and README.
    public static func describe(_ value: (MethodDefaults) -> String, methods: [TrainingMethod]) -> String {
        var groups: [(String, [TrainingMethod])] = []
        for m in methods {
            let v = value(of(m))
            if let i = groups.firstIndex(where: { $0.0 == v }) { groups[i].1.append(m) } else { groups.append((v, [m])) }
        }
        if groups.count == 1 { return groups[0].0.description }
        return groups.map { "\($0.0) (\($0.1.map(\.rawValue).joined(separator: ", ")))" }.joined(separator: ", ")
    }
}

/// The model's optimizer and the examples each step sees.
public struct OptimizerSection: Codable, Equatable, Sendable {
    /// Global batch: split across ranks in slices that differ by at most one example.
    public var batchSize: Int = 100
    /// Adam step size for encoder, decoder (and π logits).
    public var learningRate: Float = 1e-3
    /// Initialization, data order and all noise.
    public var seed: UInt64 = 1
    public init() {}
}

/// How long the run goes and when it checkpoints and checks itself.
public struct ScheduleSection: Codable, Equatable, Sendable {
    public var epochs: Int = 10
    /// Stop after this many optimizer steps in total (0: no limit).
    public var maxSteps: Int = 0
    /// Also checkpoint every N steps (0: only at epoch ends and at the end).
    public var checkpointEvery: Int = 0
    public var keepCheckpoints: Int = 3
    /// Stop after this many consecutive non-finite steps.
    public var maxBadSteps: Int = 20
    /// Compare parameter checksums across ranks every N steps (0: off).
    public var consistencyEvery: Int = 1000
    /// Abort the job if a collective makes no progress for this many seconds (0: never).
    public var stallTimeout: Double = 300
    public init() {}
}

/// Importance-sampled evaluation during and after training.
public struct EvaluationSection: Codable, Equatable, Sendable {
    /// Validation evaluation every N epochs (0: none; the final test evaluation always runs).
    public var every: Int = 0
    public var samples: Int = 5000
    /// Bounds that keep one example's evaluation (the unit a stop signal waits for) to seconds or
    /// minutes: K = 10^7 is 2,000 times the paper's 5000, and 10^5 SVI steps 10,000 times its k.
    public static let maxSamples = 10_000_000
    public static let maxRefinementSteps = 100_000
    /// Evaluate only the first N rows of a split (0: all rows).
    public var limit: Int = 0
    public var proposal: Proposal = .encoder
    /// Skip the final test-split evaluation.
    public var skipFinal: Bool = false
    public init() {}
}

/// Where the run reads and writes.
public struct FilesSection: Codable, Equatable, Sendable {
    public var dataPath: String = RunConfiguration.defaultDataPath
    public var runDirectory: String = "runs/default"
    public init() {}
}

extension RunConfiguration {
    /// Checks the flags that do not need the data or the world size.
    public func validate() throws {
        func bad(_ flag: String, _ problem: String) -> TrainingError { .invalidConfiguration(flag: flag, problem: problem) }
        let o = objective, s = schedule, e = evaluation
        if !(0...EvaluationSection.maxRefinementSteps).contains(o.k) {
            throw bad("--k", "must be between 0 and \(EvaluationSection.maxRefinementSteps), got \(o.k)")
        }
        if o.method == .iwae && o.k < 1 { throw bad("--k", "iwae needs at least 1 sample, got \(o.k)") }
        if o.vaeSamples < 1 { throw bad("--vae-samples", "must be ≥ 1, got \(o.vaeSamples)") }
        // Float flags parse 1e39 as +∞, which `>= 0` lets through: a run would train and then trap
        // storing its configuration (JSON has no ∞), so each is checked finite too.
        if !(o.sviLearningRate >= 0 && o.sviLearningRate.isFinite) { throw bad("--svi-lr", "must be finite and ≥ 0, got \(o.sviLearningRate)") }
        if !(o.sviClip >= 0 && o.sviClip.isFinite) { throw bad("--svi-clip", "must be finite and ≥ 0 (0 disables clipping), got \(o.sviClip)") }
        if !(o.sviMomentum >= 0 && o.sviMomentum < 1) { throw bad("--svi-momentum", "must be in [0, 1), got \(o.sviMomentum)") }
        if model.latentDim < 1 { throw bad("--latent", "must be ≥ 1, got \(model.latentDim)") }
        if model.hiddenDims.contains(where: { $0 < 1 }) { throw bad("--hidden", "widths must be ≥ 1, got \(model.hiddenDims)") }
        if optimizer.batchSize < 1 { throw bad("--batch-size", "must be ≥ 1, got \(optimizer.batchSize)") }
        // Adam's first step is lr / (1 − β₁) = 10·lr, which must be a float too (the step would
        // make every parameter ±∞ rather than count as a bad step).
        if !(optimizer.learningRate > 0 && (optimizer.learningRate * 10).isFinite) {
            throw bad("--lr", "must be > 0 and at most \(Float.greatestFiniteMagnitude / 10), got \(optimizer.learningRate)")
        }
        if s.epochs < 0 { throw bad("--epochs", "must be ≥ 0, got \(s.epochs)") }
        if s.maxSteps < 0 { throw bad("--max-steps", "must be ≥ 0 (0: no limit), got \(s.maxSteps)") }
        if s.epochs == 0 && s.maxSteps == 0 { throw bad("--epochs", "give --epochs or --max-steps > 0") }
        if s.checkpointEvery < 0 { throw bad("--checkpoint-every", "must be ≥ 0, got \(s.checkpointEvery)") }
        if s.keepCheckpoints < 1 { throw bad("--keep-checkpoints", "must be ≥ 1, got \(s.keepCheckpoints)") }
        if s.maxBadSteps < 1 { throw bad("--max-bad-steps", "must be ≥ 1, got \(s.maxBadSteps)") }
        if s.consistencyEvery < 0 { throw bad("--consistency-every", "must be ≥ 0, got \(s.consistencyEvery)") }
        if !(s.stallTimeout >= 0 && s.stallTimeout.isFinite) { throw bad("--stall-timeout", "must be finite and ≥ 0 (0: off), got \(s.stallTimeout)") }
        if !(1...EvaluationSection.maxSamples).contains(e.samples) {
            throw bad("--eval-samples", "must be between 1 and \(EvaluationSection.maxSamples), got \(e.samples)")
        }
        if e.every < 0 { throw bad("--eval-every", "must be ≥ 0, got \(e.every)") }
        if e.limit < 0 { throw bad("--eval-limit", "must be ≥ 0, got \(e.limit)") }
    }

    /// The configuration as stored in checkpoints: JSON, sections as objects, snake_case keys.
    /// Throws for a non-finite setting, which `validate()` refuses up front.
    public func jsonString() throws -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        e.keyEncodingStrategy = .convertToSnakeCase
        return String(decoding: try e.encode(self), as: UTF8.self)
    }

    /// Reads a stored configuration: this layout, or the flat camelCase one of checkpoints
    /// written before the sections existed (2026-11 and earlier), so old checkpoints still load.
    public static func fromJSON(_ s: String) throws -> RunConfiguration {
        let d = JSONDecoder()
        d.keyDecodingStrategy = .convertFromSnakeCase
        do {
            return try d.decode(RunConfiguration.self, from: Data(s.utf8))
        } catch {
            guard let legacy = try? JSONDecoder().decode(FlatConfiguration.self, from: Data(s.utf8)) else { throw error }
            return legacy.sections
        }
    }

    /// The evaluation refinement of the run that wrote a checkpoint (its stored configuration),
    /// or of the default configuration for checkpoints written by other tools.
    public static func evaluationRefinement(checkpointConfig json: String?) -> RefinementSettings {
        (json.flatMap { try? fromJSON($0) } ?? RunConfiguration()).objective.evaluationRefinement
    }

    /// The --data a checkpoint's run trained on, as that run named it; nil without a readable
    /// configuration.
    public static func trainingDataPath(checkpointConfig json: String?) -> String? {
        json.flatMap { try? fromJSON($0) }?.files.dataPath
    }
}

/// The single flat configuration of checkpoints written before the sections (read only). Fields
/// added along the way are optional; a missing one takes today's default.
private struct FlatConfiguration: Decodable {
    var dataPath: String?
    var method: TrainingMethod
    var k: Int?
    var vaeSamples: Int?
    var pi: PiMode?
    var sviLearningRate: Float?
    var sviRule: RefinementRule?
    var sviMomentum: Float?
    var sviClip: Float?
    var hiddenDims: [Int]?
    var latentDim: Int?
    var activation: Activation?
    var batchSize: Int?
    var learningRate: Float?
    var epochs: Int?
    var maxSteps: Int?
    var seed: UInt64?
    var runDirectory: String?
    var evalEvery: Int?
    var evalSamples: Int?
    var evalLimit: Int?
    var evalProposal: Proposal?
    var skipFinalEval: Bool?
    var checkpointEvery: Int?
    var keepCheckpoints: Int?
    var maxBadSteps: Int?
    var consistencyEvery: Int?

    var sections: RunConfiguration {
        var c = RunConfiguration()
        // A missing field takes the default of that era (one for every method), not today's.
        c.objective.k = 5
        c.objective.pi = .uniform
        c.objective.sviRule = .adam
        c.objective.sviLearningRate = 0.05
        func take<T>(_ value: T?, _ target: inout T) { if let value { target = value } }
        take(hiddenDims, &c.model.hiddenDims)
        take(latentDim, &c.model.latentDim)
        take(activation, &c.model.activation)
        c.objective.method = method
        take(k, &c.objective.k)
        take(vaeSamples, &c.objective.vaeSamples)
        take(pi, &c.objective.pi)
        take(sviRule, &c.objective.sviRule)
        take(sviLearningRate, &c.objective.sviLearningRate)
        take(sviMomentum, &c.objective.sviMomentum)
        take(sviClip, &c.objective.sviClip)
        take(batchSize, &c.optimizer.batchSize)
        take(learningRate, &c.optimizer.learningRate)
        take(seed, &c.optimizer.seed)
        take(epochs, &c.schedule.epochs)
        take(maxSteps, &c.schedule.maxSteps)
        take(checkpointEvery, &c.schedule.checkpointEvery)
        take(keepCheckpoints, &c.schedule.keepCheckpoints)
        take(maxBadSteps, &c.schedule.maxBadSteps)
        take(consistencyEvery, &c.schedule.consistencyEvery)
        take(evalEvery, &c.evaluation.every)
        take(evalSamples, &c.evaluation.samples)
        take(evalLimit, &c.evaluation.limit)
        take(evalProposal, &c.evaluation.proposal)
        take(skipFinalEval, &c.evaluation.skipFinal)
        take(dataPath, &c.files.dataPath)
        take(runDirectory, &c.files.runDirectory)
        return c
    }
}
