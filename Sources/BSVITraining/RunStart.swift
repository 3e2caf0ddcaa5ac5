import BSVI
import BSVIParallel
import BSVIStorage
import Foundation

/// How a run begins: fresh from the seed, or continued from a checkpoint — decided by rank 0,
/// which reads the run folder and the checkpoint; every rank then receives the parameters,
/// Adam's state and the counters.
struct RunStart: Codable {
    var step = 0
    var skippedSteps = 0
    var badStreak = 0
    var epochSums = ObjectiveSums()
    var adamStep = 0
    /// The checkpoint continued from, and what changed since it was written.
    var resumedFrom: String?
    var resume: ResumeRecord?
    var message: String?
    /// The resumed checkpoint is the end of a run whose final.h5 and summary.json are in place
    /// (with the final test evaluation, unless the run skips it): nothing is left to do.
    var alreadyFinished = false
    /// The resumed step ends an epoch whose validation evaluation is due but not in the history
    /// (a stop signal interrupted it): it runs before the next step.
    var validationPending = false
    /// The run folder's final.h5 is the resumed checkpoint's end (same step and parameters).
    var finalIsTheResumedEnd = false
    /// The resumed run ended and was tested, but its final files are not all in place (a crash
    /// before summary.json): the same final evaluation runs again, its result replacing the
    /// recorded one rather than adding a second row.
    var finalEvaluationRepeats = false

    /// Rank 0 fills `params` and `adam` (from the seed or the checkpoint) and returns the rest,
    /// with `history` and `resumes` of the run so far. The run folder exists (its lock is held).
    static func decide(config: RunConfiguration, resumeFlag: String?, worldSize: Int, schedule: TrainingSchedule,
                       data: TrainingData, store: CheckpointStore, model: VAEModel,
                       params: FloatBuffer, adam: Adam, history: inout [MetricRecord], resumes: inout [ResumeRecord]) throws -> RunStart {
        let runDirectory = config.files.runDirectory
        // Temp files of writers killed mid-write (never renamed into place); with the folder
        // locked, no writer of ours is alive.
        store.removeStaleTemporaryFiles()
        for name in [RunFolder.finalCheckpoint, RunFolder.summary] {
            AtomicFile.removeStaleTemporaryFiles(of: RunFolder.file(name, in: runDirectory))
        }
        let folder = RunFolder(path: runDirectory, store: store)
        var start = RunStart()
        switch resumeFlag {
        case "auto"? where folder.neverStarted:
            // One command serves the first submission of a batch job and every requeue.
            start.message = "--resume auto: \(runDirectory) holds no checkpoint and no metrics yet; starting a new run"
            params.copy(from: model.makeInitialParameters(seed: config.optimizer.seed))
        case "auto"? where folder.stoppedBeforeFirstCheckpoint:
            // Nothing was saved to continue from; the same command from the seed repeats the rows.
            start.message = try SupersededFiles.setAsideRowsWithoutCheckpoint(runDirectory: runDirectory)
            params.copy(from: model.makeInitialParameters(seed: config.optimizer.seed))
        case let flag?:
            let (checkpoint, path) = try Self.checkpoint(flag, store: store, folder: folder, runDirectory: runDirectory)
            let changes = try Self.checkCompatible(checkpoint, path: path, config: config, model: model, data: data)
            try Self.checkContinuable(checkpoint, path: path, flag: flag, folder: folder, config: config, schedule: schedule)
            start = try Self.restore(checkpoint, path: path, changes: changes, worldSize: worldSize, store: store, runDirectory: runDirectory,
                                     params: params, adam: adam, history: &history, resumes: &resumes)
        case nil:
            try Self.requireNoEarlierRun(folder, store: store, runDirectory: runDirectory)
            params.copy(from: model.makeInitialParameters(seed: config.optimizer.seed))
        }
        // Before any step: where checkpoints cannot go, the run stops now, not after an epoch.
        try store.createFolder()
        return start
    }

