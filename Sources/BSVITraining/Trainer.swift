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
/// the schedule (pure) says what follows each step; rank 0 records.
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
        let (begun, start) = try begin(setup, recorder)
        var state = begun
        if start.alreadyFinished {
            recorder.say("\(config.files.runDirectory) finished at step \(state.step) (final.h5 and summary.json are in place); nothing left to do")
            for change in start.resume?.scheduleChanges ?? [] { recorder.say("  (schedule setting changed, with nothing left for it to change: \(change))") }
            return .finished(step: state.step)
        }
        recorder.announce(trainRows: setup.trainRows, values: setup.epochRows.values, plan: setup.plan, schedule: setup.schedule)
        if start.validationPending {
            // As the uninterrupted run did at this epoch's end: the evaluation, then the checkpoint with its result.
            guard try evaluate(.valid, epoch: setup.schedule.epoch(ofStep: state.step), &state, setup, recorder) != nil else {
                return try stop(&state, setup, recorder)
            }
            try checkpoint(&state, setup, recorder)
        }
        while state.step < setup.schedule.totalSteps {
            let result = try trainOneStep(&state, setup, recorder)
            let next = setup.schedule.afterStep(completed: state.step, stopRequested: result.stopRequested)
            if let stopped = try follow(next, &state, setup, recorder) { return stopped }
        }
        return try finish(&state, setup, recorder)
    }

    /// One step: this rank's rows, the local gradient, the exchange and the update.
    func trainOneStep(_ state: inout RunState, _ setup: TrainingSetup, _ recorder: RunRecorder) throws -> StepResult {
        try setup.loadRows(forStep: state.step, seed: config.optimizer.seed)
        // Only at an epoch's first step: a run resumed mid-epoch carries the epoch's sums on.
        if setup.schedule.positionInEpoch(ofStep: state.step) == 0 { state.startEpoch() }
        let noise = NoiseSource(seed: config.optimizer.seed, purpose: .trainingNoise,
                                context: UInt64(setup.schedule.epoch(ofStep: state.step)))
        let started = Date()
        setup.step.computeLocal(x: setup.x, exampleIDs: setup.exampleIDs, noise: noise, params: setup.params)
        options.faults.beforeExchange(step: state.step, rank: comm.rank, gradients: setup.step.exchange.gradients)
        let result = setup.step.exchangeAndUpdate(params: setup.params, comm: comm, stopRequested: options.stopRequested())
        options.faults.afterUpdate(step: state.step, rank: comm.rank, parameters: setup.params)
        if state.trainedExamples == 0 { try dumpGradientIfAsked(setup) }
        state.record(result, examples: config.optimizer.batchSize, seconds: Date().timeIntervalSince(started))
        if !result.applied {
            recorder.skipped(result, state: state)
            if setup.schedule.givesUp(badStreak: state.badStreak) {
                let error = TrainingError.tooManyBadSteps(count: state.badStreak, lastCheckpoint: state.lastCheckpointPath)
                throw CollectiveError(error, isRoot: comm.isRoot)
            }
        }
        recorder.stepDone(state, schedule: setup.schedule)
        return result
    }

    /// What the schedule says follows a step; returns the outcome when the run stops here.
    func follow(_ next: TrainingSchedule.AfterStep, _ state: inout RunState, _ setup: TrainingSetup,
                _ recorder: RunRecorder) throws -> TrainingOutcome? {
        if next.checkConsistency { try checkConsistency(setup.params) }
        if let epoch = next.endedEpoch {
            try recorder.epochDone(epoch, state: state)
            if next.evaluateValidation, try evaluate(.valid, epoch: epoch, &state, setup, recorder) == nil {
                return try stop(&state, setup, recorder)
            }
        }
        if next.stop { return try stop(&state, setup, recorder) }
        if next.checkpoint { try checkpoint(&state, setup, recorder) }
        return nil
    }

    /// After the last step: the final consistency check and checkpoint, the test evaluation,
    /// the checkpoint with its result, final.h5 and summary.json.
    func finish(_ state: inout RunState, _ setup: TrainingSetup, _ recorder: RunRecorder) throws -> TrainingOutcome {
        let checksums = try checkConsistency(setup.params)
        let epoch = setup.schedule.epoch(ofStep: state.step)
        // A run that ends inside an epoch (--max-steps) reports that epoch's steps so far, or a
        // short run would record no training row at all.
        let inEpoch = setup.schedule.positionInEpoch(ofStep: state.step)
        if inEpoch > 0 && state.epochSums.examples > 0 {
            try recorder.epochDone(epoch + 1, state: state, partialSteps: (inEpoch, setup.schedule.stepsPerEpoch))
        }
        // Save the trained state before the (long) final evaluation, then again with its result.
        try checkpointUnlessSaved(&state, setup, recorder)
        var finalEvaluation: EvaluationResult? = nil
        if !config.evaluation.skipFinal {
            guard let r = try evaluate(.test, epoch: epoch, &state, setup, recorder) else { return stopped(state, recorder) }
            finalEvaluation = r
            try checkpoint(&state, setup, recorder)
        }
        try recorder.finished(state, epoch: epoch, checksums: checksums, finalEvaluation: finalEvaluation, epochRows: setup.epochRows)
        return .finished(step: state.step)
    }

    /// A collective stop: the stop checkpoint (the state after the last completed step), then out.
    func stop(_ state: inout RunState, _ setup: TrainingSetup, _ recorder: RunRecorder) throws -> TrainingOutcome {
        try checkpointUnlessSaved(&state, setup, recorder)
        return stopped(state, recorder)
    }

    /// Rank 0 saves the state after step `state.step`. The epoch a checkpoint names is the
    /// epoch its next step belongs to.
    func checkpoint(_ state: inout RunState, _ setup: TrainingSetup, _ recorder: RunRecorder) throws {
        try recorder.checkpoint(&state, epoch: setup.schedule.epoch(ofStep: state.step), model: setup.model, params: setup.params, adam: setup.adam)
    }

    /// The same, unless this step's checkpoint is written already (rank 0 knows; elsewhere
    /// `checkpoint` does nothing).
    func checkpointUnlessSaved(_ state: inout RunState, _ setup: TrainingSetup, _ recorder: RunRecorder) throws {
        if state.lastCheckpoint?.step != state.step { try checkpoint(&state, setup, recorder) }
    }

    func stopped(_ state: RunState, _ recorder: RunRecorder) -> TrainingOutcome {
        recorder.stopped(state)
        return .stoppedBySignal(step: state.step, checkpoint: state.lastCheckpoint?.path ?? "(none)")
    }

    /// Evaluates a split on all ranks and records the result; nil when a stop signal interrupted it.
    func evaluate(_ split: DataSplit, epoch: Int, _ state: inout RunState, _ setup: TrainingSetup,
                  _ recorder: RunRecorder) throws -> EvaluationResult? {
        do {
            let r = try DistributedEvaluation.run(
                comm: comm, dataset: setup.dataset, split: split, limit: config.evaluation.limit, model: setup.model,
                params: setup.params, samples: config.evaluation.samples, refinement: config.objective.evaluationRefinement,
                proposal: config.evaluation.proposal, seed: config.optimizer.seed, stopRequested: options.stopRequested,
                progress: { [comm] done, total in
                    self.options.faults.during(.evaluation, rank: comm.rank)
                    recorder.evaluationProgress(split, done: done, total: total)
                })
            try recorder.evaluated(r, epoch: epoch, state: &state)
            return r
        } catch let interrupted as EvaluationInterrupted {
            recorder.say(interrupted.summary)
            return nil
        }
    }

    /// Where the run starts (RunStart: rank 0 decides), with every rank given the same state.
    func begin(_ setup: TrainingSetup, _ recorder: RunRecorder) throws -> (RunState, RunStart) {
        var history: [MetricRecord] = [], resumes: [ResumeRecord] = []
        let start = try comm.rootDecides { () throws -> RunStart in
            // The lock comes first: nothing in the folder is touched while another run holds it.
            // (The lock's warnings carry their own "warning: " prefix.)
            folderLock = try RunFolderLock.acquire(runDirectory: config.files.runDirectory, warn: { recorder.say($0) })
            var start = try RunStart.decide(config: config, resumeFlag: options.resume, worldSize: comm.size,
                                            schedule: setup.schedule, data: setup.data, store: recorder.store,
                                            model: setup.model, params: setup.params, adam: setup.adam, history: &history,
                                            resumes: &resumes)
            start.findWorkLeft(schedule: setup.schedule, evaluation: config.evaluation, history: &history,
                               runDirectory: config.files.runDirectory)
            try recorder.openMetrics(resumedAt: start.resume != nil ? start.step : nil, history: history)
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

    /// Compares parameter checksums across ranks (a collective: every rank calls it at the
    /// same steps) and stops the run if any rank disagrees with rank 0.
    @discardableResult
    func checkConsistency(_ params: FloatBuffer) throws -> [UInt64] {
        let sums = comm.allgather(parameterChecksum(params))
        let differing = sums.indices.filter { sums[$0] != sums[0] }
        guard differing.isEmpty else {
            let error = TrainingError.ranksDiverged(
                detail: "the parameter checksums of rank(s) \(differing.map(String.init).joined(separator: ", ")) differ from rank 0's "
                    + "(\(sums.map { String(format: "%016llx", $0) }.joined(separator: " ")))")
            throw CollectiveError(error, isRoot: comm.isRoot)
        }
        return sums
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

    /// --dump-gradient (hidden): rank 0 writes the first step's averaged objective gradient.
    func dumpGradientIfAsked(_ setup: TrainingSetup) throws {
        guard let path = options.gradientDumpPath, comm.isRoot else { return }
        try setup.step.meanGradient().withUnsafeBytes { try Data($0).write(to: URL(fileURLWithPath: path)) }
    }
}
