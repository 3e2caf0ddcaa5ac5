import BSVI
import BSVIStorage
import BSVITraining
import Foundation
import Testing

/// Run folders a review left broken or wrong: a run stopped before its first checkpoint, a
/// schedule lowered below the checkpoint's step, an abandoned branch resumed, the non-finite
/// streak across a resume, a lost summary.json. Each ends as an uninterrupted run would.
@Suite("Run folder recovery", .serialized)
struct RunFolderRecoveryTests {
    final class Fixture {
        let dir: String
        let data: String
        let perEpoch = CheckpointRun.stepsPerEpoch()
        init(_ prefix: String) throws {
            dir = try makeTemporaryDirectory(prefix: prefix)
            data = dir + "/toy.h5"
            try writeToyDataset(data)
        }
        deinit { try? FileManager.default.removeItem(atPath: dir) }

        func train(_ run: String, _ extra: [String]) throws -> CommandResult {
            try bsvi(CheckpointRun.flags(data: data, runDir: dir + "/" + run) + extra)
        }

        func final(_ run: String) throws -> Checkpoint { try CheckpointFile.read(dir + "/" + run + "/final.h5", requireTrainingState: true) }

        func superseded(_ run: String) throws -> [String] {
            try FileManager.default.contentsOfDirectory(atPath: dir + "/" + run).filter { $0.hasPrefix("superseded-") }.sorted()
        }
    }

    @Test("--resume auto stops at a checkpoint another program holds open (HDF5's lock) instead of skipping it as damaged and setting it aside (74); a copy under another step's name is skipped")
    func lockedCheckpointIsNotDamage() throws {
        let f = try Fixture("locked")
        let first = try f.train("run", ["--max-steps", "\(2 * f.perEpoch)"])
        try #require(first.status == 0, "\(first.stderr)")
        let newest = f.dir + "/run/checkpoints/ckpt-\(2 * f.perEpoch).h5"
        // What h5py's File(path, "a") holds: an exclusive flock on the file.
        let fd = open(newest, O_RDONLY)
        try #require(fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0)
        // HDF5 takes its lock (and so sees this one) unless HDF5_USE_FILE_LOCKING=FALSE.
        let locked = try runCommand(try binaryPath(), CheckpointRun.flags(data: f.data, runDir: f.dir + "/run") + ["--max-steps", "\(3 * f.perEpoch)", "--resume", "auto"],
                                    environment: ["HDF5_USE_FILE_LOCKING": "TRUE"])
        close(fd)
        #expect(locked.status == 74, "\(locked.status): \(locked.stderr)")
        #expect(locked.stderr.contains(newest) && locked.stderr.contains("open for writing in another program"), "\(locked.stderr)")
        // It used to resume from the checkpoint before and set this one, final.h5 and summary.json aside.
        #expect(try f.superseded("run").isEmpty)
        #expect(FileManager.default.fileExists(atPath: newest) && FileManager.default.fileExists(atPath: f.dir + "/run/final.h5"))
        // The same for final.h5: it used to be taken for another branch's end and set aside.
        let finalFD = open(f.dir + "/run/final.h5", O_RDONLY)
        try #require(finalFD >= 0 && flock(finalFD, LOCK_EX | LOCK_NB) == 0)
        let lockedFinal = try runCommand(try binaryPath(), CheckpointRun.flags(data: f.data, runDir: f.dir + "/run") + ["--max-steps", "\(2 * f.perEpoch)", "--resume", "auto"],
                                         environment: ["HDF5_USE_FILE_LOCKING": "TRUE"])
        close(finalFD)
        #expect(lockedFinal.status == 74 && lockedFinal.stderr.contains(f.dir + "/run/final.h5"), "\(lockedFinal.status): \(lockedFinal.stderr)")
        #expect(try f.superseded("run").isEmpty)
        // A checkpoint renamed to a later step is not taken for that step.
        let renamed = f.dir + "/run/checkpoints/ckpt-\(5 * f.perEpoch).h5"
        try FileManager.default.copyItem(atPath: newest, toPath: renamed)
        let resumed = try f.train("run", ["--max-steps", "\(3 * f.perEpoch)", "--resume", "auto"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stderr.contains("holds step \(2 * f.perEpoch), not the \(5 * f.perEpoch) its name says"), "\(resumed.stderr)")
        #expect(resumed.stdout.contains("at step \(2 * f.perEpoch)"), "\(resumed.stdout)")
    }

    @Test("a file where checkpoints/ goes is refused before the first step (73, the folder named), on one rank and under mpirun")
    func checkpointFolderBlocked() throws {
        let f = try Fixture("ckpt-blocked")
        for ranks in [1, 2] {
            let run = f.dir + "/blocked\(ranks)"
            try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)
            #expect(FileManager.default.createFile(atPath: run + "/checkpoints", contents: Data("not a folder".utf8)))
            let flags = CheckpointRun.flags(data: f.data, runDir: run) + ["--max-steps", "\(2 * f.perEpoch)"]
            let r = ranks == 1 ? try bsvi(flags) : try mpirunBSVI(ranks: ranks, flags)
            // It used to train the whole epoch, then fail with a Foundation error and status 70.
            #expect(r.status == 73, "\(r.status): \(r.stderr)")
            #expect(r.stderr.contains(run + "/checkpoints") && r.stderr.contains("cannot create the checkpoint folder"), "\(r.stderr)")
            #expect(!r.stdout.contains("epoch 1 done"), "it trained before refusing: \(r.stdout)")
            #expect(try String(contentsOfFile: run + "/checkpoints", encoding: .utf8) == "not a folder")
        }
    }

