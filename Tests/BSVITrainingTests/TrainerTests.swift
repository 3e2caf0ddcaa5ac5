import BSVI
import BSVIParallel
import BSVIStorage
import BSVITraining
import Foundation
import Testing

/// The training loop in this process on a LocalCommunicator: the schedule it follows, stopping
/// (a stop request injected instead of a signal) and resuming, the resume rule, the run-folder
/// lock. The subprocess tests (IntegrationTests) cover the same under mpirun and with signals.
@Suite("Trainer in process")
struct TrainerTests {
    /// A folder with a small structured dataset (noisy copies of 4 prototypes, 16 pixels).
    final class Fixture {
        let folder: String
        var data: String { folder + "/toy.h5" }

        init() throws {
            folder = NSTemporaryDirectory() + "bsvi-trainer-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            let stream = RandomStream(seed: 3, purpose: .sampling, 77)
            var counter: UInt64 = 0
            func rows(_ n: Int) -> [UInt8] {
                (0..<(n * 16)).map { i in
                    counter += 1
                    let prototype = (i / 16) % 4, pixel = i % 16
                    let bit: UInt8 = (prototype >> (pixel % 2)) & 1 == 1 ? 1 : 0
                    return stream.uniform(counter) < 0.1 ? 1 - bit : bit
                }
            }
            try BinaryDatasetWriter.write(to: data, splits: [
                .init(name: .train, rows: 120, width: 16, values: rows(120)),
                .init(name: .valid, rows: 20, width: 16, values: rows(20)),
                .init(name: .test, rows: 20, width: 16, values: rows(20)),
            ], imageHeight: 4, imageWidth: 4, source: "toy")
        }

        deinit { try? FileManager.default.removeItem(atPath: folder) }

        func config(_ run: String, epochs: Int = 3) -> RunConfiguration {
            var c = RunConfiguration()
            c.model.hiddenDims = [8]
            c.model.latentDim = 2
            c.objective.k = 2
            c.optimizer.batchSize = 12
            c.schedule.epochs = epochs
            c.evaluation.samples = 20
            c.files.dataPath = data
            c.files.runDirectory = folder + "/" + run
            return c
        }

        func train(_ config: RunConfiguration, resume: String? = nil, stopAfterSteps: Int? = nil) throws -> TrainingOutcome {
            var options = RunOptions()
            options.resume = resume
            options.progressInterval = 1e9
            if let n = stopAfterSteps {
                let polls = PollCounter()
                options.stopRequested = { polls.next() > n }
            }
            return try Trainer(config: config, options: options, comm: LocalCommunicator()).run()
        }

        func finalParameters(_ config: RunConfiguration) throws -> [Float] {
            try CheckpointFile.read(config.files.runDirectory + "/final.h5").parameters
        }
    }

    /// Counts the loop's stop polls (one per step, and some during evaluations).
    final class PollCounter: @unchecked Sendable {
        private var count = 0
        private let lock = NSLock()
        func next() -> Int { lock.withLock { count += 1; return count } }
    }

    @Test("a run ends at the scheduled step with final.h5, metrics rows per epoch and a snake_case summary.json")
    func finishes() throws {
        let f = try Fixture()
        let c = f.config("a")
        #expect(try f.train(c) == .finished(step: 30))
        let summary = try #require(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: c.files.runDirectory + "/summary.json"))) as? [String: Any])
        #expect(summary["steps"] as? Int == 30)
        #expect(summary["parameter_checksums"] != nil && summary["final_evaluation"] != nil && summary["parameterChecksums"] == nil)
        // The final evaluation's noise is keyed by the training seed: `eval --seed` with it reproduces the numbers.
        let evaluation = try #require(summary["final_evaluation"] as? [String: Any])
        #expect(evaluation["seed"] as? Int == Int(c.optimizer.seed))
        let metrics = try String(contentsOfFile: c.files.runDirectory + "/metrics.csv", encoding: .utf8).split(separator: "\n")
        #expect(metrics.filter { $0.hasPrefix("train,") }.count == 3)
        #expect(metrics.filter { $0.hasPrefix("eval,") }.count == 1)
    }

