import BSVI
import BSVIParallel
import BSVIStorage
import CStopSignal
import Foundation

/// How a run ended.
public enum TrainingOutcome: Equatable {
    case finished(step: Int)
    case stoppedBySignal(step: Int, checkpoint: String)
}

/// Options that change what a run reports or records, not what it computes.
public struct RunOptions {
    /// "auto", a checkpoint path, or nil for a fresh run.
    public var resume: String?
    /// Writes the first step's averaged objective gradient (Float32, little endian, layout order).
    public var gradientDumpPath: String?
    public var progressInterval: TimeInterval = 10
    /// Faults the reliability tests inject (NoFaults in every user's run).
    public var faults: RunFaults = NoFaults()
    /// Whether this process has been asked to stop (SIGTERM, SIGINT, SIGUSR1, SIGUSR2); read once per step
    /// and during evaluations, and turned into a collective decision.
    public var stopRequested: @Sendable () -> Bool = { bsvi_stop_signal() != 0 }
    public init() {}
}

/// The data-parallel training loop of DESIGN.md §5, identical for one process and P ranks:
/// every step computes locally, exchanges one buffer and updates the same way on every rank;
/// the schedule (pure) says what follows each step; rank 0 records. `run` checks and begins the
/// run, then drives its `TrainingRun` step by step.
public final class Trainer {
    public let config: RunConfiguration
    public let options: RunOptions
    let comm: Communicator
    /// Rank 0's hold on the run folder for the life of the run (one run per folder).
    private var folderLock: RunFolderLock?

    public init(config: RunConfiguration, options: RunOptions = RunOptions(), comm: Communicator) {
        self.config = config
        self.options = options
        self.comm = comm
    }

    public func run() throws -> TrainingOutcome {
        try config.validate()
        try comm.requireSameConfiguration(config)
        try checkRunDirectoryIsAFolder()
        let setup = try TrainingSetup(config: config, comm: comm)
        let recorder = RunRecorder(config: config, worldSize: comm.size, data: setup.data, isRoot: comm.isRoot,
                                   progressInterval: options.progressInterval, faults: options.faults)
        defer { folderLock?.release() }
        let (state, start) = try begin(setup, recorder)
        if start.alreadyFinished {
            recorder.say("\(config.files.runDirectory) finished at step \(state.step) (final.h5 and summary.json are in place); nothing left to do")
            for change in start.resume?.scheduleChanges ?? [] {
                recorder.say("  (" + RunRecorder.describe(change) + ", with nothing left for it to change: \(change))")
            }
            return .finished(step: state.step)
        }
        recorder.announce(trainRows: setup.trainRows, values: setup.epochRows.values, plan: setup.plan, schedule: setup.schedule)
        let run = TrainingRun(config: config, options: options, comm: comm, setup: setup, recorder: recorder, state: state)
        if start.validationPending, let stopped = try run.catchUpValidation() { return stopped }
        while run.state.step < setup.schedule.totalSteps {
            let result = try run.trainOneStep()
            let next = setup.schedule.afterStep(completed: run.state.step, stopRequested: result.stopRequested)
            if let stopped = try run.follow(next) { return stopped }
        }
        return try run.finish()
    }

    /// Where the run starts (RunStart: rank 0 decides), with every rank given the same state.
    func begin(_ setup: TrainingSetup, _ recorder: RunRecorder) throws -> (RunState, RunStart) {
        var history: [MetricRecord] = [], resumes: [ResumeRecord] = []
        let start = try comm.rootDecides { () throws -> RunStart in
            // The lock comes first: nothing in the folder is touched while another run holds it.
            // (The lock's warnings carry their own "warning: " prefix.)
            let madeFolder = !FileManager.default.fileExists(atPath: config.files.runDirectory)
            folderLock = try RunFolderLock.acquire(runDirectory: config.files.runDirectory, warn: { recorder.say($0) })
            var start: RunStart
            do {
                start = try RunStart.decide(config: config, resumeFlag: options.resume, worldSize: comm.size,
                                            schedule: setup.schedule, data: setup.data, store: recorder.store,
                                            model: setup.model, params: setup.params, adam: setup.adam, history: &history,
                                            resumes: &resumes)
            } catch {
                // A refused resume (a checkpoint missing or of another experiment) leaves no new
                // folder behind holding only the lock file.
                if madeFolder { folderLock?.releaseRemovingFolder() }
                throw error
            }
            start.findWorkLeft(schedule: setup.schedule, evaluation: config.evaluation, history: &history,
                               runDirectory: config.files.runDirectory)
            try recorder.openMetrics(resumedAt: start.resume != nil ? start.step : nil,
                                     trainsOn: !start.alreadyFinished && start.step < setup.schedule.totalSteps, history: history)
            return start
        }
        comm.broadcast(setup.params.base, count: setup.params.count)
        comm.broadcast(setup.adam.firstMoment.base, count: setup.params.count)
        comm.broadcast(setup.adam.secondMoment.base, count: setup.params.count)
        setup.adam.step = start.adamStep
        // Only rank 0 holds the history; it alone writes checkpoints and metrics.
        var state = RunState(step: start.step, skippedSteps: start.skippedSteps, badStreak: start.badStreak, epochSums: start.epochSums,
                             history: history, resumes: resumes)
        state.lastCheckpointPath = start.resumedFrom
        if let message = start.message { recorder.say(message) }
        if let path = start.resumedFrom, let record = start.resume, !start.alreadyFinished {
            try recorder.resumed(from: path, at: start.step, record: record, epoch: setup.schedule.epoch(ofStep: start.step),
                             skippedSteps: start.skippedSteps)
        }
        return (state, start)
    }

    /// Rank 0 judges its own file system (the run folder is rank 0's), and every rank learns
    /// the outcome: one message and a clean exit under mpirun, before the data is read.
    func checkRunDirectoryIsAFolder() throws {
        try comm.rootDecides {
            var isDirectory: ObjCBool = false
            let path = config.files.runDirectory
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && !isDirectory.boolValue {
                throw TrainingError.invalidConfiguration(flag: "--run-dir", problem: "\(path) is a file, not a folder; choose another path")
            }
        }
    }
}
