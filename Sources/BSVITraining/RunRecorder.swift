import BSVI
import BSVIStorage
import Foundation

/// Rank 0's side of a run: what it prints, metrics.csv, checkpoints, final.h5 and summary.json.
/// On the other ranks every method does nothing (they compute, rank 0 records).
final class RunRecorder {
    let isRoot: Bool
    let config: RunConfiguration
    let worldSize: Int
    let data: TrainingData
    let progress: ProgressReporter
    let store: CheckpointStore
    private var metrics: MetricsLog?
    private let faults: RunFaults

    init(config: RunConfiguration, worldSize: Int, data: TrainingData, isRoot: Bool, progressInterval: TimeInterval, faults: RunFaults) {
        self.isRoot = isRoot
        self.config = config
        self.worldSize = worldSize
        self.data = data
        self.faults = faults
        progress = ProgressReporter(enabled: isRoot, interval: progressInterval)
        store = CheckpointStore(runDirectory: config.files.runDirectory, keep: config.schedule.keepCheckpoints)
    }

    /// Rank 0, once the run folder exists: opens (or continues) metrics.csv.
    /// Opens metrics.csv. On resume (`resumedAt` the checkpoint's step) the rows of the steps
    /// after the checkpoint go: the run that stopped wrote them, and they come again.
    /// `trainsOn`: steps are left to train, so the partial epoch row at `step` goes too.
    func openMetrics(resumedAt step: Int?, trainsOn: Bool, history: [MetricRecord]) throws {
        let metrics = try MetricsLog(path: Self.path(config, RunFolder.metricsLog), worldSize: worldSize)
        self.metrics = metrics
        guard let step else { return }
        let removed = try metrics.discardRows(after: step, history: history, continuesEpoch: trainsOn)
        if removed > 0 { say("metrics.csv: removed \(removed) row(s) from step \(step) on, which this run writes again as it continues from that step") }
    }

    /// What a change recorded on resume is: a schedule setting's, or the data's path.
    static func describe(_ change: SettingChange) -> String {
        change.flag == "--data" ? "the same data (its rows' digest) at another path" : "schedule setting changed on resume"
    }

    static func path(_ config: RunConfiguration, _ name: String) -> String {
        RunFolder.file(name, in: config.files.runDirectory)
    }

    func say(_ s: String) { progress.line(s) }

    func announce(trainRows: Int, values: SplitValues, plan: ShardPlan, schedule: TrainingSchedule) {
        let o = config.objective, b = config.optimizer.batchSize
        let perRank = b % worldSize == 0 ? "\(b / worldSize)" : "\(b / worldSize)–\(b / worldSize + 1)"
        say("bsvi-dist: \(o.method.rawValue) k=\(o.k)\(o.method == .bsvi ? " pi=\(o.pi.rawValue)" : "") on \(worldSize) rank(s), "
            + "\(trainRows) training rows in one global order"
            + (values == .intensities ? " (dynamic binarization: a fresh binary image of every row each epoch)" : "")
            + (plan.droppedRowsPerEpoch > 0 ? " (the last \(plan.droppedRowsPerEpoch) of each epoch, a partial batch, are left out)" : "")
            + ", batch \(b) (\(perRank) per rank), \(schedule.stepsPerEpoch) steps/epoch, \(schedule.totalSteps) steps in total")
    }

    func resumed(from path: String, at step: Int, record: ResumeRecord, epoch: Int, skippedSteps: Int) throws {
        say("resuming from \(path) at step \(step)"
            + (record.previousWorldSize == worldSize ? "" : " (written by \(record.previousWorldSize) rank(s), continuing on \(worldSize): the same global data order)"))
        for change in record.scheduleChanges { say("  " + Self.describe(change) + ": \(change)") }
        try metrics?.recordResume(epoch: epoch, step: step, skippedSteps: skippedSteps, previousWorldSize: record.previousWorldSize)
    }

