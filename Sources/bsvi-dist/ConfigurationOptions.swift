import ArgumentParser
import BSVI
import BSVIParallel
import BSVITraining

extension TrainingMethod: ExpressibleByArgument {}
extension PiMode: ExpressibleByArgument {}
extension RefinementRule: ExpressibleByArgument {}
extension Activation: ExpressibleByArgument {}
extension Proposal: ExpressibleByArgument {}
extension MatmulPrecision: ExpressibleByArgument {
    /// Refuses (64, on every rank together) a --matmul-precision some rank's CPU cannot run.
    func checkAvailable(comm: Communicator) throws {
        try comm.onEveryRank {
            if let reason = unavailableReason { throw CollectiveError(message: reason, exitStatus: .usage) }
        }
    }
}

// One option group per section of RunConfiguration: a flag is declared once, with the
// section's default, and maps onto exactly one setting.

struct ModelOptions: ParsableArguments {
    private static let d = ModelSection()
    @Option(help: "Hidden layer widths, comma separated (encoder order; the decoder mirrors them).")
    var hidden: String = d.hiddenDims.map(String.init).joined(separator: ",")
    @Option(help: "Latent dimension.") var latent: Int = d.latentDim
    @Option(help: "Hidden activation: tanh, relu or softplus.") var activation: Activation = d.activation

    func section() throws -> ModelSection {
        var s = ModelSection()
        let widths = hidden.split(separator: ",", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !widths.isEmpty, widths.allSatisfy({ $0 != nil }) else {
            throw TrainingError.invalidConfiguration(flag: "--hidden", problem: "'\(hidden)' is not a comma-separated list of widths, e.g. 200,200")
        }
        s.hiddenDims = widths.map { $0! }
        s.latentDim = latent
        s.activation = activation
        return s
    }
}

struct ObjectiveOptions: ParsableArguments {
    private static let d = ObjectiveSection()
    private static func defaults(_ value: (MethodDefaults) -> String, _ methods: [TrainingMethod]) -> String {
        "(default: " + MethodDefaults.describe(value, methods: methods) + ")"
    }
    @Option(help: "Training method: vae, iwae, svi or bsvi.") var method: TrainingMethod = d.method
    @Option(help: "iwae: importance samples; svi/bsvi: SVI refinement steps. \(defaults({ "\($0.k)" }, [.svi, .bsvi, .iwae]))")
    var k: Int?
    @Option(help: "vae: Monte Carlo samples of the ELBO.") var vaeSamples: Int = d.vaeSamples
    @Option(help: "bsvi mixture weights over the buffer: uniform, last or learned. \(defaults({ $0.pi.rawValue }, [.bsvi]))")
    var pi: PiMode?
    @Option(help: "SVI update rule: sgd, momentum or adam. \(defaults({ $0.sviRule.rawValue }, [.svi, .bsvi]))")
    var sviRule: RefinementRule?
    // vae and iwae do not refine while training, but store the η their checkpoints' evaluation refines with.
    @Option(help: "SVI refinement step size η (vae/iwae: the step size of eval's refinement). \(defaults({ "\($0.sviLearningRate)" }, [.svi, .bsvi, .iwae, .vae]))")
    var sviLr: Float?
    @Option(help: "Heavy-ball momentum (momentum rule) or β₁ (adam rule).") var sviMomentum: Float = d.sviMomentum
    @Option(help: "Per-example gradient-norm clip for SVI (0: off).") var sviClip: Float = d.sviClip

    /// Flags given that the method does not use (e.g. one flag set passed to every method of a
    /// sweep): kept with the run's settings, as given, but they change nothing.
    var unusedByMethod: [String] {
        var unused: [String] = []
        if k != nil && method == .vae { unused.append("--k (vae averages --vae-samples)") }
        if pi != nil && method != .bsvi { unused.append("--pi (bsvi only)") }
        if vaeSamples != Self.d.vaeSamples && method != .vae { unused.append("--vae-samples (vae only)") }
        return unused
    }

    /// The method's own defaults (MethodDefaults), overridden by every flag given.
    var section: ObjectiveSection { section(for: method) }