    @Test("--resume auto on a run stopped before its first checkpoint (rows, no checkpoint) starts it again and sets the rows aside")
    func stoppedBeforeFirstCheckpoint() throws {
        let f = try Fixture("first-ckpt")
        let straight = try f.train("straight", ["--max-steps", "\(2 * f.perEpoch)"])
        try #require(straight.status == 0, "\(straight.stderr)")
        // What a run killed while writing its first checkpoint leaves: the epoch's row, no checkpoint.
        let killed = try f.train("killed", ["--max-steps", "\(f.perEpoch)"])
        try #require(killed.status == 0, "\(killed.stderr)")
        try FileManager.default.removeItem(atPath: f.dir + "/killed/checkpoints")
        try FileManager.default.removeItem(atPath: f.dir + "/killed/final.h5")
        let rows = try String(contentsOfFile: f.dir + "/killed/metrics.csv", encoding: .utf8)

        let requeued = try f.train("killed", ["--max-steps", "\(2 * f.perEpoch)", "--resume", "auto"])
        #expect(requeued.status == 0, "\(requeued.stderr)")
        #expect(requeued.stdout.contains("holds metrics rows of its first epoch but no checkpoint (the run stopped before its first)"), "\(requeued.stdout)")
        CheckpointRun.expectIdenticalState(try f.final("straight"), try f.final("killed"), "started again")
        let aside = try f.superseded("killed")
        try #require(aside.count == 1)
        #expect(try String(contentsOfFile: f.dir + "/killed/\(aside[0])/metrics.csv", encoding: .utf8) == rows)
        #expect(try ResumeTests.epochRows(f.dir + "/killed/metrics.csv") == ResumeTests.epochRows(f.dir + "/straight/metrics.csv"))

        // Rows of a run that continued another's checkpoint (a resume row) are not a run from the
        // seed: starting over would drop the continuation. Refused, and nothing moves.
        let source = try f.train("source", ["--max-steps", "3", "--checkpoint-every", "3"])
        try #require(source.status == 0, "\(source.stderr)")
        let continued = try f.train("continued", ["--max-steps", "\(f.perEpoch)", "--resume", f.dir + "/source/checkpoints/ckpt-3.h5"])
        try #require(continued.status == 0, "\(continued.stderr)")
        try FileManager.default.removeItem(atPath: f.dir + "/continued/checkpoints")
        try FileManager.default.removeItem(atPath: f.dir + "/continued/final.h5")
        let again = try f.train("continued", ["--max-steps", "\(2 * f.perEpoch)", "--resume", "auto"])
        #expect(again.status != 0 && again.stderr.contains("no readable checkpoint found"), "\(again.stderr)")
        #expect(try f.superseded("continued").isEmpty)
    }

