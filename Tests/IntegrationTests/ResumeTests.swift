import BSVI
import BSVIStorage
import BSVITraining
import Foundation
import Testing

/// Resume is exact: a run split anywhere and resumed ends with the same bits as an
/// uninterrupted run with the same flags and world size.
@Suite("Resume", .serialized)
struct ResumeTests {
    struct Split: CustomStringConvertible, Sendable {
        var ranks: Int
        /// The first part stops in the middle of the first epoch, or at its end (N/2 of two epochs).
        var midEpoch: Bool
        func stopStep(_ stepsPerEpoch: Int) -> Int { midEpoch ? stepsPerEpoch / 2 + 1 : stepsPerEpoch }
        var description: String { "P=\(ranks), " + (midEpoch ? "split mid-epoch" : "split at the epoch boundary (N/2)") }
    }

    static let splits = [Split(ranks: 1, midEpoch: false), Split(ranks: 1, midEpoch: true),
                         Split(ranks: 2, midEpoch: false), Split(ranks: 2, midEpoch: true)]

    @Test("N steps straight = K steps, then --resume auto with the same --max-steps N: identical parameters, Adam state and history",
          arguments: splits)
    func resumeIsBitExact(split: Split) throws {
        let dir = try makeTemporaryDirectory(prefix: "resume\(split.ranks)")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = dir + "/toy.h5"
        try writeToyDataset(data)
        let perEpoch = CheckpointRun.stepsPerEpoch()
        let total = 2 * perEpoch
        let stop = split.stopStep(perEpoch)
        try #require(stop > 0 && stop < total)
        // Validation evaluations at each epoch end make the history part of the comparison.
        func flags(_ run: String) -> [String] {
            CheckpointRun.flags(data: data, runDir: run) + ["--eval-every", "1", "--eval-limit", "8"]
        }

        let straight = try CheckpointRun.train(ranks: split.ranks, flags(dir + "/straight") + ["--max-steps", "\(total)"])
        #expect(straight.status == 0, "\(straight.stderr)")
        let first = try CheckpointRun.train(ranks: split.ranks, flags(dir + "/split") + ["--max-steps", "\(stop)"])
        #expect(first.status == 0, "\(first.stderr)")
        // A run that ends inside an epoch reports that epoch's steps so far (a short run had no
        // training row at all); the resume below removes the row, as the epoch goes on.
        let partial = try Self.epochRows(dir + "/split/metrics.csv").filter { $0.contains(",\(MetricsLog.partialEpochSplit),") }
        if stop % perEpoch != 0 {
            #expect(partial.count == 1 && partial[0].hasPrefix("train,\(stop / perEpoch + 1),\(stop),train_partial,\(CheckpointRun.batch * (stop % perEpoch)),"),
                    "\(partial)")
            #expect(first.stdout.contains("epoch \(stop / perEpoch + 1) (its first \(stop % perEpoch) of \(perEpoch) steps) done: step \(stop)"), "\(first.stdout)")
        } else {
            #expect(partial.isEmpty, "\(partial)")
        }
        let stopped = try CheckpointFile.read(dir + "/split/checkpoints/ckpt-\(stop).h5", requireTrainingState: true)
        #expect(stopped.step == stop && stopped.epoch == stop / perEpoch)
        #expect(stopped.training?.worldSize == split.ranks)
        #expect(stopped.training?.adamStep == stop)

        let second = try CheckpointRun.train(ranks: split.ranks, flags(dir + "/split") + ["--max-steps", "\(total)", "--resume", "auto"])
        #expect(second.status == 0, "\(second.stdout)\n\(second.stderr)")
        #expect(second.stdout.contains("resuming from \(dir)/split/checkpoints/ckpt-\(stop).h5 at step \(stop)"), "\(second.stdout)")
        #expect(second.stdout.contains("\(total) steps in total"), "\(second.stdout)")
        #expect(!second.stdout.contains("warning"), "\(second.stdout)")

