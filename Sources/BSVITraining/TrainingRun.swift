import BSVI
import BSVIParallel
import BSVIStorage
import Foundation

/// One run of the loop once it has begun: its setup, its recorder and where it stands, which
/// every part of the loop reads and changes (`Trainer.run` drives it).
final class TrainingRun {
    let config: RunConfiguration
    let options: RunOptions
    let comm: Communicator
    let setup: TrainingSetup
    let recorder: RunRecorder
    var state: RunState

    init(config: RunConfiguration, options: RunOptions, comm: Communicator, setup: TrainingSetup, recorder: RunRecorder, state: RunState) {
        self.config = config
        self.options = options
        self.comm = comm
        self.setup = setup
        self.recorder = recorder
        self.state = state
    }

    /// The validation evaluation a resumed run still owes (a stop interrupted it), then the
    /// checkpoint with its result, as the uninterrupted run did at this epoch's end; the outcome
    /// when a stop ends the run here.
    func catchUpValidation() throws -> TrainingOutcome? {
        guard try evaluate(.valid, epoch: setup.schedule.epoch(ofStep: state.step)) != nil else { return try stop() }
        try checkpoint()
        return nil
    }

    /// One step: this rank's rows, the local gradient, the exchange and the update.
    func trainOneStep() throws -> StepResult {
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
        if state.trainedSteps == 0 { try dumpGradientIfAsked() }
        state.record(result, seconds: Date().timeIntervalSince(started))
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
    func follow(_ next: TrainingSchedule.AfterStep) throws -> TrainingOutcome? {
        if next.checkConsistency { try checkConsistency(setup.params) }
        if let epoch = next.endedEpoch {
            try recorder.epochDone(epoch, state: state)
            if next.evaluateValidation, try evaluate(.valid, epoch: epoch) == nil {
                return try stop()
            }
        }
        if next.stop { return try stop() }
        if next.checkpoint { try checkpoint() }
        return nil
    }

    /// After the last step: the final consistency check and checkpoint, the test evaluation,
    /// the checkpoint with its result, final.h5 and summary.json.
    func finish() throws -> TrainingOutcome {
        let checksums = try checkConsistency(setup.params)
        let epoch = setup.schedule.epoch(ofStep: state.step)
        // A run that ends inside an epoch (--max-steps) reports that epoch's steps so far, or a
        // short run would record no training row at all. A resume with no steps left keeps the
        // row the earlier part wrote when it finished, and writes it when that part was stopped
        // at this step (a stop checkpoints and leaves before `finish`). Only rank 0 records.
        let inEpoch = setup.schedule.positionInEpoch(ofStep: state.step)
        if inEpoch > 0 && state.epochSums.examples > 0 && !recorder.hasPartialEpochRow(atStep: state.step) {
            try recorder.epochDone(epoch + 1, state: state, partialSteps: (inEpoch, setup.schedule.stepsPerEpoch))
        }
        // Save the trained state before the (long) final evaluation, then again with its result.
        try checkpointUnlessSaved()
        var finalEvaluation: EvaluationResult? = nil
        if !config.evaluation.skipFinal {
            guard let r = try evaluate(.test, epoch: epoch) else { return stopped() }
            finalEvaluation = r
            try checkpoint()
        }
        try recorder.finished(state, epoch: epoch, checksums: checksums, finalEvaluation: finalEvaluation, epochRows: setup.epochRows)
        return .finished(step: state.step)
    }

    /// A collective stop: the stop checkpoint (the state after the last completed step), then out.
    func stop() throws -> TrainingOutcome {
        try checkpointUnlessSaved()
        return stopped()
    }

    /// Rank 0 saves the state after step `state.step`. The epoch a checkpoint names is the
    /// epoch its next step belongs to.
    func checkpoint() throws {
        try recorder.checkpoint(&state, epoch: setup.schedule.epoch(ofStep: state.step), model: setup.model, params: setup.params, adam: setup.adam)
    }

    /// The same, unless this step's checkpoint is written already (rank 0 knows; elsewhere
    /// `checkpoint` does nothing).
    func checkpointUnlessSaved() throws {
        if state.lastCheckpoint?.step != state.step { try checkpoint() }
    }

    func stopped() -> TrainingOutcome {
        recorder.stopped(state)
        return .stoppedBySignal(step: state.step, checkpoint: state.lastCheckpoint?.path ?? "(none)")
    }

    /// Evaluates a split on all ranks and records the result; nil when a stop signal interrupted it.
    func evaluate(_ split: DataSplit, epoch: Int) throws -> EvaluationResult? {
        do {
            let r = try DistributedEvaluation.run(
                comm: comm, dataset: setup.dataset, split: split, limit: config.evaluation.limit, model: setup.model,
                params: setup.params, samples: config.evaluation.samples, refinement: config.objective.evaluationRefinement,
                proposal: config.evaluation.proposal, seed: config.optimizer.seed, stopRequested: options.stopRequested,
                progress: { [comm, options, recorder] done, total in
                    options.faults.during(.evaluation, rank: comm.rank)
                    recorder.evaluationProgress(split, done: done, total: total)
                })
            try recorder.evaluated(r, epoch: epoch, state: &state)
            return r
        } catch let interrupted as EvaluationInterrupted {
            recorder.say(interrupted.summary)
            return nil
        }
    }

    /// Compares parameter checksums across ranks (a collective: every rank calls it at the
    /// same steps) and stops the run if any rank disagrees with rank 0.
    @discardableResult
    func checkConsistency(_ params: FloatBuffer) throws -> [UInt64] {
        let sums = comm.allgather(parameterChecksum(params, layout: setup.model.layout))
        let differing = sums.indices.filter { sums[$0] != sums[0] }
        guard differing.isEmpty else {
            let error = TrainingError.ranksDiverged(
                detail: "the parameter checksums of rank(s) \(differing.map(String.init).joined(separator: ", ")) differ from rank 0's "
                    + "(\(sums.map { String(format: "%016llx", $0) }.joined(separator: " ")))")
            throw CollectiveError(error, isRoot: comm.isRoot)
        }
        return sums
    }

    /// --dump-gradient (hidden): rank 0 writes the first step's averaged objective gradient.
    func dumpGradientIfAsked() throws {
        guard let path = options.gradientDumpPath, comm.isRoot else { return }
        try setup.step.meanGradient().withUnsafeBytes { try Data($0).write(to: URL(fileURLWithPath: path)) }
    }
}
