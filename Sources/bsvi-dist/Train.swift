import ArgumentParser
import BSVI
import BSVIParallel
import BSVIStorage
import BSVITraining
import CStopSignal
import Foundation

extension TrainingMethod: ExpressibleByArgument {}
extension PiMode: ExpressibleByArgument {}
extension RefinementRule: ExpressibleByArgument {}
extension Activation: ExpressibleByArgument {}
extension Proposal: ExpressibleByArgument {}
extension DataSplit: ExpressibleByArgument {}

/// Flag defaults are those of TrainingConfiguration, the one place they are set.
private let defaults = TrainingConfiguration()

/// The flags that define a training run (shared by `train` and `bench`).
struct ModelAndMethodOptions: ParsableArguments {
    @Option(help: "Training method: vae, iwae, svi or bsvi.") var method: TrainingMethod = defaults.method
    @Option(help: "iwae: importance samples; svi/bsvi: SVI refinement steps.") var k: Int = defaults.k
    @Option(help: "vae: Monte Carlo samples of the ELBO.") var vaeSamples: Int = defaults.vaeSamples
    @Option(help: "bsvi mixture weights over the buffer: uniform, last or learned.") var pi: PiMode = defaults.pi
    @Option(help: "SVI refinement step size η.") var sviLr: Float = defaults.sviLearningRate
    @Option(help: "SVI update rule: sgd, momentum or adam.") var sviRule: RefinementRule = defaults.sviRule
    @Option(help: "Heavy-ball momentum (momentum rule) or β₁ (adam rule).") var sviMomentum: Float = defaults.sviMomentum
    @Option(help: "Per-example gradient-norm clip for SVI (0: off).") var sviClip: Float = defaults.sviClip
    @Option(help: "Hidden layer widths, comma separated (encoder order).") var hidden: String = defaults.hiddenDims.map(String.init).joined(separator: ",")
    @Option(help: "Latent dimension.") var latent: Int = defaults.latentDim
    @Option(help: "Hidden activation: tanh, relu or softplus.") var activation: Activation = defaults.activation
    @Option(help: "Global batch size, split across the ranks (slices differ by at most one example; at least one per rank).") var batchSize: Int = defaults.batchSize
    @Option(help: "Adam learning rate for the model.") var lr: Float = defaults.learningRate
    @Option(help: "Random seed (initialization, data order, noise).") var seed: UInt64 = defaults.seed

    func apply(to c: inout TrainingConfiguration) throws {
        c.method = method
        c.k = k
        c.vaeSamples = vaeSamples
        c.pi = pi
        c.sviLearningRate = sviLr
        c.sviRule = sviRule
        c.sviMomentum = sviMomentum
        c.sviClip = sviClip
        let widths = hidden.split(separator: ",", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !widths.isEmpty, widths.allSatisfy({ $0 != nil }) else {
            throw TrainingError.invalidConfiguration(flag: "--hidden", problem: "'\(hidden)' is not a comma-separated list of widths, e.g. 200,200")
        }
        c.hiddenDims = widths.map { $0! }
        c.latentDim = latent
        c.activation = activation
        c.batchSize = batchSize
        c.learningRate = lr
        c.seed = seed
    }
}

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a VAE (the default command). Run under mpirun for data-parallel training.")