    /// Whether `checkpoint` (compatible with the flags) may continue in this folder, to this
    /// schedule's end.
    static func checkContinuable(_ checkpoint: Checkpoint, path: String, flag: String, folder: RunFolder, config: RunConfiguration,
                                 schedule: TrainingSchedule) throws {
        let runDirectory = folder.path
        // A checkpoint from elsewhere continues into this folder only if it holds no run of its
        // own: its checkpoints and rows would mix with the continued run's.
        if flag != "auto", !folder.neverStarted, !Self.isInside(flag, runDirectory) {
            throw TrainingError.invalidConfiguration(
                flag: "--run-dir", problem: "\(runDirectory) holds another run (\(folder.earlierRunEvidence)), and \(flag) is not one of its checkpoints; "
                    + "continue \(flag) in a new --run-dir, or resume one of this folder's checkpoints")
        }
        // Continuing past the schedule's end would finish at the checkpoint's step, not where
        // an uninterrupted run with these flags stops.
        let totalSteps = schedule.totalSteps
        guard checkpoint.step <= totalSteps else {
            // The flag whose limit applies: --epochs unless --max-steps ends the run earlier.
            let epochsEnd = config.schedule.epochs > 0 ? config.schedule.epochs * schedule.stepsPerEpoch : Int.max
            throw TrainingError.invalidConfiguration(
                flag: epochsEnd == totalSteps ? "--epochs" : "--max-steps",
                problem: "\(path) is at step \(checkpoint.step), past step \(totalSteps), where a run with --epochs \(config.schedule.epochs)"
                    + (config.schedule.maxSteps > 0 ? " --max-steps \(config.schedule.maxSteps)" : "") + " ends; "
                    + "resume a checkpoint at or before step \(totalSteps) with --resume PATH (a superseded-* folder or final.h5 of \(runDirectory) may hold it), "
                    + "or give --epochs/--max-steps that reach step \(checkpoint.step)")
        }
    }

    /// The checkpoint's state into `params`, `adam`, `history` and `resumes` (with this resume
    /// recorded), the run folder's later files set aside; the counters as the start.
    static func restore(_ checkpoint: Checkpoint, path: String, changes: [SettingChange], worldSize: Int, store: CheckpointStore,
                        runDirectory: String, params: FloatBuffer, adam: Adam,
                        history: inout [MetricRecord], resumes: inout [ResumeRecord]) throws -> RunStart {
        let training = checkpoint.training!
        params.copy(from: checkpoint.parameters)
        adam.firstMoment.copy(from: training.firstMoment)
        adam.secondMoment.copy(from: training.secondMoment)
        history = checkpoint.history
        resumes = training.resumesJSON.flatMap { try? JSONDecoder.snakeCase.decode([ResumeRecord].self, from: Data($0.utf8)) } ?? []
        let record = ResumeRecord(step: checkpoint.step, worldSize: worldSize, previousWorldSize: training.worldSize,
                                  scheduleChanges: changes)
        resumes.append(record)
        var start = RunStart(step: checkpoint.step, skippedSteps: training.skippedSteps, badStreak: training.badStreak,
                             epochSums: training.epochSums ?? ObjectiveSums(), adamStep: training.adamStep, resumedFrom: path, resume: record)
        start.finalIsTheResumedEnd = try SupersededFiles.finalIsTheEnd(of: checkpoint, runDirectory: runDirectory)
        let aside = try SupersededFiles.setAside(after: checkpoint.step, finalIsTheEnd: start.finalIsTheResumedEnd, store: store,
                                                 runDirectory: runDirectory)
        let rows = try SupersededFiles.restoreRows(ofBranchOf: path, aside: aside?.folder, runDirectory: runDirectory)
        let said = [aside?.message, rows].compactMap { $0 }
        start.message = said.isEmpty ? nil : said.joined(separator: "\n")
        return start
    }

    /// A fresh run (no --resume) needs a folder that holds no earlier run.
    static func requireNoEarlierRun(_ folder: RunFolder, store: CheckpointStore, runDirectory: String) throws {
        if let existing = store.list().first {
            throw TrainingError.invalidConfiguration(
                flag: "--run-dir", problem: "\(runDirectory) already holds checkpoints of an earlier run (newest \(existing.path)); "
                    + "pass --resume auto to continue it, or choose a new --run-dir")
        }
        // No checkpoint, but rows or a final.h5 of an earlier run: a fresh run would append to
        // its metrics.csv and overwrite its final.h5 and summary.json.
        guard folder.neverStarted else {
            throw TrainingError.invalidConfiguration(
                flag: "--run-dir", problem: "\(runDirectory) holds an earlier run (\(folder.earlierRunEvidence)) and no checkpoint to continue it from; "
                    + (folder.stoppedBeforeFirstCheckpoint ? "pass --resume auto to start it again (its rows are set aside), " : "")
                    + "move it away or choose a new --run-dir")
        }
    }

    /// The flags that say how the final evaluation runs: one changed on resume asks for it again.
    static let finalEvaluationFlags: Set<String> = ["--eval-samples", "--eval-limit", "--eval-proposal", "--no-final-eval"]