    func stepDone(_ state: RunState, schedule: TrainingSchedule) {
        let epoch = schedule.epoch(ofStep: state.step - 1)
        progress.update(String(numbers: "epoch %d step %d/%d (%d/%d in epoch) bound %.3f %.0f ex/s",
                               epoch + 1, state.step, schedule.totalSteps, state.step - epoch * schedule.stepsPerEpoch,
                               schedule.stepsPerEpoch, state.epochSums.mean(\.bound), state.epochExamplesPerSecond),
                        fraction: Double(state.step) / Double(schedule.totalSteps))
    }

    func skipped(_ result: StepResult, state: RunState) {
        let what = result.nonFiniteRanks > 0 ? "non-finite loss or gradient on \(result.nonFiniteRanks) rank(s)"
            : result.gradientTooLarge ? "gradient too large for Adam's second moment (an entry of the mean gradient may exceed \(Adam.largestSafeGradient))"
            : "non-finite gradient after the allreduce (the sum overflowed)"
        say("step \(state.step): \(what); skipped on all ranks (\(state.badStreak) in a row)")
    }

    /// Epoch `epoch` (from 1) ended, or, with `partialSteps`, the run ended after that many of
    /// its steps: its training row and line.
    func epochDone(_ epoch: Int, state: RunState, partialSteps: (done: Int, of: Int)? = nil) throws {
        let s = state.epochSums, rate = state.epochTimedExamples > 0 ? state.epochExamplesPerSecond : nil
        try metrics?.recordEpoch(epoch: epoch, step: state.step, sums: s, examplesPerSecond: rate, skippedSteps: state.skippedSteps,
                             wallSeconds: Date().timeIntervalSince(state.runStart), partial: partialSteps != nil)
        let which = partialSteps.map { "epoch \(epoch) (its first \($0.done) of \($0.of) steps)" } ?? "epoch \(epoch)"
        say(String(numbers: "%@ done: step %d, bound %.3f, ELBO(λ₀) %.3f, ELBO(λ_k) %.3f, ", which, state.step, s.mean(\.bound),
                   s.mean(\.elboInitial), s.mean(\.elboRefined))
            + (rate.map { String(numbers: "%.0f examples/s", $0) } ?? "no steps timed in this process") + ", \(state.skippedSteps) skipped steps")
    }

    /// Rank 0: whether metrics.csv holds the partial training row of the epoch at `step` already.
    func hasPartialEpochRow(atStep step: Int) -> Bool { metrics?.hasPartialEpochRow(atStep: step) ?? false }

    func evaluationProgress(_ split: DataSplit, done: Int, total: Int) {
        progress.update("evaluating \(split.rawValue): \(done)/\(total) examples", fraction: Double(done) / Double(max(total, 1)))
    }

    func evaluated(_ r: EvaluationResult, epoch: Int, state: inout RunState) throws {
        state.history.append(MetricRecord(step: state.step, epoch: epoch, split: r.split, examples: r.examples, samples: r.samples,
                                          logLikelihood: r.logLikelihood, elbo: r.elbo, elboRefined: r.elboRefined))
        try metrics?.recordEvaluation(r, epoch: epoch, step: state.step, skippedSteps: state.skippedSteps,
                                  wallSeconds: Date().timeIntervalSince(state.runStart))
        say(String(numbers: "eval %@ (epoch %d, step %d): log p(x) ≈ %.3f ± %.3f nats (K=%d, %d examples, ESS/K %.3f), ELBO(λ₀) %.3f, ELBO(λ_%d) %.3f, gap %.3f [%.1fs]",
                   r.split, epoch, state.step, r.logLikelihood, r.logLikelihoodSE, r.samples, r.examples, r.essFractionMean, r.elbo,
                   r.refinementSteps, r.elboRefined, r.amortizationGap, r.seconds))
    }