    @Test("stopped after step 13 (mid-epoch) with a checkpoint there; resumed, it ends bit for bit like an uninterrupted run")
    func stopAndResume() throws {
        let f = try Fixture()
        let straight = f.config("straight"), interrupted = f.config("interrupted")
        #expect(try f.train(straight) == .finished(step: 30))
        let stopped = try f.train(interrupted, stopAfterSteps: 12)
        guard case .stoppedBySignal(let step, let checkpoint) = stopped else { Issue.record("not stopped: \(stopped)"); return }
        #expect(step == 13)
        #expect(try CheckpointFile.read(checkpoint, requireTrainingState: true).step == 13)
        #expect(!FileManager.default.fileExists(atPath: interrupted.files.runDirectory + "/final.h5"))
        #expect(try f.train(interrupted, resume: "auto") == .finished(step: 30))
        #expect(try f.finalParameters(interrupted).map(\.bitPattern) == f.finalParameters(straight).map(\.bitPattern))
        // metrics.csv holds each epoch's row once.
        let rows = try String(contentsOfFile: interrupted.files.runDirectory + "/metrics.csv", encoding: .utf8).split(separator: "\n")
        #expect(rows.filter { $0.hasPrefix("train,") }.count == 3)
    }

    @Test("a schedule change on resume is recorded in the checkpoint and summary.json; an experiment change is refused naming the flag")
    func resumeRule() throws {
        let f = try Fixture()
        let first = f.config("run", epochs: 1)
        #expect(try f.train(first) == .finished(step: 10))
        var longer = first
        longer.schedule.epochs = 2
        longer.optimizer.learningRate = 0.002
        #expect(try f.train(longer, resume: "auto") == .finished(step: 20))
        let summary = try #require(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: first.files.runDirectory + "/summary.json"))) as? [String: Any])
        let resumes = try #require(summary["resumes"] as? [[String: Any]])
        #expect(resumes.count == 1 && resumes[0]["step"] as? Int == 10)
        let changes = try #require(resumes[0]["schedule_changes"] as? [[String: String]])
        #expect(changes.map { $0["flag"] } == ["--lr", "--epochs"])
        #expect(try CheckpointFile.read(first.files.runDirectory + "/final.h5").training?.resumesJSON?.contains("--epochs") == true)

        var other = longer
        other.schedule.epochs = 3
        other.objective.sviLearningRate = 0.01
        #expect {
            _ = try f.train(other, resume: "auto")
        } throws: { error in
            let e = error as? CollectiveError
            return e?.exitStatus == .badData && e!.message.contains("--svi-lr \(longer.objective.sviLearningRate) → 0.01")
        }
    }

    @Test("a stop request during the final evaluation abandons it; resuming runs it and finishes")
    func stopDuringFinalEvaluation() throws {
        let f = try Fixture()
        var c = f.config("eval-stop", epochs: 1)
        c.evaluation.samples = 2000  // long enough to poll the stop flag several times
        // 10 step polls, then the evaluation's polls (every 8 examples).
        let stopped = try f.train(c, stopAfterSteps: 10)
        guard case .stoppedBySignal(let step, _) = stopped else { Issue.record("not stopped: \(stopped)"); return }
        #expect(step == 10)
        #expect(!FileManager.default.fileExists(atPath: c.files.runDirectory + "/final.h5"))
        #expect(try f.train(c, resume: "auto") == .finished(step: 10))
        #expect(try CheckpointFile.read(c.files.runDirectory + "/final.h5").history.map(\.split) == ["test"])
    }

    @Test("a run folder held by another run is refused at once (status 73), naming the holder")
    func folderInUse() throws {
        let f = try Fixture()
        let c = f.config("busy")
        let lock = try RunFolderLock.acquire(runDirectory: c.files.runDirectory, warn: { _ in })
        defer { lock.release() }
        #expect {
            _ = try f.train(c)
        } throws: { error in
            let e = error as? CollectiveError
            return e?.exitStatus == .cannotCreateOutput && e!.message.contains("pid=\(getpid())") || e!.message.contains("\(getpid())")
        }
        #expect(!FileManager.default.fileExists(atPath: c.files.runDirectory + "/metrics.csv"))
    }

    static func rows(_ c: RunConfiguration) throws -> [Substring] {
        try String(contentsOfFile: c.files.runDirectory + "/metrics.csv", encoding: .utf8).split(separator: "\n")
    }

    @Test("--resume auto on a finished run does nothing: no second test evaluation, no resume row, final.h5 unchanged")
    func resumingAFinishedRun() throws {
        let f = try Fixture()
        let c = f.config("done", epochs: 1)
        #expect(try f.train(c) == .finished(step: 10))
        let final = try Data(contentsOf: URL(fileURLWithPath: c.files.runDirectory + "/final.h5"))
        let before = try Self.rows(c)
        #expect(try f.train(c, resume: "auto") == .finished(step: 10))
        #expect(try Self.rows(c) == before)
        #expect(try Data(contentsOf: URL(fileURLWithPath: c.files.runDirectory + "/final.h5")) == final)
        #expect(try CheckpointFile.read(c.files.runDirectory + "/final.h5").history.map(\.split) == ["test"])
        // With more samples or fewer rows asked for, the final evaluation is not the one recorded: it runs again.
        var more = c
        more.evaluation.samples = 30
        #expect(try f.train(more, resume: "auto") == .finished(step: 10))
        #expect(try Self.rows(c).filter { $0.hasPrefix("eval,") }.count == 2)
        var fewer = more
        fewer.evaluation.limit = 5
        #expect(try f.train(fewer, resume: "auto") == .finished(step: 10))
        #expect(try Self.rows(c).filter { $0.hasPrefix("eval,") }.last?.contains(",test,5,30,") == true)
    }

    @Test("a stop during an epoch's validation is made good on resume: the evaluation runs before the next step")
    func stopDuringValidation() throws {
        let f = try Fixture()
        var c = f.config("valid-stop", epochs: 2)
        c.evaluation.every = 1
        c.evaluation.samples = 2000  // long enough to poll the stop flag during it
        var straight = c
        straight.files.runDirectory = f.folder + "/valid-straight"
        #expect(try f.train(straight) == .finished(step: 20))
        // 10 step polls, then the validation's.
        let stopped = try f.train(c, stopAfterSteps: 10)
        guard case .stoppedBySignal(let step, _) = stopped else { Issue.record("not stopped: \(stopped)"); return }
        #expect(step == 10)
        #expect(try f.train(c, resume: "auto") == .finished(step: 20))
        let history = try CheckpointFile.read(c.files.runDirectory + "/final.h5").history
        #expect(history.map(\.split) == ["valid", "valid", "test"] && history.map(\.step) == [10, 20, 20])
        #expect(history == (try CheckpointFile.read(straight.files.runDirectory + "/final.h5").history))
        #expect(try f.finalParameters(c).map(\.bitPattern) == f.finalParameters(straight).map(\.bitPattern))
    }

    @Test("resuming from an earlier checkpoint moves the abandoned later ones (and final.h5) aside, so --resume auto continues the new branch")
    func resumingFromAnEarlierCheckpoint() throws {
        let f = try Fixture()
        let c = f.config("branch", epochs: 3)
        #expect(try f.train(c) == .finished(step: 30))
        let store = c.files.runDirectory + "/checkpoints"
        #expect(CheckpointStore(runDirectory: c.files.runDirectory, keep: 3).list().map(\.step) == [30, 20, 10])
        var branch = c
        branch.optimizer.learningRate = 0.0005
        branch.schedule.maxSteps = 15
        branch.schedule.checkpointEvery = 5
        #expect(try f.train(branch, resume: store + "/ckpt-10.h5") == .finished(step: 15))
        // The branch's checkpoints are the store's; the abandoned ones are kept in superseded-…/.
        #expect(CheckpointStore(runDirectory: c.files.runDirectory, keep: 3).list().map(\.step) == [15, 10])
        let aside = try FileManager.default.contentsOfDirectory(atPath: c.files.runDirectory).filter { $0.hasPrefix("superseded-") }
        #expect(aside.count == 1)
        let moved = try FileManager.default.contentsOfDirectory(atPath: c.files.runDirectory + "/" + aside[0]).sorted()
        #expect(moved == ["ckpt-20.h5", "ckpt-30.h5", "final.h5", "metrics.csv", "summary.json"])
        // The copy keeps the abandoned rows after step 10 that the run's own metrics.csv lost.
        let abandoned = try String(contentsOfFile: c.files.runDirectory + "/" + aside[0] + "/metrics.csv", encoding: .utf8)
        #expect(abandoned.split(separator: "\n").contains { $0.hasPrefix("eval,") && $0.contains(",30,test,") })
        #expect(try CheckpointFile.read(c.files.runDirectory + "/final.h5").step == 15)
        // --resume auto now continues the branch (step 15), not the abandoned run (step 30).
        var longer = branch
        longer.schedule.maxSteps = 20
        #expect(try f.train(longer, resume: "auto") == .finished(step: 20))
        #expect(try Self.rows(c).filter { $0.hasPrefix("resume,") }.map { $0.split(separator: ",")[2] } == ["10", "15"])

        // Back to the abandoned run's end: it is not "finished" while final.h5 is the branch's
        // (step 20); the branch's end moves aside and the run ends at 30 with its own final.h5.
        #expect(try f.train(c, resume: c.files.runDirectory + "/" + aside[0] + "/ckpt-30.h5") == .finished(step: 30))
        #expect(try CheckpointFile.read(c.files.runDirectory + "/final.h5").step == 30)
        #expect(try FileManager.default.contentsOfDirectory(atPath: c.files.runDirectory).filter { $0.hasPrefix("superseded-") }.count == 2)
    }

    @Test("a checkpoint from elsewhere does not continue into a folder that holds another run")
    func resumeIntoAnotherRunsFolder() throws {
        let f = try Fixture()
        let a = f.config("a", epochs: 1), b = f.config("b", epochs: 1)
        #expect(try f.train(a) == .finished(step: 10))
        #expect(try f.train(b) == .finished(step: 10))
        let before = try Self.rows(b)
        var continued = b
        continued.schedule.epochs = 2
        #expect {
            _ = try f.train(continued, resume: a.files.runDirectory + "/checkpoints/ckpt-10.h5")
        } throws: { error in
            let e = error as? CollectiveError
            return e?.exitStatus == .usage && e!.message.contains("holds another run") && e!.message.contains("new --run-dir")
        }
        #expect(try Self.rows(b) == before)
        // Into a new folder it continues.
        var elsewhere = continued
        elsewhere.files.runDirectory = f.folder + "/a-continued"
        #expect(try f.train(elsewhere, resume: a.files.runDirectory + "/checkpoints/ckpt-10.h5") == .finished(step: 20))
    }

    @Test("a fresh run refuses a folder holding an earlier run's rows or final.h5 without checkpoints (it would append and overwrite)")
    func freshRunInAUsedFolder() throws {
        let f = try Fixture()
        let c = f.config("used", epochs: 1)
        #expect(try f.train(c) == .finished(step: 10))
        try FileManager.default.removeItem(atPath: c.files.runDirectory + "/checkpoints")
        let before = try Self.rows(c)
        let final = try Data(contentsOf: URL(fileURLWithPath: c.files.runDirectory + "/final.h5"))
        #expect {
            _ = try f.train(c)
        } throws: { error in
            let e = error as? CollectiveError
            return e?.exitStatus == .usage && e!.message.contains("holds an earlier run") && e!.message.contains("final.h5")
                && e!.message.contains("--run-dir")
        }
        #expect(try Self.rows(c) == before)
        #expect(try Data(contentsOf: URL(fileURLWithPath: c.files.runDirectory + "/final.h5")) == final)
    }

    @Test("temp files of final.h5 and summary.json left by a killed writer are removed when a run takes the folder")
    func staleRunFileTemporaries() throws {
        let f = try Fixture()
        let c = f.config("temps", epochs: 1)
        try FileManager.default.createDirectory(atPath: c.files.runDirectory, withIntermediateDirectories: true)
        let stale = [".final.h5.tmp-424242", ".summary.json.tmp-424242"].map { c.files.runDirectory + "/" + $0 }
        for path in stale { try Data("partial".utf8).write(to: URL(fileURLWithPath: path)) }
        #expect(try f.train(c) == .finished(step: 10))
        for path in stale { #expect(!FileManager.default.fileExists(atPath: path), "\(path)") }
    }
}
