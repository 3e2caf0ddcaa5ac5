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
    /// Fault injection for the reliability tests (hidden flags).
    public var faults = FaultInjection()
    public init() {}
}

/// The data-parallel training loop (DESIGN.md §5), identical for one process and P ranks.
public final class Trainer {
    public let config: TrainingConfiguration
    public let options: RunOptions
    let comm: Communicator
    let progress: ProgressReporter

    public init(config: TrainingConfiguration, options: RunOptions = RunOptions(), comm: Communicator) {
        self.config = config
        self.options = options
        self.comm = comm
        progress = ProgressReporter(enabled: comm.isRoot, interval: options.progressInterval)
    }

    func say(_ s: String) { progress.line(s) }

    public func run() throws -> TrainingOutcome {
        try config.validate()
        let runDir = config.runDirectory
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: runDir, isDirectory: &isDir) && !isDir.boolValue {
            throw TrainingError.invalidConfiguration(flag: "--run-dir", problem: "\(runDir) is a file, not a folder; choose another path")
        }
        let dataset = try BinaryDataset(path: config.dataPath)
        let (trainRows, width) = try dataset.shape(of: .train)
        let plan = ShardPlan(totalRows: trainRows, worldSize: comm.size, rank: comm.rank, globalBatch: config.batchSize)
        try plan.validate(dataPath: config.dataPath)
        // Each rank checks a contiguous 1/P of /train now, so a bad value stops the run before
        // anything is written, whichever epoch would first use it.
        try dataset.validateRows(.train, rows: ShardPlan.evaluationRows(count: trainRows, worldSize: comm.size, rank: comm.rank))
        // The rows this rank trains on, read epoch by epoch (≈ N/P rows held, not N).
        let epochRows = EpochRows(plan: plan, width: width)
        // The evaluation splits are checked now, not after hours of training.
        if config.evalEvery > 0 { try checkEvaluationSplit(.valid, of: dataset, width: width) }
        if !config.skipFinalEval { try checkEvaluationSplit(.test, of: dataset, width: width) }

        var shape = config.modelShape
        shape.inputDim = width
        let model = VAEModel(shape: shape, piCount: config.objective.piCount)
        let params = FloatBuffer(count: model.parameterCount)
        let adam = Adam(parameterCount: model.parameterCount, learningRate: config.learningRate)
        let store = CheckpointStore(runDirectory: runDir, keep: config.keepCheckpoints)
        let start = try establishInitialState(model: model, params: params, adam: adam, store: store)
        var history = start.history
        var step = start.step
        var skippedTotal = start.skippedSteps

        let metrics = comm.isRoot ? try MetricsLog(path: (runDir as NSString).appendingPathComponent("metrics.csv"), worldSize: comm.size) : nil
        if let resumed = start.resumedFromWorldSize {
            metrics?.recordResume(epoch: step / plan.stepsPerEpoch, step: step, skippedSteps: skippedTotal, previousWorldSize: resumed)
        }

        let b = plan.localBatch
        let xBuffer = FloatBuffer(count: b * width)
        let x = xBuffer.matrix(rows: b, cols: width)
        var ids = [Int](repeating: 0, count: b)
        let trainingStep = TrainingStep(model: model, settings: config.objective, localBatch: b,
                                        globalBatch: config.batchSize, adam: adam)
        let stepsPerEpoch = plan.stepsPerEpoch
        let totalSteps = min(config.epochs > 0 ? config.epochs * stepsPerEpoch : Int.max,
                             config.maxSteps > 0 ? config.maxSteps : Int.max)
        if comm.isRoot {
            let perRank = config.batchSize % comm.size == 0 ? "\(b)" : "\(config.batchSize / comm.size)–\(config.batchSize / comm.size + 1)"
            say("bsvi-dist: \(config.method.rawValue) k=\(config.k)\(config.method == .bsvi ? " pi=\(config.pi.rawValue)" : "") on \(comm.size) rank(s), "
                + "\(trainRows) training rows in one global order"
                + (plan.droppedRowsPerEpoch > 0 ? " (the last \(plan.droppedRowsPerEpoch) of each epoch, a partial batch, are left out)" : "")
                + ", batch \(config.batchSize) (\(perRank) per rank), \(stepsPerEpoch) steps/epoch, \(totalSteps) steps in total")
        }