    @Option(help: "Dataset (HDF5 with /train, /valid, /test). Default: data/fashion-mnist.h5, prepared from Debian's dataset-fashion-mnist if missing.")
    var data: String?
    @OptionGroup var model: ModelAndMethodOptions
    @Option(help: "Number of epochs (counted over the whole run, including resumed parts).") var epochs: Int = defaults.epochs
    @Option(help: "Stop after this many steps in total (0: no limit).") var maxSteps: Int = defaults.maxSteps
    @Option(help: "Folder for metrics.csv, checkpoints/ and final.h5.") var runDir: String = defaults.runDirectory
    @Option(help: "Evaluate on the validation split every N epochs (0: only the final test evaluation).") var evalEvery: Int = defaults.evalEvery
    @Option(help: "Importance samples K per example for log-likelihood evaluation.") var evalSamples: Int = defaults.evalSamples
    @Option(help: "Evaluate only the first N rows of a split (0: all).") var evalLimit: Int = defaults.evalLimit
    @Option(help: "Proposal for importance sampling: encoder (λ₀) or refined (λ_k).") var evalProposal: Proposal = defaults.evalProposal
    @Flag(help: "Skip the final test-split evaluation.") var noFinalEval = false
    @Option(help: "Also write a checkpoint every N steps (0: only at epoch ends and at the end).") var checkpointEvery: Int = defaults.checkpointEvery
    @Option(help: "How many checkpoints to keep in <run-dir>/checkpoints.") var keepCheckpoints: Int = defaults.keepCheckpoints
    @Option(help: "Continue from 'auto' (newest valid checkpoint in --run-dir; a folder with no run yet starts fresh) or a checkpoint path. Any number of ranks ≤ --batch-size may continue.") var resume: String?
    @Option(help: "Stop after this many consecutive non-finite steps.") var maxBadSteps: Int = defaults.maxBadSteps
    @Option(help: "Compare parameter checksums across ranks every N steps (0: off).") var consistencyEvery: Int = defaults.consistencyEvery
    @Option(help: "Abort the job if a collective has not completed in this many seconds (0: never).") var stallTimeout: Double = 300
    @Option(help: .hidden) var dumpGradient: String?
    @Option(help: .hidden) var injectNan: [String] = []
    @Option(help: .hidden) var injectDrift: [String] = []
    @Option(help: .hidden) var injectStopDuring: String?

    func configuration() throws -> TrainingConfiguration {
        var c = TrainingConfiguration()
        c.dataPath = data ?? c.dataPath
        try model.apply(to: &c)
        c.epochs = epochs
        c.maxSteps = maxSteps
        c.runDirectory = runDir
        c.evalEvery = evalEvery
        c.evalSamples = evalSamples
        c.evalLimit = evalLimit
        c.evalProposal = evalProposal
        c.skipFinalEval = noFinalEval
        c.checkpointEvery = checkpointEvery
        c.keepCheckpoints = keepCheckpoints
        c.maxBadSteps = maxBadSteps
        c.consistencyEvery = consistencyEvery
        try c.validate()
        // Checked here too (the trainer checks again) so that every rank finds it before MPI starts.
        try ShardPlan.checkBatchSplits(c.batchSize, across: launchWorldSize)
        return c
    }

    func run() throws {
        let config: TrainingConfiguration
        do { config = try configuration() } catch { failBeforeStart(error) }
        bsvi_install_stop_handlers()
        setBLASThreads(1)
        guard stallTimeout >= 0 else { failBeforeStart(TrainingError.invalidConfiguration(flag: "--stall-timeout", problem: "must be ≥ 0 (0: off), got \(stallTimeout)")) }
        let comm = makeCommunicator(stallTimeout: stallTimeout)
        var options = RunOptions()
        options.resume = resume
        options.gradientDumpPath = dumpGradient
        for spec in injectNan {
            guard let f = FaultInjection.parse(spec) else { failBeforeStart(ValidationError("--inject-nan takes FIRST[-LAST]:RANK")) }
            options.faults.nanGradients.append(f)
        }
        if let phase = injectStopDuring {
            guard let p = FaultInjection.Phase(rawValue: phase) else { failBeforeStart(ValidationError("--inject-stop-during takes evaluation or checkpoint")) }
            options.faults.stopSignalDuring = p
        }
        for spec in injectDrift {
            guard let f = FaultInjection.parse(spec) else { failBeforeStart(ValidationError("--inject-drift takes STEP:RANK")) }
            options.faults.parameterDrift.append((f.steps.lowerBound, f.rank))
        }
        runCollectively(comm) {
            if data == nil { try ensureDefaultDataset(config.dataPath, comm: comm) }
            _ = try Trainer(config: config, options: options, comm: comm).run()
        }
    }
}

/// Without --data, the default dataset is prepared from the Debian package on first use, by
/// rank 0; the outcome is broadcast so every rank goes on, or stops, together.
func ensureDefaultDataset(_ path: String, comm: Communicator) throws {
    var problem = ""
    if comm.isRoot && !FileManager.default.fileExists(atPath: path) {
        print("\(path) not found: preparing it from \(FashionMNISTImporter.defaultSourceFolder) (one time, under a minute)")
        do {
            try FashionMNISTImporter.prepare(output: path, seed: PrepareData.defaultSeed, progress: { print("  \($0)") })
        } catch {
            problem = "\(error)"
        }
    }
    problem = comm.broadcast(string: problem)
    if !problem.isEmpty { throw CollectiveError(message: problem, silent: !comm.isRoot) }
}
