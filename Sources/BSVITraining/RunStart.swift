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
    var adamStep = 0
    /// The checkpoint continued from, and what changed since it was written.
    var resumedFrom: String?
    var resume: ResumeRecord?
    var message: String?

    /// Rank 0 fills `params` and `adam` (from the seed or the checkpoint) and returns the rest,
    /// with `history` and `resumes` of the run so far.
    static func decide(config: RunConfiguration, resumeFlag: String?, worldSize: Int, store: CheckpointStore, model: VAEModel,
                       params: FloatBuffer, adam: Adam, history: inout [MetricRecord], resumes: inout [ResumeRecord]) throws -> RunStart {
        let runDirectory = config.files.runDirectory
        do {
            try FileManager.default.createDirectory(atPath: runDirectory, withIntermediateDirectories: true)
        } catch {
            throw TrainingError.cannotWrite(file: runDirectory, problem: "cannot create the run folder (\(error.localizedDescription)); choose another --run-dir")
        }
        store.removeStaleTemporaryFiles()
        let folder = RunFolder(path: runDirectory, store: store)
        var start = RunStart()
        switch resumeFlag {
        case "auto"? where folder.neverStarted:
            // One command serves the first submission of a batch job and every requeue.
            start.message = "--resume auto: \(runDirectory) holds no checkpoint and no metrics yet; starting a new run"
            params.copy(from: model.makeInitialParameters(seed: config.optimizer.seed))
        case let flag?:
            let (checkpoint, path) = try Self.checkpoint(flag, store: store, folder: folder, runDirectory: runDirectory)
            let changes = try Self.checkCompatible(checkpoint, path: path, config: config, model: model)
            let training = checkpoint.training!
            params.copy(from: checkpoint.parameters)
            adam.firstMoment.copy(from: training.firstMoment)
            adam.secondMoment.copy(from: training.secondMoment)
            history = checkpoint.history
            resumes = training.resumesJSON.flatMap { try? JSONDecoder.snakeCase.decode([ResumeRecord].self, from: Data($0.utf8)) } ?? []
            let record = ResumeRecord(step: checkpoint.step, worldSize: worldSize, previousWorldSize: training.worldSize,
                                      scheduleChanges: changes)
            resumes.append(record)
            start.step = checkpoint.step
            start.skippedSteps = training.skippedSteps
            start.adamStep = training.adamStep
            start.resumedFrom = path
            start.resume = record
        case nil:
            if let existing = store.list().first {
                throw TrainingError.invalidConfiguration(
                    flag: "--run-dir", problem: "\(runDirectory) already holds checkpoints of an earlier run (newest \(existing.path)); "
                        + "pass --resume auto to continue it, or choose a new --run-dir")
            }
            params.copy(from: model.makeInitialParameters(seed: config.optimizer.seed))
        }
        return start
    }

    static func checkpoint(_ flag: String, store: CheckpointStore, folder: RunFolder, runDirectory: String) throws -> (Checkpoint, String) {
        guard flag == "auto" else {
            guard FileManager.default.fileExists(atPath: flag) else {
                throw TrainingError.nothingToResume(file: flag, problem: "no such file", fix: "pass a checkpoint file, or --resume auto")
            }
            return (try CheckpointFile.read(flag, requireTrainingState: true), flag)
        }
        guard let found = store.newestValid(warn: { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }) else {
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
    static func checkCompatible(_ c: Checkpoint, path: String, config: RunConfiguration, model: VAEModel) throws -> [SettingChange] {
        guard let t = c.training else {
            throw TrainingError.resume(file: path, problem: "no training state", fix: "start a new run")
        }
        let saved: RunConfiguration
        do { saved = try RunConfiguration.fromJSON(t.configJSON) } catch {
            throw TrainingError.resume(file: path, problem: "/training attribute 'config' is not a valid bsvi-dist configuration",
                                       fix: "resume from a checkpoint written by bsvi-dist")
        }
        let comparison = ResumeComparison(saved: saved, current: config)
        var mismatches = comparison.mismatches.map(\.description)
        if c.shape != model.shape && mismatches.isEmpty { mismatches.append("model shape \(c.shape) → \(model.shape)") }
        guard mismatches.isEmpty else {
            throw TrainingError.resume(file: path, problem: "the checkpoint was written by a different experiment: " + mismatches.joined(separator: "; "),
                                       fix: "resume with the checkpoint's values of these flags, or start a new --run-dir")
        }
        return comparison.scheduleChanges
    }
}

extension JSONDecoder {
    /// The decoder of the program's JSON files (snake_case keys).
    static var snakeCase: JSONDecoder {
        let d = JSONDecoder()
        d.keyDecodingStrategy = .convertFromSnakeCase
        return d
    }
}