    /// What is left of a resumed run at its step (rank 0 decides; `history` is rank 0's). A
    /// final evaluation that repeats takes its recorded result's place in `history`.
    mutating func findWorkLeft(schedule: TrainingSchedule, evaluation: EvaluationSection, history: inout [MetricRecord], runDirectory: String) {
        guard let resume else { return }
        if step >= schedule.totalSteps {
            let sameEvaluation = !resume.scheduleChanges.contains { Self.finalEvaluationFlags.contains($0.flag) }
            let tested = evaluation.skipFinal || history.contains { $0.split == DataSplit.test.rawValue && $0.step == step }
            // final.h5 of this very checkpoint (not another branch's), and the summary written with it.
            let summary = RunFolder.file(RunFolder.summary, in: runDirectory)
            alreadyFinished = sameEvaluation && tested && finalIsTheResumedEnd && FileManager.default.fileExists(atPath: summary)
            finalEvaluationRepeats = !alreadyFinished && sameEvaluation && tested && !evaluation.skipFinal
            if finalEvaluationRepeats { history.removeAll { [step] in $0.split == DataSplit.test.rawValue && $0.step == step } }
        }
        if step > 0, step <= schedule.totalSteps, schedule.afterStep(completed: step, stopRequested: false).evaluateValidation {
            validationPending = !history.contains { $0.split == DataSplit.valid.rawValue && $0.step == step }
        }
    }

    /// Whether `path` lies inside `folder` (symbolic links resolved).
    static func isInside(_ path: String, _ folder: String) -> Bool {
        let p = URL(fileURLWithPath: path).resolvingSymlinksInPath().standardizedFileURL.path
        let f = URL(fileURLWithPath: folder).resolvingSymlinksInPath().standardizedFileURL.path
        return p.hasPrefix(f.hasSuffix("/") ? f : f + "/")
    }

    static func checkpoint(_ flag: String, store: CheckpointStore, folder: RunFolder, runDirectory: String) throws -> (Checkpoint, String) {
        guard flag == "auto" else {
            guard FileManager.default.fileExists(atPath: flag) else {
                throw TrainingError.nothingToResume(file: flag, problem: "no such file", fix: "pass a checkpoint file, or --resume auto")
            }
            return (try CheckpointFile.read(flag, requireTrainingState: true), flag)
        }
        guard let found = try store.newestValid(warn: { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }) else {
            // Something of an earlier run is there (else the run would start fresh): starting
            // over could discard its results, so a person decides.
            throw TrainingError.resume(file: store.folder,
                                       problem: "no readable checkpoint found, but the run folder holds an earlier run (\(folder.earlierRunEvidence))",
                                       fix: "resume from a checkpoint file with --resume PATH, or move \(runDirectory) away and start again")
        }
        return found
    }

    /// The resume rule (ConfigurationField): every experiment setting must match the checkpoint's;
    /// schedule settings may differ and are returned. The number of ranks may change.
    static func checkCompatible(_ c: Checkpoint, path: String, config: RunConfiguration, model: VAEModel,
                                data: TrainingData) throws -> [SettingChange] {
        guard let t = c.training else {
            throw TrainingError.resume(file: path, problem: "no training state", fix: "start a new run")
        }
        let saved: RunConfiguration
        do { saved = try RunConfiguration.fromJSON(t.configJSON) } catch {
            throw TrainingError.resume(file: path, problem: "/training attribute 'config' is not a valid bsvi-dist configuration",
                                       fix: "resume from a checkpoint written by bsvi-dist")
        }
        var comparison = ResumeComparison(saved: saved, current: config)
        if t.trainingData?.trainDigest != nil { comparison.judgeDataByContent() }
        var mismatches = comparison.mismatches.map(\.description)
        if c.shape != model.shape && mismatches.isEmpty { mismatches.append("model shape \(c.shape) → \(model.shape)") }
        guard mismatches.isEmpty else {
            throw TrainingError.resume(file: path, problem: "the checkpoint was written by a different experiment: " + mismatches.joined(separator: "; "),
                                       fix: "resume with the checkpoint's values of these flags, or start a new --run-dir")
        }
        // The same path may hold other data by now (re-prepared, another binarization), or another
        // path the same data: other rows would give another data order and other epochs, under
        // the name of the same run.
        let differences = data.differences(from: t.trainingData, referenceName: "the checkpoint's run trained on")
        guard differences.isEmpty else {
            throw TrainingError.resume(file: path, problem: "--data \(config.files.dataPath) is not the data the run trained on: " + differences.joined(separator: "; "),
                                       fix: "resume with the dataset the run trained on (its --data: \(saved.files.dataPath)), unchanged, or start a new --run-dir")
        }
        return comparison.scheduleChanges
    }
}

extension JSONDecoder {
    /// The decoder of the program's JSON files (snake_case keys; "inf", "-inf", "nan" as
    /// `JSONEncoder.snakeCase` writes them).
    static var snakeCase: JSONDecoder {
        let d = JSONDecoder()
        d.keyDecodingStrategy = .convertFromSnakeCase
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return d
    }
}