        let runStart = Date()
        var epochStart = Date()
        var epochSums = (bound: 0.0, elbo: 0.0, elboK: 0.0, examples: 0.0)
        var badStreak = 0
        var gradientDumped = false
        var trainingSeconds = 0.0, trainedExamples = 0
        var lastCheckpoint: String? = store.list().first?.path

        // Fault injection: the first time rank 0 reaches `phase`, it signals itself.
        var injectedStop = false
        func injectStop(during phase: FaultInjection.Phase) -> (() -> Void)? {
            guard comm.isRoot, options.faults.stopSignalDuring == phase, !injectedStop else { return nil }
            return {
                injectedStop = true
                kill(getpid(), SIGTERM)
            }
        }
        var lastCheckpointStep = -1
        var lastSaved: Checkpoint? = nil
        func checkpoint(epoch: Int) throws {
            guard comm.isRoot else { return }
            let c = Checkpoint(shape: model.shape, method: config.method.rawValue, step: step, epoch: epoch,
                               piCount: model.piLogits?.count ?? 0, parameters: params.array,
                               training: TrainingState(configJSON: config.jsonString(), seed: config.seed, worldSize: comm.size,
                                                       adamStep: adam.step, firstMoment: adam.firstMoment.array,
                                                       secondMoment: adam.secondMoment.array, skippedSteps: skippedTotal),
                               history: history)
            lastCheckpoint = try store.save(c, midWrite: injectStop(during: .checkpoint))
            lastCheckpointStep = step
            lastSaved = c
        }

        func evaluate(_ split: DataSplit, epoch: Int) throws -> EvaluationResult {
            let r = try DistributedEvaluation.run(
                comm: comm, dataset: dataset, split: split, limit: config.evalLimit, model: model, params: params,
                samples: config.evalSamples, refinement: config.evaluationRefinement, proposal: config.evalProposal,
                seed: config.seed,
                progress: { [progress] done, total in
                    injectStop(during: .evaluation)?()
                    progress.update("evaluating \(split.rawValue): \(done)/\(total) examples", fraction: Double(done) / Double(max(total, 1)))
                })
            history.append(MetricRecord(step: step, epoch: epoch, split: split.rawValue, examples: r.examples, samples: r.samples,
                                        logLikelihood: r.logLikelihood, elbo: r.elbo, elboRefined: r.elboRefined))
            metrics?.recordEvaluation(r, epoch: epoch, step: step, skippedSteps: skippedTotal,
                                      wallSeconds: Date().timeIntervalSince(runStart))
            say(String(format: "eval %@ (epoch %d, step %d): log p(x) ≈ %.3f nats (K=%d, %d examples), ELBO(λ₀) %.3f, ELBO(λ_%d) %.3f, gap %.3f [%.1fs]",
                       split.rawValue, epoch, step, r.logLikelihood, r.samples, r.examples, r.elbo, r.refinementSteps,
                       r.elboRefined, r.amortizationGap, r.seconds))
            return r
        }