    @Test("--resume with --epochs/--max-steps ending before the checkpoint's step is refused; final.h5 stays where it is")
    func scheduleEndingBeforeTheCheckpoint() throws {
        let f = try Fixture("lowered")
        let long = try f.train("run", ["--max-steps", "\(2 * f.perEpoch)"])
        try #require(long.status == 0, "\(long.stderr)")
        let before = try CheckpointRun.bytes(f.dir + "/run/final.h5")
        let lowered = try f.train("run", ["--max-steps", "\(f.perEpoch)", "--resume", "auto"])
        #expect(lowered.status == 64, "\(lowered.stderr)")
        #expect(lowered.stderr.contains("is at step \(2 * f.perEpoch), past step \(f.perEpoch)") && lowered.stderr.contains("--resume PATH"),
                "\(lowered.stderr)")
        #expect(try CheckpointRun.bytes(f.dir + "/run/final.h5") == before)
        #expect(try f.superseded("run").isEmpty)
        // At or before the end, by path: allowed, and it finishes there.
        let earlier = try f.train("run", ["--max-steps", "\(f.perEpoch)", "--resume", f.dir + "/run/checkpoints/ckpt-\(f.perEpoch).h5"])
        #expect(earlier.status == 0, "\(earlier.stderr)")
        #expect(try f.final("run").step == f.perEpoch)
    }

    @Test("resuming an abandoned branch's last checkpoint finishes that branch again: final.h5 of the same step but the other branch is not 'in place', and metrics.csv's rows are that branch's again")
    func abandonedBranchEnd() throws {
        let f = try Fixture("branch")
        let end = 2 * f.perEpoch
        // Validation at each epoch's end puts evaluation rows in metrics.csv too.
        let schedule = ["--max-steps", "\(end)", "--eval-every", "1", "--eval-limit", "8"]
        let a = try f.train("run", schedule)
        try #require(a.status == 0, "\(a.stderr)")
        let finalA = try f.final("run")
        let rowsA = try Self.resultRows(f.dir + "/run/metrics.csv")
        // Branch B: from the first epoch's end with another learning rate, to the same step.
        let b = try f.train("run", schedule + ["--lr", "0.002", "--resume", f.dir + "/run/checkpoints/ckpt-\(f.perEpoch).h5"])
        try #require(b.status == 0, "\(b.stderr)")
        let rowsB = try Self.resultRows(f.dir + "/run/metrics.csv")
        try #require(rowsB != rowsA && rowsB.count == rowsA.count, "\(rowsB)")
        let aside = try f.superseded("run")
        try #require(aside.count == 1)
        // Back to branch A's end: its final.h5 is in the superseded folder, B's is in place.
        let back = try f.train("run", schedule + ["--resume", f.dir + "/run/\(aside[0])/ckpt-\(end).h5"])
        #expect(back.status == 0, "\(back.stderr)")
        #expect(!back.stdout.contains("nothing left to do"), "\(back.stdout)")
        CheckpointRun.expectIdenticalState(finalA, try f.final("run"), "branch A again")
        let asideNow = try f.superseded("run")
        #expect(asideNow.count == 2)  // B's final.h5 and summary.json, set aside in turn
        // metrics.csv is branch A's again (its rows were B's from the first epoch's end on), and B's
        // rows are kept with B's files.
        #expect(try Self.resultRows(f.dir + "/run/metrics.csv") == rowsA)
        #expect(back.stdout.contains("the rows up to the checkpoint are its branch's"), "\(back.stdout)")
        let newest = try #require(asideNow.first { $0 != aside[0] })
        #expect(try Self.resultRows(f.dir + "/run/\(newest)/metrics.csv") == rowsB)
    }

    /// A metrics.csv's `train` and `eval` rows, from `kind` to `amortization_gap` (not the timing columns).
    static func resultRows(_ path: String) throws -> [String] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").filter { $0.hasPrefix("train,") || $0.hasPrefix("eval,") }
            .map { $0.split(separator: ",", omittingEmptySubsequences: false).prefix(11).joined(separator: ",") }
    }

    @Test("the non-finite streak is carried in the checkpoint: a run resumed inside a streak gives up where an uninterrupted one does (70)")
    func badStreakAcrossResume() throws {
        let f = try Fixture("streak")
        // Steps 3–9 fail: 7 in a row, one more than --max-bad-steps allows. Split after step 6
        // (3 of them), the resumed run gives up at its third only if it carries the first three.
        let faults = ["--max-bad-steps", "6", "--inject-nan", "3-9:0", "--max-steps", "\(2 * f.perEpoch)"]
        let straight = try f.train("straight", faults)
        #expect(straight.status == 70, "\(straight.stderr)")
        let first = try f.train("split", faults.dropLast(2) + ["--max-steps", "6"])
        try #require(first.status == 0, "\(first.stderr)")
        #expect(try CheckpointFile.read(f.dir + "/split/checkpoints/ckpt-6.h5", requireTrainingState: true).training?.badStreak == 3)
        let resumed = try f.train("split", faults + ["--resume", "auto"])
        #expect(resumed.status == 70, "\(resumed.stderr)")
    }

    @Test("a finished run whose summary.json was lost writes it again with the same final evaluation, recorded once")
    func lostSummary() throws {
        let f = try Fixture("summary")
        let flags = ["--max-steps", "\(f.perEpoch)", "--eval-samples", "5", "--eval-limit", "8"]
        let run = try bsvi(CheckpointRun.flags(data: f.data, runDir: f.dir + "/run").filter { $0 != "--no-final-eval" } + flags)
        try #require(run.status == 0, "\(run.stderr)")
        let summary = f.dir + "/run/summary.json"
        func evaluation() throws -> [String: Any] {
            var e = try #require((try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: summary))) as? [String: Any])?["final_evaluation"] as? [String: Any])
            e["seconds"] = nil
            return e
        }
        let before = try evaluation()
        try FileManager.default.removeItem(atPath: summary)
        let again = try bsvi(CheckpointRun.flags(data: f.data, runDir: f.dir + "/run").filter { $0 != "--no-final-eval" } + flags + ["--resume", "auto"])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(NSDictionary(dictionary: try evaluation()).isEqual(to: before))
        let testRows = try String(contentsOfFile: f.dir + "/run/metrics.csv", encoding: .utf8).split(separator: "\n").filter { $0.contains(",test,") }
        #expect(testRows.count == 1, "\(testRows)")
        #expect(try f.final("run").history.filter { $0.split == "test" }.count == 1)
    }
}