    /// `method`'s defaults, overridden by every flag given but --method (`bench --methods`).
    func section(for method: TrainingMethod) -> ObjectiveSection {
        var s = ObjectiveSection(method: method)
        if let k { s.k = k }
        s.vaeSamples = vaeSamples
        if let pi { s.pi = pi }
        if let sviRule { s.sviRule = sviRule }
        if let sviLr { s.sviLearningRate = sviLr }
        s.sviMomentum = sviMomentum
        s.sviClip = sviClip
        return s
    }
}

struct OptimizerOptions: ParsableArguments {
    private static let d = OptimizerSection()
    @Option(help: "Global batch size (split across ranks; any number of ranks up to the batch size).") var batchSize: Int = d.batchSize
    @Option(help: "Adam learning rate for the model (may change on --resume).") var lr: Float = d.learningRate
    @Option(help: "Random seed (initialization, data order, noise).") var seed: UInt64 = d.seed

    var section: OptimizerSection {
        var s = OptimizerSection()
        s.batchSize = batchSize
        s.learningRate = lr
        s.seed = seed
        return s
    }
}

struct ScheduleOptions: ParsableArguments {
    private static let d = ScheduleSection()
    @Option(help: "Number of epochs (counted over the whole run, including resumed parts).") var epochs: Int = d.epochs
    @Option(help: "Stop after this many steps in total (0: no limit).") var maxSteps: Int = d.maxSteps
    @Option(help: "Also write a checkpoint every N steps (0: only at epoch ends and at the end).") var checkpointEvery: Int = d.checkpointEvery
    @Option(help: "How many checkpoints to keep in <run-dir>/checkpoints.") var keepCheckpoints: Int = d.keepCheckpoints
    @Option(help: "Stop after this many consecutive non-finite steps.") var maxBadSteps: Int = d.maxBadSteps
    @Option(help: "Compare parameter checksums across ranks every N steps (0: off).") var consistencyEvery: Int = d.consistencyEvery
    @Option(help: "Abort the job if a collective has not completed in this many seconds (0: never).") var stallTimeout: Double = d.stallTimeout

    var section: ScheduleSection {
        var s = ScheduleSection()
        s.epochs = epochs
        s.maxSteps = maxSteps
        s.checkpointEvery = checkpointEvery
        s.keepCheckpoints = keepCheckpoints
        s.maxBadSteps = maxBadSteps
        s.consistencyEvery = consistencyEvery
        s.stallTimeout = stallTimeout
        return s
    }
}

struct EvaluationOptions: ParsableArguments {
    private static let d = EvaluationSection()
    @Option(help: "Evaluate on the validation split every N epochs (0: only the final test evaluation).") var evalEvery: Int = d.every
    @Option(help: "Importance samples K per example for log-likelihood evaluation.") var evalSamples: Int = d.samples
    @Option(help: "Evaluate only the first N rows of a split (0: all).") var evalLimit: Int = d.limit
    @Option(help: "Proposal for importance sampling: encoder (λ₀) or refined (λ_k).") var evalProposal: Proposal = d.proposal
    @Flag(help: "Skip the final test-split evaluation.") var noFinalEval = false

    var section: EvaluationSection {
        var s = EvaluationSection()
        s.every = evalEvery
        s.samples = evalSamples
        s.limit = evalLimit
        s.proposal = evalProposal
        s.skipFinal = noFinalEval
        return s
    }
}

struct FileOptions: ParsableArguments {
    @Option(help: "Dataset (HDF5 with /train, /valid, /test). Default: \(RunConfiguration.defaultDataPath), prepared from Debian's dataset-fashion-mnist if missing.")
    var data: String?
    @Option(help: "Folder for metrics.csv, checkpoints/, final.h5 and summary.json (one run at a time).")
    var runDir: String = FilesSection().runDirectory

    var section: FilesSection {
        var s = FilesSection()
        s.dataPath = data ?? RunConfiguration.defaultDataPath
        s.runDirectory = runDir
        return s
    }
}