        while step < totalSteps {
            let epoch = step / stepsPerEpoch, t = step % stepsPerEpoch
            if epochRows.epoch != epoch {
                epochStart = Date()
                epochSums = (0, 0, 0, 0)
                try epochRows.load(epoch: epoch, seed: config.seed, from: dataset)
            }
            epochRows.fill(step: t, x: x, exampleIDs: &ids)
            let noise = NoiseSource(seed: config.seed, purpose: .trainingNoise, context: UInt64(epoch))
            let stepStart = Date()
            let result = trainingStep.run(x: x, exampleIDs: ids, noise: noise, params: params, comm: comm,
                                          stopRequested: bsvi_stop_signal() != 0,
                                          poison: options.faults.poisonsGradient(step: step, rank: comm.rank))
            if options.faults.perturbsParameters(step: step, rank: comm.rank) { params[0] = params[0].nextUp }
            trainingSeconds += Date().timeIntervalSince(stepStart)
            trainedExamples += config.batchSize
            if let dump = options.gradientDumpPath, comm.isRoot, !gradientDumped {
                gradientDumped = true
                try trainingStep.meanGradient().withUnsafeBytes { try Data($0).write(to: URL(fileURLWithPath: dump)) }
            }
            step += 1
            if result.applied {
                badStreak = 0
                epochSums.bound += result.boundSum
                epochSums.elbo += result.elboInitialSum
                epochSums.elboK += result.elboRefinedSum
                epochSums.examples += result.examples
            } else {
                badStreak += 1
                skippedTotal += 1
                say("step \(step): non-finite loss or gradient "
                    + (result.nonFiniteRanks > 0 ? "on \(result.nonFiniteRanks) rank(s)" : "after the allreduce (the sum overflowed)")
                    + "; skipped on all ranks (\(badStreak) in a row)")
                if badStreak >= config.maxBadSteps {
                    let error = TrainingError.tooManyBadSteps(count: badStreak, lastCheckpoint: lastCheckpoint)
                    throw CollectiveError(message: "\(error)", silent: !comm.isRoot)
                }
            }

            if config.consistencyEvery > 0 && step % config.consistencyEvery == 0 {
                try checkConsistency(params)
            }
            let elapsed = Date().timeIntervalSince(epochStart)
            let rate = epochSums.examples / max(elapsed, 1e-9)
            let stepInEpoch = step - epoch * stepsPerEpoch
            progress.update(String(format: "epoch %d step %d/%d (%d/%d in epoch) bound %.3f %.0f ex/s",
                                   epoch + 1, step, totalSteps, stepInEpoch, stepsPerEpoch,
                                   epochSums.bound / max(epochSums.examples, 1), rate),
                            fraction: Double(step) / Double(totalSteps))

            let epochEnded = step % stepsPerEpoch == 0
            if epochEnded {
                let n = max(epochSums.examples, 1)
                metrics?.recordEpoch(epoch: epoch + 1, step: step, examples: Int(epochSums.examples), bound: epochSums.bound / n,
                                     elbo: epochSums.elbo / n, elboRefined: epochSums.elboK / n, examplesPerSecond: rate,
                                     skippedSteps: skippedTotal, wallSeconds: Date().timeIntervalSince(runStart))
                say(String(format: "epoch %d done: step %d, bound %.3f, ELBO(λ₀) %.3f, ELBO(λ_k) %.3f, %.0f examples/s, %d skipped steps",
                           epoch + 1, step, epochSums.bound / n, epochSums.elbo / n, epochSums.elboK / n, rate, skippedTotal))
                if config.evalEvery > 0 && (epoch + 1) % config.evalEvery == 0 {
                    _ = try evaluate(.valid, epoch: epoch + 1)
                }
            }
            let stopRequested = result.stopRequested
            if stopRequested || epochEnded || (config.checkpointEvery > 0 && step % config.checkpointEvery == 0) {
                // The epoch a checkpoint names is the epoch its next step belongs to.
                try checkpoint(epoch: step / stepsPerEpoch)
            }
            if stopRequested {
                let path = lastCheckpoint ?? "(none)"
                say("stop requested (signal): all ranks stopped after step \(step); checkpoint \(path). "
                    + "Resume with the same command plus --resume auto")
                return .stoppedBySignal(step: step, checkpoint: path)
            }
        }