        let a = try CheckpointFile.read(dir + "/straight/final.h5", requireTrainingState: true)
        let b = try CheckpointFile.read(dir + "/split/final.h5", requireTrainingState: true)
        #expect(a.step == total)
        CheckpointRun.expectIdenticalState(a, b, "\(split)")
        // The history carries over: both validation evaluations, in order, with the same numbers.
        #expect(a.history.map(\.step) == [perEpoch, total])
        #expect(b.history.map(\.step) == a.history.map(\.step))
        #expect(b.history.map(\.logLikelihood.bitPattern) == a.history.map(\.logLikelihood.bitPattern))
        // metrics.csv's epoch rows too, the epoch the split fell in included (its sums are carried
        // in the checkpoint): every column but the timing ones.
        #expect(try Self.epochRows(dir + "/split/metrics.csv") == Self.epochRows(dir + "/straight/metrics.csv"))
        #expect(try Self.epochRows(dir + "/straight/metrics.csv").count == 2)
        #expect(try !String(contentsOfFile: dir + "/split/metrics.csv", encoding: .utf8).contains(MetricsLog.partialEpochSplit))
        // summary.json: the whole run's steps, and the part this process trained (its timing's).
        let (straightSummary, splitSummary) = (try readJSON(dir + "/straight/summary.json"), try readJSON(dir + "/split/summary.json"))
        #expect(straightSummary["steps"] as? Int == total && straightSummary["process_steps"] as? Int == total)
        #expect(splitSummary["steps"] as? Int == total && splitSummary["process_steps"] as? Int == total - stop, "\(splitSummary)")
        // The epoch-end checkpoint the straight run wrote after the split point is the same too.
        if stop < perEpoch {
            CheckpointRun.expectIdenticalState(try CheckpointFile.read(dir + "/straight/checkpoints/ckpt-\(perEpoch).h5"),
                                               try CheckpointFile.read(dir + "/split/checkpoints/ckpt-\(perEpoch).h5"),
                                               "\(split), epoch-end checkpoint")
        }
    }

    @Test("a run that ended inside an epoch keeps its partial epoch row through resumes with nothing left to train")
    func partialEpochRowSurvivesResumesWithNothingToTrain() throws {
        let dir = try makeTemporaryDirectory(prefix: "partialrow")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = dir + "/toy.h5"
        try writeToyDataset(data)
        let stop = CheckpointRun.stepsPerEpoch() / 2
        let flags = CheckpointRun.flags(data: data, runDir: dir + "/run") + ["--max-steps", "\(stop)"]
        let first = try bsvi(flags)
        try #require(first.status == 0, "\(first.stderr)")
        let rows = try Self.epochRows(dir + "/run/metrics.csv")
        try #require(rows.count == 1 && rows[0].contains(",\(MetricsLog.partialEpochSplit),"), "\(rows)")
        let full = try String(contentsOfFile: dir + "/run/metrics.csv", encoding: .utf8)
        // Finished: nothing to do, and the row stays (the trimming used to remove it for good).
        let again = try bsvi(flags + ["--resume", "auto"])
        #expect(again.status == 0 && again.stdout.contains("nothing left to do"), "\(again.stdout)\n\(again.stderr)")
        #expect(try Self.epochRows(dir + "/run/metrics.csv") == rows)
        // Finished but for summary.json (a crash before it): the end runs again without a step
        // trained here, and keeps the row the first part wrote, its speed included.
        try FileManager.default.removeItem(atPath: dir + "/run/summary.json")
        let ending = try bsvi(flags + ["--resume", "auto"])
        #expect(ending.status == 0, "\(ending.stderr)")
        let after = try String(contentsOfFile: dir + "/run/metrics.csv", encoding: .utf8)
        #expect(after.split(separator: "\n").filter { $0.contains(MetricsLog.partialEpochSplit) }
                    == full.split(separator: "\n").filter { $0.contains(MetricsLog.partialEpochSplit) }, "\(after)")
    }

    @Test("a run stopped at its last step inside an epoch gets its partial epoch row on a resume with nothing left to train, as a straight run has it")
    func partialEpochRowOfARunStoppedAtItsLastStep() throws {
        let dir = try makeTemporaryDirectory(prefix: "stoppedlast")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = dir + "/toy.h5"
        try writeToyDataset(data)
        let last = CheckpointRun.stepsPerEpoch() / 2 + 1
        func flags(_ run: String, maxSteps: Int = last) -> [String] {
            CheckpointRun.flags(data: data, runDir: dir + "/" + run) + ["--max-steps", "\(maxSteps)"]
        }
        let straight = try bsvi(flags("straight"))
        try #require(straight.status == 0, "\(straight.stderr)")
        let straightRows = try Self.epochRows(dir + "/straight/metrics.csv")
        try #require(straightRows.count == 1 && straightRows[0].contains(",\(MetricsLog.partialEpochSplit),"), "\(straightRows)")
        // The stop arrives while step last − 1's checkpoint is written, so the run stops after
        // step `last` with its stop checkpoint and never reaches the end that writes the row.
        let stopped = try bsvi(flags("run") + ["--checkpoint-every", "\(last - 1)", "--inject-stop-during", "checkpoint"])
        try #require(stopped.status == 0, "\(stopped.stderr)")
        try #require(FileManager.default.fileExists(atPath: dir + "/run/checkpoints/ckpt-\(last).h5"), "\(stopped.stdout)")
        #expect(try Self.epochRows(dir + "/run/metrics.csv").isEmpty)
        let resumed = try bsvi(flags("run") + ["--resume", "auto"])
        #expect(resumed.status == 0, "\(resumed.stdout)\n\(resumed.stderr)")
        #expect(try Self.epochRows(dir + "/run/metrics.csv") == straightRows)
        // This process timed none of the epoch's steps: its speed is left empty, not 0.
        let row = try #require(try String(contentsOfFile: dir + "/run/metrics.csv", encoding: .utf8).split(separator: "\n")
            .first { $0.contains(",\(MetricsLog.partialEpochSplit),") })
        let columns = MetricsLog.header.split(separator: ",")
        let speed = try #require(columns.firstIndex(of: "examples_per_s"))
        #expect(row.split(separator: ",", omittingEmptySubsequences: false)[speed].isEmpty, "\(row)")
        #expect(resumed.stdout.contains("no steps timed in this process"), "\(resumed.stdout)")

        // Resumed by path from the earlier checkpoint and ended there: the rows after it go and
        // the epoch's partial row at that step comes, as a straight run of that length has it.
        let shorter = try bsvi(flags("shorter", maxSteps: last - 1))
        try #require(shorter.status == 0, "\(shorter.stderr)")
        let back = try bsvi(flags("run", maxSteps: last - 1) + ["--resume", dir + "/run/checkpoints/ckpt-\(last - 1).h5"])
        #expect(back.status == 0, "\(back.stdout)\n\(back.stderr)")
        #expect(try Self.epochRows(dir + "/run/metrics.csv") == Self.epochRows(dir + "/shorter/metrics.csv"))
    }

    /// The `train` rows of a metrics.csv, from `kind` to `amortization_gap` (not the timing columns).
    static func epochRows(_ path: String) throws -> [String] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").filter { $0.hasPrefix("train,") }
            .map { $0.split(separator: ",", omittingEmptySubsequences: false).prefix(11).joined(separator: ",") }
    }

    @Test("a mid-epoch --checkpoint-every checkpoint resumed by path; --epochs counts the whole run")
    func midEpochByPathAndEpochsCountTheWholeRun() throws {
        let dir = try makeTemporaryDirectory(prefix: "midepoch")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = dir + "/toy.h5"
        try writeToyDataset(data)
        let perEpoch = CheckpointRun.stepsPerEpoch()
        let epochs = 2
        let every = perEpoch / 2 - 1
        try #require(every > 1 && perEpoch % every != 0)
        // The first part stops after the second epoch began; the checkpoints it leaves are the
        // newest --keep-checkpoints of those at multiples of `every` and at the epoch end.
        let stop = 3 * every + 2
        try #require(stop > perEpoch && stop < epochs * perEpoch)
        func flags(_ run: String) -> [String] { CheckpointRun.flags(data: data, runDir: run) + ["--epochs", "\(epochs)"] }

        let straight = try bsvi(flags(dir + "/straight"))
        #expect(straight.status == 0, "\(straight.stderr)")
        let first = try bsvi(flags(dir + "/first") + ["--max-steps", "\(stop)", "--checkpoint-every", "\(every)"])
        #expect(first.status == 0, "\(first.stderr)")
        let written = Set([every, 2 * every, 3 * every, perEpoch, stop].filter { $0 <= stop })
        let kept = written.sorted(by: >).prefix(3).map { "ckpt-\($0).h5" }
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: dir + "/first/checkpoints")) == Set(kept))

        // The mid-epoch one: not the newest, not at an epoch boundary.
        let midEpoch = 3 * every
        try #require(midEpoch % perEpoch != 0 && midEpoch < stop)
        let path = dir + "/first/checkpoints/ckpt-\(midEpoch).h5"
        let c = try CheckpointFile.read(path, requireTrainingState: true)
        #expect(c.step == midEpoch && c.epoch == midEpoch / perEpoch)

        // Resumed into a new run folder with the same --epochs and no --max-steps: it stops where
        // the uninterrupted run stopped.
        let second = try bsvi(flags(dir + "/second") + ["--resume", path])
        #expect(second.status == 0, "\(second.stdout)\n\(second.stderr)")
        #expect(second.stdout.contains("resuming from \(path) at step \(midEpoch)"), "\(second.stdout)")
        let a = try CheckpointFile.read(dir + "/straight/final.h5", requireTrainingState: true)
        let b = try CheckpointFile.read(dir + "/second/final.h5", requireTrainingState: true)
        #expect(b.step == epochs * perEpoch && b.epoch == epochs)
        CheckpointRun.expectIdenticalState(a, b, "mid-epoch resume by path")
        let summary = try readJSON(dir + "/second/summary.json")
        #expect(summary["steps"] as? Int == epochs * perEpoch)
        // Only the resumed part's epoch rows are in the new folder's metrics.
        let csv = try String(contentsOfFile: dir + "/second/metrics.csv", encoding: .utf8).split(separator: "\n")
        #expect(csv.filter { $0.hasPrefix("train,") }.count == epochs - midEpoch / perEpoch)

        // Resuming a finished run changes nothing.
        let again = try bsvi(flags(dir + "/second") + ["--resume", "auto"])
        #expect(again.status == 0, "\(again.stderr)")
        CheckpointRun.expectIdenticalState(a, try CheckpointFile.read(dir + "/second/final.h5"), "resuming a finished run")
    }

    @Test("--resume refuses a checkpoint of a different run (method flags), whatever the world size")
    func resumeRefusesOtherRuns() throws {
        let dir = try makeTemporaryDirectory(prefix: "mismatch")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = dir + "/toy.h5"
        try writeToyDataset(data)
        let t = try mpirunBSVI(ranks: 2, CheckpointRun.flags(data: data, runDir: dir + "/p2") + ["--max-steps", "5"])
        #expect(t.status == 0, "\(t.stderr)")
        let path = dir + "/p2/final.h5"

        var other = CheckpointRun.flags(data: data, runDir: dir + "/k3") + ["--max-steps", "10", "--resume", path]
        other[other.firstIndex(of: "--k")! + 1] = "3"
        other[other.firstIndex(of: "--seed")! + 1] = "12"
        other += ["--svi-lr", "0.01"]  // a setting the resume check once ignored
        for ranks in [2, 3] {
            let k = try mpirunBSVI(ranks: ranks, other)
            #expect(k.status == 65)
            #expect(k.stderr.contains("--k 2 → 3") && k.stderr.contains("--seed 11 → 12") && k.stderr.contains("--svi-lr \(MethodDefaults.of(.bsvi).sviLearningRate) → 0.01"), "\(k.stderr)")
            #expect(!k.stderr.contains("world size"), "the world size may change: \(k.stderr)")
            #expect(k.stderr.components(separatedBy: "cannot resume").count == 2, "only rank 0 reports: \(k.stderr)")
        }
    }

    @Test("--resume refuses the same --data path re-prepared with other rows (another data order), and resumes the same rows under any path")
    func resumeRefusesChangedData() throws {
        let dir = try makeTemporaryDirectory(prefix: "datachange")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = dir + "/toy.h5"
        try writeToyDataset(data)
        let flags = CheckpointRun.flags(data: data, runDir: dir + "/run")
        let first = try bsvi(flags + ["--max-steps", "5"])
        try #require(first.status == 0, "\(first.stderr)")
        let words = try #require(try CheckpointFile.read(dir + "/run/final.h5").training?.trainingData?.fingerprint)
        #expect(words == DatasetFingerprint.ofTrainingData(try BinaryDataset(path: data)).words)

        try FileManager.default.removeItem(atPath: data)
        try writeToyDataset(data, train: 80)
        let changed = try bsvi(flags + ["--max-steps", "10", "--resume", "auto"])
        #expect(changed.status == 65, "\(changed.stderr)")
        #expect(changed.stderr.contains("is not the data the run trained on: /train 80 rows × 16 (the checkpoint's run trained on: 96 rows × 16)"),
                "\(changed.stderr)")
        // Nothing of the run was set aside by the refused resume.
        #expect(FileManager.default.fileExists(atPath: dir + "/run/final.h5"))

        // Other rows of the same shape and binarization: only the digest of /train tells.
        try FileManager.default.removeItem(atPath: data)
        try writeToyDataset(data, seed: 99)
        let otherRows = try bsvi(flags + ["--max-steps", "10", "--resume", "auto"])
        #expect(otherRows.status == 65 && otherRows.stderr.contains("/train holds other rows of the same shape"), "\(otherRows.stderr)")

        // The same rows prepared again from another folder (`source` names the input path): the
        // same data, which resumes.
        try FileManager.default.removeItem(atPath: data)
        try writeToyDataset(data, source: "/scratch/job-812/toy")
        let same = try bsvi(flags + ["--max-steps", "10", "--resume", "auto"])
        #expect(same.status == 0, "\(same.stderr)")

        // The content decides, not the path: a copy elsewhere resumes, and so does a relative
        // --data typed in another folder (a requeued job's); the new path is recorded as a change.
        // They used to be refused as "a different experiment: --data …".
        try FileManager.default.createDirectory(atPath: dir + "/elsewhere", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: data, toPath: dir + "/elsewhere/toy.h5")
        let copy = try bsvi(CheckpointRun.flags(data: dir + "/elsewhere/toy.h5", runDir: dir + "/run") + ["--max-steps", "15", "--resume", "auto"])
        #expect(copy.status == 0 && (copy.stdout + copy.stderr).contains("the same data (its rows' digest) at another path: --data \(data) → \(dir)/elsewhere/toy.h5"),
                "\(copy.stdout)\n\(copy.stderr)")
        let relative = try runCommand(try binaryPath(), CheckpointRun.flags(data: "toy.h5", runDir: dir + "/run") + ["--max-steps", "20", "--resume", "auto"],
                                      directory: dir + "/elsewhere")
        #expect(relative.status == 0, "\(relative.stderr)")
        let recorded = try #require(try CheckpointFile.read(dir + "/run/final.h5").training?.resumesJSON)
        #expect(recorded.contains("elsewhere/toy.h5") && recorded.contains("\"flag\":\"--data\""), "\(recorded)")
        // Other content at another path is still refused, by what differs.
        try writeToyDataset(dir + "/other.h5", seed: 99)
        let other = try bsvi(CheckpointRun.flags(data: dir + "/other.h5", runDir: dir + "/run") + ["--max-steps", "25", "--resume", "auto"])
        #expect(other.status == 65 && other.stderr.contains("/train holds other rows of the same shape"), "\(other.stderr)")
    }

    @Test("--resume refuses /valid or /test rows the run evaluated that changed (one curve of two validation sets); a change in rows it never evaluated resumes")
    func resumeRefusesChangedEvaluationRows() throws {
        let dir = try makeTemporaryDirectory(prefix: "evalchange")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = dir + "/toy.h5"
        try writeToyDataset(data)
        let perEpoch = CheckpointRun.stepsPerEpoch()
        let evaluated = 8
        // Validation at each epoch's end and the final test evaluation, on the first 8 rows of each.
        let flags = CheckpointRun.flags(data: data, runDir: dir + "/run").filter { $0 != "--no-final-eval" }
            + ["--eval-every", "1", "--eval-limit", "\(evaluated)"]
        let first = try bsvi(flags + ["--max-steps", "\(perEpoch)"])
        try #require(first.status == 0, "\(first.stderr)")
        let recorded = try #require(try CheckpointFile.read(dir + "/run/final.h5").training?.trainingData)
        #expect(recorded.validDigest?.rows == evaluated && recorded.testDigest?.rows == evaluated, "\(recorded)")
        #expect(recorded.validDigest?.digest != recorded.testDigest?.digest)

        /// The same dataset but for one pixel of `split`'s row `row`.
        func flipOnePixel(of split: DataSplit, row: Int) throws {
            try FileManager.default.removeItem(atPath: data)
            try writeToyDataset(data) { s, values in if s == split { values[row * 16 + 3] ^= 1 } }
        }
        for split in [DataSplit.valid, .test] {
            try flipOnePixel(of: split, row: evaluated - 1)
            let changed = try bsvi(flags + ["--max-steps", "\(2 * perEpoch)", "--resume", "auto"])
            #expect(changed.status == 65, "\(split): \(changed.stdout)\n\(changed.stderr)")
            #expect(changed.stderr.contains("is not the data the run trained on: /\(split.rawValue) holds other rows of the same shape "
                                            + "(the digest of the \(evaluated) rows evaluated"), "\(changed.stderr)")
        }
        // A row past those the run evaluates: nothing it evaluated changed, so it resumes.
        try flipOnePixel(of: .valid, row: evaluated)
        let resumed = try bsvi(flags + ["--max-steps", "\(2 * perEpoch)", "--resume", "auto"])
        #expect(resumed.status == 0, "\(resumed.stdout)\n\(resumed.stderr)")
        #expect(try CheckpointFile.read(dir + "/run/final.h5").training?.trainingData?.validDigest == recorded.validDigest)
    }

    @Test("a refused --resume into a folder it would have made leaves no folder behind; an existing folder is left as it was")
    func refusedResumeLeavesNoNewFolder() throws {
        let dir = try makeTemporaryDirectory(prefix: "refusedfolder")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = dir + "/toy.h5"
        try writeToyDataset(data)
        let missing = try bsvi(CheckpointRun.flags(data: data, runDir: dir + "/new") + ["--resume", dir + "/nowhere.h5"])
        #expect(missing.status == 66 && missing.stderr.contains("nowhere.h5"), "\(missing.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/new"))
        // A checkpoint of another experiment (another --k), refused by what differs.
        let other = try bsvi(CheckpointRun.flags(data: data, runDir: dir + "/other") + ["--max-steps", "2"])
        try #require(other.status == 0, "\(other.stderr)")
        let mismatch = try bsvi(CheckpointRun.flags(data: data, runDir: dir + "/new") + ["--k", "3", "--resume", dir + "/other/final.h5"])
        #expect(mismatch.status == 65 && mismatch.stderr.contains("different experiment"), "\(mismatch.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/new"))
        // A folder that was there before keeps what it held.
        let before = try FileManager.default.contentsOfDirectory(atPath: dir + "/other").sorted()
        let intoExisting = try bsvi(CheckpointRun.flags(data: data, runDir: dir + "/other") + ["--resume", dir + "/nowhere.h5"])
        #expect(intoExisting.status == 66, "\(intoExisting.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir + "/other").sorted() == before)
    }

    @Test("a requeued Slurm job resumes although its earlier incarnation, killed on another host, left the lock named; another job is refused")
    func requeuedJobTakesOverTheLock() throws {
        let dir = try makeTemporaryDirectory(prefix: "requeue")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = dir + "/toy.h5"
        try writeToyDataset(data)
        let flags = CheckpointRun.flags(data: data, runDir: dir + "/run") + ["--checkpoint-every", "4"]
        let first = try bsvi(flags + ["--max-steps", "8"])
        try #require(first.status == 0, "\(first.stderr)")
        // What a rank 0 killed with its node leaves: its name in the lock file.
        let left = "host=node-gone\npid=4242\nsince=2026-12-03T10:00:00Z\nslurm_job=812\nslurm_restart=0\n"
        try left.write(toFile: dir + "/run/.lock", atomically: false, encoding: .utf8)
        let binary = try binaryPath()
        let resume = flags + ["--max-steps", "12", "--resume", "auto"]
        let otherJob = try runCommand(binary, resume, environment: ["SLURM_JOB_ID": "900", "SLURM_RESTART_COUNT": "1"])
        #expect(otherJob.status == 73 && otherJob.stderr.contains("run on another host (pid 4242 on host node-gone"), "\(otherJob.stderr)")
        let requeued = try runCommand(binary, resume, environment: ["SLURM_JOB_ID": "812", "SLURM_RESTART_COUNT": "1"])
        #expect(requeued.status == 0, "\(requeued.stderr)")
        #expect(requeued.stdout.contains("taking over the run folder") && requeued.stdout.contains("Slurm requeued the job (this is restart 1)"),
                "\(requeued.stdout)")
        #expect(try CheckpointFile.read(dir + "/run/final.h5").step == 12)
    }

    @Test("--resume auto on a run folder that does not exist, or that never recorded anything, starts a fresh run and says so")
    func resumeAutoStartsANewRun() throws {
        let dir = try makeTemporaryDirectory(prefix: "autofresh")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = dir + "/toy.h5"
        try writeToyDataset(data)
        let fresh = try bsvi(CheckpointRun.flags(data: data, runDir: dir + "/plain") + ["--max-steps", "5"])
        try #require(fresh.status == 0, "\(fresh.stderr)")
        let expected = try CheckpointFile.read(dir + "/plain/final.h5", requireTrainingState: true)

        // A folder that is not there yet (the first submission of a batch job), and one holding
        // only what a job scheduler or a run stopped before its first checkpoint leaves:
        // its log file and a metrics.csv with just the header.
        let created = dir + "/created"
        try FileManager.default.createDirectory(atPath: created, withIntermediateDirectories: true)
        try "job log\n".write(toFile: created + "/slurm-1.out", atomically: true, encoding: .utf8)
        try (MetricsLog.header + "\n").write(toFile: created + "/metrics.csv", atomically: true, encoding: .utf8)
        for run in [dir + "/new/run", created] {
            let r = try bsvi(CheckpointRun.flags(data: data, runDir: run) + ["--max-steps", "5", "--resume", "auto"])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stdout.contains("--resume auto: \(run) holds no checkpoint and no metrics yet; starting a new run"), "\(r.stdout)")
            #expect(!r.stdout.contains("resuming from"))
            // Started from the seed: the same state as a run without --resume.
            CheckpointRun.expectIdenticalState(expected, try CheckpointFile.read(run + "/final.h5", requireTrainingState: true), run)
        }
        #expect(try String(contentsOfFile: created + "/slurm-1.out", encoding: .utf8) == "job log\n")
    }

    @Test("--resume auto on a folder with metrics but no readable checkpoint is refused, naming the folder, and nothing there changes")
    func resumeAutoRefusesARunWithoutCheckpoint() throws {
        let dir = try makeTemporaryDirectory(prefix: "autorefuse")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = dir + "/toy.h5"
        try writeToyDataset(data)
        let run = dir + "/run"
        let perEpoch = CheckpointRun.stepsPerEpoch()
        let first = try bsvi(CheckpointRun.flags(data: data, runDir: run) + ["--max-steps", "\(2 * perEpoch)"])
        try #require(first.status == 0, "\(first.stderr)")
        let metricsBefore = try String(contentsOfFile: run + "/metrics.csv", encoding: .utf8)
        try #require(MetricsLog.recordCount(atPath: run + "/metrics.csv") == 2)

        // The checkpoints were lost: metrics only, with a row after the first checkpoint's step
        // (so there were checkpoints; RunFolderRecoveryTests has the run killed before its first).
        try FileManager.default.removeItem(atPath: run + "/checkpoints")
        try FileManager.default.removeItem(atPath: run + "/final.h5")
        let lost = try bsvi(CheckpointRun.flags(data: data, runDir: run) + ["--max-steps", "\(3 * perEpoch)", "--resume", "auto"])
        #expect(lost.status != 0 && !lost.signaled)
        #expect(lost.stderr.contains("cannot resume from \(run)/checkpoints: no readable checkpoint found")
                && lost.stderr.contains("metrics.csv with 2 row(s)") && lost.stderr.contains("--resume PATH"), "\(lost.stderr)")
        #expect(try String(contentsOfFile: run + "/metrics.csv", encoding: .utf8) == metricsBefore)
        #expect(!FileManager.default.fileExists(atPath: run + "/checkpoints"))

        // A damaged checkpoint and no metrics: refused too (there was a run), with a warning for the file.
        let damaged = dir + "/damaged"
        try FileManager.default.createDirectory(atPath: damaged + "/checkpoints", withIntermediateDirectories: true)
        try "not hdf5".write(toFile: damaged + "/checkpoints/ckpt-12.h5", atomically: true, encoding: .utf8)
        let r = try bsvi(CheckpointRun.flags(data: data, runDir: damaged) + ["--max-steps", "5", "--resume", "auto"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("skipping unreadable checkpoint") && r.stderr.contains("1 checkpoint file(s)"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: damaged + "/metrics.csv"))
    }
}
