import ArgumentParser
import BSVI
import BSVIParallel
import BSVIStorage
import BSVITraining
import CStopSignal
import Foundation

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a VAE (the default command). Run under mpirun for data-parallel training.",
        discussion: "Exit status: 0 done or stopped by a signal with a checkpoint; 64 bad flag; 65 bad data or checkpoint; 66 missing input; 70 training failed (non-finite steps, diverged ranks); 73 run folder in use or not writable; 74 I/O error.")

    @OptionGroup(title: "Model") var model: ModelOptions
    @OptionGroup(title: "Objective") var objective: ObjectiveOptions
    @OptionGroup(title: "Optimizer") var optimizer: OptimizerOptions
    @OptionGroup(title: "Schedule") var schedule: ScheduleOptions
    @OptionGroup(title: "Evaluation") var evaluation: EvaluationOptions
    @OptionGroup(title: "Files") var files: FileOptions
    @Option(help: "Continue from 'auto' (newest valid checkpoint in --run-dir; a folder with no run yet starts fresh) or a checkpoint path. Any number of ranks ≤ --batch-size may continue; experiment settings must match the checkpoint's, schedule settings may change.")
    var resume: String?
    @Option(help: .hidden) var dumpGradient: String?
    @Option(help: .hidden) var injectNan: [String] = []
    @Option(help: .hidden) var injectDrift: [String] = []
    @Option(help: .hidden) var injectStopDuring: String?

    func runConfiguration() throws -> RunConfiguration {
        var c = RunConfiguration()
        c.model = try model.section()
        c.objective = objective.section
        c.optimizer = optimizer.section
        c.schedule = schedule.section
        c.evaluation = evaluation.section
        c.files = files.section
        try c.validate()
        // Checked here too (the trainer checks again) so that every rank finds it before MPI starts.
        try ShardPlan.checkBatchSplits(c.optimizer.batchSize, across: launchWorldSize, resumes: resume != nil)
        return c
    }

    func runOptions() throws -> RunOptions {
        var options = RunOptions()
        options.resume = resume
        options.gradientDumpPath = dumpGradient
        guard !injectNan.isEmpty || !injectDrift.isEmpty || injectStopDuring != nil else { return options }
        let faults = InjectedFaults()
        for spec in injectNan {
            guard let f = InjectedFaults.parse(spec) else { throw ValidationError("--inject-nan takes FIRST[-LAST]:RANK") }
            faults.nanGradients.append(f)
        }
        for spec in injectDrift {
            guard let f = InjectedFaults.parse(spec) else { throw ValidationError("--inject-drift takes STEP:RANK") }
            faults.parameterDrift.append((f.steps.lowerBound, f.rank))
        }
        if let phase = injectStopDuring {
            guard let p = RunPhase(rawValue: phase) else { throw ValidationError("--inject-stop-during takes evaluation or checkpoint") }
            faults.stopSignalDuring = p
        }
        options.faults = faults
        return options
    }

    func run() throws {
        let config: RunConfiguration, options: RunOptions
        do {
            config = try runConfiguration()
            options = try runOptions()
        } catch { failBeforeStart(error) }
        let unused = objective.unusedByMethod
        if launchRank == 0 && !unused.isEmpty {
            printError("warning: --method \(config.objective.method.rawValue) does not use " + unused.joined(separator: ", ")
                       + "; they are stored with the run's settings (a --resume must repeat them) but change nothing")
        }
        // Stop signals are held since main began (StopsGracefully): the loop polls them.
        let comm = makeCommunicator(stallTimeout: config.schedule.stallTimeout)
        runCollectively(comm) {
            // Every rank takes part, --data given or not (an MPMD launch may give it to some
            // ranks only): a collective that one rank skipped would leave the others waiting.
            try ensureDefaultDataset(config.files.dataPath, prepareIfMissing: files.data == nil, comm: comm)
            _ = try Trainer(config: config, options: options, comm: comm).run()
        }
    }
}

/// Without --data (on rank 0), the default dataset is prepared from the Debian package on first
/// use, by rank 0; every rank goes on, or stops, together.
func ensureDefaultDataset(_ path: String, prepareIfMissing: Bool, comm: Communicator) throws {
    try comm.rootDecides {
        guard prepareIfMissing, !FileManager.default.fileExists(atPath: path) else { return }
        print("\(path) not found: preparing it from \(FashionMNISTImporter.defaultSourceFolder) (one time, under a minute)")
        try FashionMNISTImporter.prepare(output: path, seed: PrepareData.defaultSeed, progress: { print("  \($0)") })
    }
}