        let checksums = try checkConsistency(params)
        let finalEpoch = step / stepsPerEpoch
        // Save the trained state before the (long) final evaluation, then again with its result.
        if lastCheckpointStep != step { try checkpoint(epoch: finalEpoch) }
        var finalEval: EvaluationResult? = nil
        if !config.skipFinalEval {
            finalEval = try evaluate(.test, epoch: finalEpoch)
            try checkpoint(epoch: finalEpoch)
        }
        if comm.isRoot, let saved = lastSaved {
            let finalPath = (runDir as NSString).appendingPathComponent("final.h5")
            try CheckpointFile.write(saved, to: finalPath)
            try writeSummary(step: step, epoch: finalEpoch, checksums: checksums, finalEval: finalEval,
                             seconds: Date().timeIntervalSince(runStart), trainingSeconds: trainingSeconds,
                             trainedExamples: trainedExamples, epochRows: epochRows)
            say("done: \(step) steps; final checkpoint \(finalPath)")
        }
        return .finished(step: step)
    }

    /// Where the run starts: rank 0 creates the run folder and builds the initial parameters from
    /// the seed or loads --resume; every rank then receives parameters, Adam's moments and the
    /// step counters. A problem rank 0 meets is broadcast so that every rank stops together.
    /// `resumedFromWorldSize` (rank 0 only) is the world size that wrote the checkpoint resumed from.
    func establishInitialState(model: VAEModel, params: FloatBuffer, adam: Adam, store: CheckpointStore) throws
        -> (step: Int, skippedSteps: Int, history: [MetricRecord], resumedFromWorldSize: Int?) {
        var history: [MetricRecord] = []
        var resumedFromWorldSize: Int? = nil
        var step = 0
        var skippedTotal = 0
        var startError = ""
        if comm.isRoot {
            do {
                try FileManager.default.createDirectory(atPath: config.runDirectory, withIntermediateDirectories: true)
                store.removeStaleTemporaryFiles()
                let folder = RunFolder(path: config.runDirectory, store: store)
                if options.resume == "auto" && folder.neverStarted {
                    // One command serves the first submission of a batch job and every requeue.
                    say("--resume auto: \(config.runDirectory) holds no checkpoint and no metrics yet; starting a new run")
                    params.copy(from: model.makeInitialParameters(seed: config.seed))
                } else if let resume = options.resume {
                    let (ckpt, path) = try loadResumeCheckpoint(resume, store: store, folder: folder)
                    try checkCompatible(ckpt, path: path, model: model)
                    params.copy(from: ckpt.parameters)
                    adam.firstMoment.copy(from: ckpt.training!.firstMoment)
                    adam.secondMoment.copy(from: ckpt.training!.secondMoment)
                    adam.step = ckpt.training!.adamStep
                    step = ckpt.step
                    skippedTotal = ckpt.training!.skippedSteps
                    history = ckpt.history
                    let writers = ckpt.training!.worldSize
                    resumedFromWorldSize = writers
                    say("resuming from \(path) at step \(step)"
                        + (writers == comm.size ? "" : " (written by \(writers) rank(s), continuing on \(comm.size): the same global data order)"))
                } else if let existing = store.list().first {
                    throw TrainingError.invalidConfiguration(
                        flag: "--run-dir", problem: "\(config.runDirectory) already holds checkpoints of an earlier run (newest \(existing.path)); "
                            + "pass --resume auto to continue it, or choose a new --run-dir")
                } else {
                    params.copy(from: model.makeInitialParameters(seed: config.seed))
                }
            } catch {
                startError = "\(error)"
            }
        }
        startError = comm.broadcast(string: startError)
        if !startError.isEmpty { throw CollectiveError(message: startError, silent: !comm.isRoot) }
        comm.broadcast(params.base, count: params.count)
        comm.broadcast(adam.firstMoment.base, count: params.count)
        comm.broadcast(adam.secondMoment.base, count: params.count)
        var counters = [Int64(step), Int64(adam.step), Int64(skippedTotal)]
        counters.withUnsafeMutableBytes { comm.broadcast($0.baseAddress!, byteCount: 24, root: 0) }
        adam.step = Int(counters[1])
        // Only rank 0 holds the history; it alone writes checkpoints and metrics.
        return (Int(counters[0]), Int(counters[2]), history, resumedFromWorldSize)
    }

    /// Compares parameter checksums across ranks (a collective: every rank calls it at the
    /// same steps) and stops the run if any rank disagrees with rank 0.
    @discardableResult
    func checkConsistency(_ params: FloatBuffer) throws -> [UInt64] {
        let sums = comm.allgather(parameterChecksum(params))
        let differing = sums.indices.filter { sums[$0] != sums[0] }
        if !differing.isEmpty {
            let error = TrainingError.ranksDiverged(
                detail: "the parameter checksums of rank(s) \(differing.map(String.init).joined(separator: ", ")) differ from rank 0's "
                    + "(\(sums.map { String(format: "%016llx", $0) }.joined(separator: " ")))")
            throw CollectiveError(message: "\(error)", silent: !comm.isRoot)
        }
        return sums
    }

    /// A split the run will evaluate must exist and match the training rows' width.
    func checkEvaluationSplit(_ split: DataSplit, of dataset: BinaryDataset, width: Int) throws {
        let (_, w) = try dataset.shape(of: split)
        guard w == width else {
            throw TrainingError.data(file: dataset.path, problem: "/\(split.rawValue) rows have \(w) pixels but /train rows have \(width)",
                                     fix: "use one dataset file whose splits have the same width")
        }
    }

    /// rank 0 only: the run's summary, with the checksums every rank reported at the end.
    func writeSummary(step: Int, epoch: Int, checksums sums: [UInt64], finalEval: EvaluationResult?, seconds: Double,
                      trainingSeconds: Double, trainedExamples: Int, epochRows: EpochRows) throws {
        struct Summary: Codable {
            var steps: Int
            var epoch: Int
            var worldSize: Int
            var parameterChecksums: [String]
            var finalEvaluation: EvaluationResult?
            /// Wall time of the whole run (including evaluation and checkpoints).
            var seconds: Double
            /// Time spent in training steps of this process's run (resumed parts not included).
            var trainingSeconds: Double
            var trainingExamplesPerSecond: Double
            /// Rank 0's reads of its epoch rows from /train in this process: time, rows kept,
            /// chunks and bytes read (whole chunks), over `dataReadEpochs` epoch loads.
            var dataReadSeconds: Double
            var dataReadEpochs: Int
            var dataReadRows: Int
            var dataReadChunks: Int
            var dataReadBytes: Int
        }
        let s = Summary(steps: step, epoch: epoch, worldSize: comm.size,
                        parameterChecksums: sums.map { String(format: "%016llx", $0) }, finalEvaluation: finalEval, seconds: seconds,
                        trainingSeconds: trainingSeconds,
                        trainingExamplesPerSecond: Double(trainedExamples) / max(trainingSeconds, 1e-9),
                        dataReadSeconds: epochRows.readSeconds, dataReadEpochs: epochRows.loads,
                        dataReadRows: epochRows.readStatistics.rows, dataReadChunks: epochRows.readStatistics.blocks,
                        dataReadBytes: epochRows.readStatistics.bytesRead)
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        try e.encode(s).write(to: URL(fileURLWithPath: (config.runDirectory as NSString).appendingPathComponent("summary.json")))
    }

    func loadResumeCheckpoint(_ resume: String, store: CheckpointStore, folder: RunFolder) throws -> (Checkpoint, String) {
        if resume == "auto" {
            guard let found = store.newestValid(warn: { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }) else {
                // Something of an earlier run is there (else the run would start fresh): starting
                // over could discard its results, so a person decides.
                throw TrainingError.resume(file: store.folder,
                                           problem: "no readable checkpoint found, but the run folder holds an earlier run (\(folder.earlierRunEvidence))",
                                           fix: "resume from a checkpoint file with --resume PATH, or move \(config.runDirectory) away and start again")
            }
            return found
        }
        return (try CheckpointFile.read(resume, requireTrainingState: true), resume)
    }

    /// A resumed run must continue the same experiment; the number of ranks may change (the data
    /// order and the update do not depend on it).
    func checkCompatible(_ c: Checkpoint, path: String, model: VAEModel) throws {
        guard let t = c.training else { throw TrainingError.resume(file: path, problem: "no training state", fix: "start a new run") }
        let saved: TrainingConfiguration
        do { saved = try TrainingConfiguration.fromJSON(t.configJSON) } catch {
            throw TrainingError.resume(file: path, problem: "/training attribute 'config' is not a valid bsvi-dist configuration",
                                       fix: "resume from a checkpoint written by this version of bsvi-dist")
        }
        var differences: [String] = []
        if c.shape != model.shape { differences.append("model shape \(c.shape) vs \(model.shape)") }
        if saved.method != config.method { differences.append("--method \(saved.method.rawValue) vs \(config.method.rawValue)") }
        if saved.k != config.k { differences.append("--k \(saved.k) vs \(config.k)") }
        if saved.pi != config.pi { differences.append("--pi \(saved.pi.rawValue) vs \(config.pi.rawValue)") }
        if saved.batchSize != config.batchSize { differences.append("--batch-size \(saved.batchSize) vs \(config.batchSize)") }
        if saved.seed != config.seed { differences.append("--seed \(saved.seed) vs \(config.seed)") }
        if c.parameters.count != model.parameterCount { differences.append("parameter count \(c.parameters.count) vs \(model.parameterCount)") }
        if !differences.isEmpty {
            throw TrainingError.resume(file: path, problem: "the checkpoint was written by a different run: " + differences.joined(separator: "; "),
                                       fix: "resume with the original flags, or start a new --run-dir")
        }
    }
}

/// An error every rank learned together — found by rank 0 and broadcast (bad checkpoint,
/// unwritable run dir), or decided from reduced values (too many non-finite steps, ranks
/// diverged) — so every rank can stop cleanly; only rank 0 reports it.
public struct CollectiveError: Error, CustomStringConvertible {
    public let message: String
    public var silent: Bool
    public init(message: String, silent: Bool = false) {
        self.message = message
        self.silent = silent
    }
    public var description: String { message }
}