    /// Writes the checkpoint of the state as it is (rank 0; atomically, see CheckpointStore).
    func checkpoint(_ state: inout RunState, epoch: Int, model: VAEModel, params: FloatBuffer, adam: Adam) throws {
        guard isRoot else { return }
        let resumes = String(decoding: try JSONEncoder.snakeCase.encode(state.resumes), as: UTF8.self)
        let c = Checkpoint(shape: model.shape, method: config.objective.method.rawValue, step: state.step, epoch: epoch,
                           piCount: model.piLogits?.count ?? 0, parameters: params.array,
                           training: TrainingState(configJSON: try config.jsonString(), seed: config.optimizer.seed, worldSize: worldSize,
                                                   adamStep: adam.step, firstMoment: adam.firstMoment.array,
                                                   secondMoment: adam.secondMoment.array, skippedSteps: state.skippedSteps,
                                                   resumesJSON: resumes, badStreak: state.badStreak, epochSums: state.epochSums,
                                                   trainingData: data.recorded),
                           history: state.history)
        let path = try store.save(c, midWrite: { [faults] in faults.during(.checkpoint, rank: 0) })
        state.lastCheckpoint = SavedCheckpoint(step: state.step, path: path, contents: c)
    }

    func stopped(_ state: RunState) {
        say("stop requested (signal): all ranks stopped after step \(state.step); checkpoint \(state.lastCheckpoint?.path ?? "(none)"). "
            + "Resume with the same command plus --resume auto")
    }

    /// final.h5 (the last checkpoint) and summary.json.
    func finished(_ state: RunState, epoch: Int, checksums: [UInt64], finalEvaluation: EvaluationResult?, epochRows: EpochRows) throws {
        guard isRoot, let last = state.lastCheckpoint else { return }
        let finalPath = Self.path(config, RunFolder.finalCheckpoint)
        try CheckpointFile.write(last.contents, to: finalPath)
        let summary = RunSummary(
            steps: state.step, epoch: epoch, worldSize: worldSize, parameterChecksums: checksums.map { String(format: "%016llx", $0) },
            finalEvaluation: finalEvaluation, seconds: Date().timeIntervalSince(state.runStart), processSteps: state.trainedSteps,
            trainingSeconds: state.trainingSeconds,
            trainingExamplesPerSecond: Double(state.trainedSteps * config.optimizer.batchSize) / max(state.trainingSeconds, 1e-9),
            dataReadSeconds: epochRows.readSeconds, dataReadEpochs: epochRows.loads, dataReadRows: epochRows.readStatistics.rows,
            dataReadChunks: epochRows.readStatistics.blocks, dataReadBytes: epochRows.readStatistics.bytesRead, resumes: state.resumes)
        let e = JSONEncoder.snakeCase
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let summaryPath = Self.path(config, RunFolder.summary)
        // Atomically, like every file of the run: a crash mid-write must not leave a truncated
        // summary in place of an earlier, complete one.
        let json = try e.encode(summary)
        try AtomicFile.write(to: summaryPath) { try json.write(to: URL(fileURLWithPath: $0)) }
        say("done: \(state.step) steps; final checkpoint \(finalPath)")
    }
}

/// <run-dir>/summary.json (snake_case keys).
struct RunSummary: Codable {
    var steps: Int
    var epoch: Int
    var worldSize: Int
    /// Every rank's parameter checksum at the end (all equal).
    var parameterChecksums: [String]
    var finalEvaluation: EvaluationResult?
    /// Wall time of this process's run (including evaluation and checkpoints).
    var seconds: Double
    /// Steps this process trained, and their time: a resumed run's last part only, where
    /// `steps` counts the whole run.
    var processSteps: Int
    var trainingSeconds: Double
    var trainingExamplesPerSecond: Double
    /// Rank 0's reads of its epoch rows from /train in this process: time, rows kept, chunks and
    /// bytes read (whole chunks), over `dataReadEpochs` epoch loads.
    var dataReadSeconds: Double
    var dataReadEpochs: Int
    var dataReadRows: Int
    var dataReadChunks: Int
    var dataReadBytes: Int
    /// The run's continuations: step, world sizes and schedule settings changed.
    var resumes: [ResumeRecord]
}

extension JSONEncoder {
    /// The encoder of every JSON file the program writes: snake_case keys.
    /// Non-finite values (a diverged refinement's ELBO(λ_k) = −∞) become the strings "inf",
    /// "-inf" and "nan", as in `eval --json`: JSON has no such numbers, and refusing them lost a
    /// finished run's summary.json.
    public static var snakeCase: JSONEncoder {
        let e = JSONEncoder()
        e.keyEncodingStrategy = .convertToSnakeCase
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }
}
