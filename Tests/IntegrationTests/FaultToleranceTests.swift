import BSVIStorage
import Foundation
import Testing

/// Failures during a run (issue 6): nothing hangs, nothing already written is lost.
@Suite("Fault tolerance", .serialized)
struct FaultToleranceTests {
    func flags(_ data: String, _ run: String) -> [String] {
        ["train", "--data", data, "--run-dir", run, "--batch-size", "8", "--seed", "3"] + tinyModel
    }

    @Test("a rank that fails prints one `rank r:` line and the whole job ends within 10 s")
    func failingRankAbortsTheJob() throws {
        let dir = try makeTemporaryDirectory(prefix: "rankfail")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Row 60 holds a value 7. At start each rank checks a contiguous half of /train (rows
        // 48…95 are rank 1's with P = 2), so rank 1 alone finds it, before any step.
        var values = [UInt8](repeating: 0, count: 96 * 16)
        for r in 0..<96 { for c in 0..<16 { values[r * 16 + c] = UInt8((r + c) % 2) } }
        values[60 * 16 + 2] = 7
        try BinaryDatasetWriter.write(to: dir + "/half.h5", splits: [.init(name: .train, rows: 96, width: 16, values: values)],
                                      imageHeight: 4, imageWidth: 4, source: "test")
        let r = try mpirunBSVI(ranks: 2, flags(dir + "/half.h5", dir + "/run") + ["--epochs", "3", "--no-final-eval"], timeout: 60)
        #expect(r.status != 0 && !r.timedOut)
        #expect(r.seconds < 10, "mpirun took \(r.seconds) s to end")
        let line = try #require(r.stderr.split(separator: "\n").first { $0.hasPrefix("rank 1:") }, "\(r.stderr)")
        #expect(line.contains("half.h5") && line.contains("/train") && line.contains("first in row 60"))
        #expect(!r.stderr.contains("rank 0:"))
    }

    @Test("SIGKILL of a rank ends the job within 30 s; the checkpoints on disk stay valid and --resume auto continues")
    func killedRank() throws {
        let dir = try makeTemporaryDirectory(prefix: "kill")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeToyDataset(dir + "/toy.h5", train: 400)
        let run = dir + "/run"
        let args = ["--oversubscribe", "-np", "2", try binaryPath()] + flags(dir + "/toy.h5", run)
            + ["--epochs", "100000", "--checkpoint-every", "5", "--no-final-eval"]
        let p = Process()
        p.executableURL = URL(fileURLWithPath: mpirunPath())
        p.arguments = args
        p.environment = testEnvironment(mpiSessionFolder: dir)
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        let ended = DispatchSemaphore(value: 0)
        p.terminationHandler = { _ in ended.signal() }
        try launch(p)
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        // Wait (bounded) for the run to have written checkpoints: there is no event to wait on.
        let store = run + "/checkpoints"
        let deadline = Date().addingTimeInterval(60)
        while ((try? FileManager.default.contentsOfDirectory(atPath: store))?.filter { $0.hasPrefix("ckpt-") }.count ?? 0) < 2
                && Date() < deadline && p.isRunning {
            usleep(50_000)
        }
        // The ranks are the children of mpirun running bsvi-dist with this run dir.
        let pids = try runCommand("/usr/bin/pgrep", ["-f", "bsvi-dist train --data \(dir)"]).stdout
            .split(separator: "\n").compactMap { Int32($0) }.filter { $0 != p.processIdentifier }.sorted()
        try #require(pids.count == 2, "expected two rank processes, found \(pids)")
        kill(pids[1], SIGKILL)
        let killedAt = Date()
        #expect(ended.wait(timeout: .now() + 30) == .success, "mpirun did not end within 30 s of the kill")
        #expect(Date().timeIntervalSince(killedAt) < 30)
        #expect(p.terminationStatus != 0)
        // Every checkpoint that is on disk reads and validates.
        let names = try FileManager.default.contentsOfDirectory(atPath: store).filter { $0.hasPrefix("ckpt-") }
        #expect(!names.isEmpty)
        var newest = 0
        for n in names {
            let c = try CheckpointFile.read(store + "/" + n, requireTrainingState: true)
            newest = max(newest, c.step)
        }
        // Resume continues from the newest and finishes.
        let resumed = try mpirunBSVI(ranks: 2, flags(dir + "/toy.h5", run) + ["--max-steps", "\(newest + 10)", "--resume", "auto", "--no-final-eval"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stdout.contains("resuming from") && resumed.stdout.contains("at step \(newest)"))
        #expect(try CheckpointFile.read(run + "/final.h5").step == newest + 10)
        #expect(try FileManager.default.contentsOfDirectory(atPath: store).filter { $0.contains(".tmp-") }.isEmpty)
    }

    @Test("a NaN on one rank makes every rank skip that step; the skip is counted and reported")
    func nonFiniteStepsAreSkippedTogether() throws {
        let dir = try makeTemporaryDirectory(prefix: "nan")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeToyDataset(dir + "/toy.h5")
        let r = try mpirunBSVI(ranks: 2, flags(dir + "/toy.h5", dir + "/run") + ["--epochs", "2", "--inject-nan", "3-4:1"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("step 4: non-finite loss or gradient on 1 rank(s); skipped on all ranks"))
        let metrics = try String(contentsOfFile: dir + "/run/metrics.csv", encoding: .utf8)
        let lastTrain = try #require(metrics.split(separator: "\n").last { $0.hasPrefix("train,") })
        #expect(lastTrain.split(separator: ",", omittingEmptySubsequences: false)[12] == "2")
        let summary = try readJSON(dir + "/run/summary.json")
        let sums = try #require(summary["parameter_checksums"] as? [String])
        #expect(Set(sums).count == 1)
        let ckpt = try CheckpointFile.read(dir + "/run/final.h5", requireTrainingState: true)
        #expect(ckpt.training?.skippedSteps == 2 && ckpt.training?.adamStep == ckpt.step - 2)
    }

    @Test("after --max-bad-steps consecutive skips the run stops with a clear error and the last good checkpoint")
    func tooManyBadSteps() throws {
        let dir = try makeTemporaryDirectory(prefix: "bad")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeToyDataset(dir + "/toy.h5")
        let r = try mpirunBSVI(ranks: 2, flags(dir + "/toy.h5", dir + "/run")
                               + ["--epochs", "5", "--checkpoint-every", "2", "--max-bad-steps", "3", "--inject-nan", "5-1000:0"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("3 consecutive steps had non-finite") && r.stderr.contains("last good checkpoint"))
        #expect(r.stderr.split(separator: "\n").filter { $0.contains("consecutive") }.count == 1, "one message, from rank 0: \(r.stderr)")
        let ckpt = try CheckpointFile.read(dir + "/run/checkpoints/ckpt-4.h5", requireTrainingState: true)
        #expect(ckpt.parameters.allSatisfy { $0.isFinite })
        #expect(r.stderr.contains("ckpt-4.h5") || r.stderr.contains("ckpt-6.h5"))
    }

    @Test("ranks whose parameters drift apart are detected and named")
    func driftIsDetected() throws {
        let dir = try makeTemporaryDirectory(prefix: "drift")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeToyDataset(dir + "/toy.h5")
        let r = try mpirunBSVI(ranks: 2, flags(dir + "/toy.h5", dir + "/run") + ["--epochs", "2", "--consistency-every", "2", "--inject-drift", "2:1"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("parameter checksums of rank(s) 1 differ from rank 0"), "\(r.stderr)")
    }

    @Test("a checkpoint that cannot be written stops the run; earlier checkpoints stay, no temp file is left",
          .enabled(if: getuid() == 0))
    func diskFull() throws {
        let dir = try makeTemporaryDirectory(prefix: "full")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeToyDataset(dir + "/toy.h5")
        // Measure one checkpoint, then give the run a filesystem with room for about 1.5 of them.
        let probe = try bsvi(flags(dir + "/toy.h5", dir + "/probe") + ["--max-steps", "1", "--no-final-eval"])
        #expect(probe.status == 0, "\(probe.stderr)")
        let size = try #require(try FileManager.default.attributesOfItem(atPath: dir + "/probe/final.h5")[.size] as? Int)
        let mount = dir + "/small"
        try FileManager.default.createDirectory(atPath: mount, withIntermediateDirectories: true)
        let pages = (3 * size / 2 + 8192) / 4096 + 1
        let m = try runCommand("/bin/mount", ["-t", "tmpfs", "-o", "size=\(pages * 4096)", "tmpfs", mount])
        try #require(m.status == 0, "cannot mount a tmpfs: \(m.stderr)")
        defer { _ = try? runCommand("/bin/umount", [mount]) }
        let r = try bsvi(flags(dir + "/toy.h5", mount + "/run") + ["--epochs", "50", "--checkpoint-every", "2", "--no-final-eval"])
        #expect(r.status != 0 && !r.signaled)
        #expect(r.stderr.contains("ckpt-") && r.stderr.lowercased().contains("disk full"), "\(r.stderr)")
        // One line naming the HDF5 call that failed and the system's reason.
        let errorLines = r.stderr.split(separator: "\n").filter { !$0.isEmpty }
        #expect(errorLines.count == 1 && errorLines[0].contains(" failed: file write failed: No space left on device"), "\(r.stderr)")
        let names = try FileManager.default.contentsOfDirectory(atPath: mount + "/run/checkpoints")
        #expect(names.filter { $0.contains(".tmp-") }.isEmpty, "temp files left: \(names)")
        let kept = names.filter { $0.hasPrefix("ckpt-") }
        #expect(!kept.isEmpty)
        for n in kept { _ = try CheckpointFile.read(mount + "/run/checkpoints/" + n, requireTrainingState: true) }
    }

    @Test("SIGTERM during a checkpoint write: the checkpoint completes, all ranks stop after the next step with a checkpoint, exit 0")
    func stopSignalDuringCheckpoint() throws {
        let dir = try makeTemporaryDirectory(prefix: "stop-checkpoint")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeToyDataset(dir + "/toy.h5")
        let run = dir + "/run"
        // 96 rows, batch 8: 12 steps per epoch; the first evaluation and checkpoint come at step 12.
        let r = try mpirunBSVI(ranks: 2, flags(dir + "/toy.h5", run)
                               + ["--epochs", "5", "--eval-every", "1", "--inject-stop-during", "checkpoint"], timeout: 120)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("stop requested (signal): all ranks stopped after step 13"), "\(r.stdout)")
        #expect(r.stdout.contains("--resume auto"))
        // The evaluation before it was recorded; the checkpoint being written when the signal came
        // is complete and valid, and so is the stop checkpoint.
        let metrics = try String(contentsOfFile: run + "/metrics.csv", encoding: .utf8)
        #expect(metrics.split(separator: "\n").filter { $0.hasPrefix("eval,1,12,valid") }.count == 1, "\(metrics)")
        let interrupted = try CheckpointFile.read(run + "/checkpoints/ckpt-12.h5", requireTrainingState: true)
        #expect(interrupted.step == 12 && interrupted.history.count == 1)
        let stop = try CheckpointFile.read(run + "/checkpoints/ckpt-13.h5", requireTrainingState: true)
        #expect(stop.step == 13)
        #expect(!FileManager.default.fileExists(atPath: run + "/final.h5"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: run + "/checkpoints").filter { $0.contains(".tmp-") }.isEmpty)
    }

    /// Issue 14: an evaluation (periodic or final) honours a stop within a bounded time. The ranks
    /// vote on the stop flag every round (DistributedEvaluation.roundRowsPerRank examples per rank) and abandon it.
    @Test("SIGTERM during an evaluation under mpirun: abandoned within a few examples, the stop checkpoint written, exit 0; resume finishes",
          arguments: ["periodic", "final"])
    func stopSignalDuringEvaluation(which: String) throws {
        let dir = try makeTemporaryDirectory(prefix: "stop-eval-\(which)")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeToyDataset(dir + "/toy.h5", valid: 40, test: 40)
        let run = dir + "/run"
        // 96 rows, batch 8: 12 steps per epoch. Periodic: the validation evaluation after epoch 1;
        // final: the test evaluation after the single epoch.
        let schedule = which == "periodic" ? ["--epochs", "3", "--eval-every", "1"] : ["--epochs", "1"]
        let r = try mpirunBSVI(ranks: 2, flags(dir + "/toy.h5", run) + schedule + ["--eval-samples", "2000", "--inject-stop-during", "evaluation"],
                               timeout: 120)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("stopped by a signal while evaluating"), "\(r.stdout)")
        #expect(r.stdout.contains("stop requested (signal): all ranks stopped after step 12"), "\(r.stdout)")
        let stop = try CheckpointFile.read(run + "/checkpoints/ckpt-12.h5", requireTrainingState: true)
        #expect(stop.step == 12 && stop.history.isEmpty, "the abandoned evaluation is not recorded")
        let metrics = try String(contentsOfFile: run + "/metrics.csv", encoding: .utf8)
        #expect(!metrics.contains("\neval,"), "\(metrics)")
        #expect(!FileManager.default.fileExists(atPath: run + "/final.h5"))
        // The same command plus --resume auto runs what is left and finishes.
        let resumed = try mpirunBSVI(ranks: 2, flags(dir + "/toy.h5", run) + schedule + ["--eval-samples", "50", "--resume", "auto"], timeout: 120)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(FileManager.default.fileExists(atPath: run + "/final.h5"))
    }
}
