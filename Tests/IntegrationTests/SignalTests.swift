import BSVI
import BSVIStorage
import Foundation
import Testing

/// A command running in the background, its output in files (no pipe-buffer deadlocks).
final class BackgroundCommand {
    let process = Process()
    private let folder: String
    private let finished = DispatchSemaphore(value: 0)

    /// With `inheritBlockedStopSignals` false (the default) the child starts with SIGTERM, SIGINT,
    /// SIGUSR1 and SIGUSR2 unblocked, as from a shell; test threads (Dispatch workers) block them, and a child
    /// inherits the blocked mask of the thread that spawns it.
    init(_ executable: String, _ arguments: [String], environment: [String: String] = [:],
         inheritBlockedStopSignals: Bool = false) throws {
        folder = try makeTemporaryDirectory(prefix: "bg")
        for name in ["stdout", "stderr"] {
            guard FileManager.default.createFile(atPath: folder + "/" + name, contents: nil) else {
                throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: folder + "/" + name])
            }
        }
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = testEnvironment(environment, mpiSessionFolder: folder)
        process.standardOutput = FileHandle(forWritingAtPath: folder + "/stdout")
        process.standardError = FileHandle(forWritingAtPath: folder + "/stderr")
        process.standardInput = FileHandle.nullDevice
        process.terminationHandler = { [finished] _ in finished.signal() }
        if inheritBlockedStopSignals {
            try launch(process)
            return
        }
        let launched = DispatchSemaphore(value: 0)
        let launchError = HandOver<Error?>(nil)
        let launcher = Thread { [process] in
            var stopSignals = sigset_t()
            sigemptyset(&stopSignals)
            for signal in [SIGTERM, SIGINT, SIGUSR1, SIGUSR2] { sigaddset(&stopSignals, signal) }
            pthread_sigmask(SIG_UNBLOCK, &stopSignals, nil)
            do { try launch(process) } catch { launchError.value = error }
            launched.signal()
        }
        launcher.start()
        launched.wait()
        if let error = launchError.value { throw error }
    }

    /// Whether `signal` is blocked in the process (from /proc/<pid>/status).
    func blocks(_ signal: Int32) -> Bool {
        let status = (try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8)) ?? ""
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("SigBlk:") }),
              let mask = UInt64(line.dropFirst(7).trimmingCharacters(in: .whitespaces), radix: 16) else { return false }
        return mask & (1 << UInt64(signal - 1)) != 0
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL); finished.wait() }
        try? FileManager.default.removeItem(atPath: folder)
    }

    /// Waits for the process to end; false (and the process killed) after `timeout` seconds.
    func wait(timeout: TimeInterval) -> Bool {
        if finished.wait(timeout: .now() + timeout) == .success { return true }
        kill(process.processIdentifier, SIGKILL)
        finished.wait()
        return false
    }

    var stdout: String { (try? String(contentsOfFile: folder + "/stdout", encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOfFile: folder + "/stderr", encoding: .utf8)) ?? "" }
}

/// Polls `condition` every 20 ms for at most `timeout` seconds: only for states no event
/// announces (a file appearing, a process being forked by mpirun).
/// A value one thread writes and another reads after a semaphore says it is written.
final class HandOver<Value>: @unchecked Sendable {
    var value: Value
    init(_ value: Value) { self.value = value }
}

func pollUntil(timeout: TimeInterval, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if condition() { return true }
        Thread.sleep(forTimeInterval: 0.02)
    }
    return condition()
}

/// The pid of MPI rank `rank` among the children of the mpirun process `mpirun`.
func rankProcess(of mpirun: Int32, rank: Int) -> Int32? {
    let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(mpirun)/task")) ?? []
    for task in tasks {
        let children = (try? String(contentsOfFile: "/proc/\(mpirun)/task/\(task)/children", encoding: .utf8)) ?? ""
        for child in children.split(separator: " ").compactMap({ Int32($0) }) {
            guard let environ = FileManager.default.contents(atPath: "/proc/\(child)/environ") else { continue }
            let variables = environ.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            if variables.contains("OMPI_COMM_WORLD_RANK=\(rank)") { return child }
        }
    }
    return nil
}

/// SIGTERM/SIGINT: all ranks stop together after the current step, rank 0 checkpoints, the
/// job exits 0 and says how to resume (DESIGN.md §5, issue 4).
@Suite("Graceful stop on signals", .serialized)
struct SignalTests {
    /// Enough training rows that an epoch is hundreds of steps, and a step limit no test reaches:
    /// only the signal ends the run.
    static let trainRows = 4000

    func endlessFlags(data: String, runDir: String) -> [String] {
        CheckpointRun.flags(data: data, runDir: runDir) + ["--epochs", "0", "--max-steps", "100000000", "--checkpoint-every", "50"]
    }

    /// Starts `command`, waits for its first checkpoint, then calls `stop`.
    func startAndStopAfterFirstCheckpoint(_ command: BackgroundCommand, runDir: String, stop: () throws -> Void) throws {
        let folder = runDir + "/checkpoints"
        let appeared = pollUntil(timeout: 120) {
            ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).contains { $0.hasPrefix("ckpt-") }
        }
        try #require(appeared, "no checkpoint within 120 s: \(command.stdout)\n\(command.stderr)")
        try #require(command.process.isRunning, "the run ended before it was signaled: \(command.stdout)\n\(command.stderr)")
        #expect(!command.blocks(SIGTERM) && !command.blocks(SIGINT), "the test launched the run with stop signals blocked")
        try stop()
    }

    /// The step and checkpoint path named by the stop message, after checking the message.
    func stopReport(_ output: String) throws -> (step: Int, checkpoint: String) {
        let line = try #require(output.split(separator: "\n").first { $0.contains("stop requested") }, "no stop message in: \(output)")
        #expect(line.contains("--resume auto"), "the stop message should say how to resume: \(line)")
        let afterStep = try #require(line.range(of: "after step "))
        let step = try #require(Int(line[afterStep.upperBound...].prefix { $0.isNumber }))
        let afterCheckpoint = try #require(line.range(of: "checkpoint "))
        let rest = line[afterCheckpoint.upperBound...]
        let end = try #require(rest.range(of: ".h5"))
        return (step, String(rest[..<end.upperBound]))
    }

    /// The checkpoint a stop left behind is the newest, complete, valid and at the stop step.
    func expectStopCheckpoint(runDir: String, step: Int, path: String, ranks: Int) throws {
        #expect(path == runDir + "/checkpoints/ckpt-\(step).h5")
        let c = try CheckpointFile.read(path, requireTrainingState: true)
        #expect(c.step == step && c.training?.adamStep == step)
        #expect(c.training?.worldSize == ranks)
        let files = try FileManager.default.contentsOfDirectory(atPath: runDir + "/checkpoints")
        #expect(files.allSatisfy { !$0.hasPrefix(".") }, "temp files left: \(files)")
        let steps = files.compactMap { Int($0.dropFirst(5).dropLast(3)) }
        #expect(steps.max() == step, "\(files)")
        #expect(!FileManager.default.fileExists(atPath: runDir + "/final.h5"), "a stopped run is not finished")
    }

    /// Resumes the stopped run up to `extra` more steps and compares with an uninterrupted run.
    func expectResumeFinishesExactly(ranks: Int, data: String, runDir: String, stoppedAt step: Int, extra: Int,
                                     scratch: String) throws {
        let total = ["--epochs", "0", "--max-steps", "\(step + extra)"]
        let resumed = try CheckpointRun.train(ranks: ranks, CheckpointRun.flags(data: data, runDir: runDir) + total + ["--resume", "auto"])
        #expect(resumed.status == 0, "\(resumed.stdout)\n\(resumed.stderr)")
        #expect(resumed.stdout.contains("resuming from \(runDir)/checkpoints/ckpt-\(step).h5 at step \(step)"), "\(resumed.stdout)")
        let straight = try CheckpointRun.train(ranks: ranks, CheckpointRun.flags(data: data, runDir: scratch) + total)
        #expect(straight.status == 0, "\(straight.stderr)")
        let a = try CheckpointFile.read(runDir + "/final.h5", requireTrainingState: true)
        #expect(a.step == step + extra)
        CheckpointRun.expectIdenticalState(a, try CheckpointFile.read(scratch + "/final.h5"), "signal-stopped and resumed vs straight")
    }

    @Test("local run: the signal stops it after the current step with a checkpoint, exit 0, and --resume auto continues exactly",
          arguments: [SIGTERM, SIGINT])
    func localStop(signal: Int32) throws {
        let dir = try makeTemporaryDirectory(prefix: "sig\(signal)")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = dir + "/toy.h5"
        try writeToyDataset(data, train: Self.trainRows)
        let run = dir + "/run"
        let command = try BackgroundCommand(try binaryPath(), endlessFlags(data: data, runDir: run))
        try startAndStopAfterFirstCheckpoint(command, runDir: run) { kill(command.process.processIdentifier, signal) }
        #expect(command.wait(timeout: 120), "the run did not stop within 120 s of the signal")
        #expect(command.process.terminationReason == .exit, "killed by the signal instead of stopping")
        #expect(command.process.terminationStatus == 0, "\(command.stderr)")
        #expect(command.stderr.isEmpty, "\(command.stderr)")
        let (step, path) = try stopReport(command.stdout)
        try expectStopCheckpoint(runDir: run, step: step, path: path, ranks: 1)
        try expectResumeFinishesExactly(ranks: 1, data: data, runDir: run, stoppedAt: step, extra: 7, scratch: dir + "/straight")
    }

    @Test("mpirun -np 2, SIGTERM to one rank: the stop flag travels in the allreduce, all ranks stop, rank 0 checkpoints, exit 0",
          arguments: [0, 1])
    func mpiStopBySignalToOneRank(rank: Int) throws {
        let dir = try makeTemporaryDirectory(prefix: "sigrank\(rank)")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = dir + "/toy.h5"
        try writeToyDataset(data, train: Self.trainRows)
        let run = dir + "/run"
        let command = try BackgroundCommand(mpirunPath(), ["--oversubscribe", "-np", "2", try binaryPath()] + endlessFlags(data: data, runDir: run))
        try startAndStopAfterFirstCheckpoint(command, runDir: run) {
            var pid: Int32? = nil
            _ = pollUntil(timeout: 30) { pid = rankProcess(of: command.process.processIdentifier, rank: rank); return pid != nil }
            let target = try #require(pid, "rank \(rank) not found among mpirun's children")
            kill(target, SIGTERM)
        }
        #expect(command.wait(timeout: 120), "the job did not stop within 120 s of the signal")
        #expect(command.process.terminationReason == .exit && command.process.terminationStatus == 0,
                "status \(command.process.terminationStatus): \(command.stderr)")
        #expect(command.stderr.isEmpty, "\(command.stderr)")
        #expect(command.stdout.components(separatedBy: "stop requested").count == 2, "rank 0 alone reports: \(command.stdout)")
        let (step, path) = try stopReport(command.stdout)
        try expectStopCheckpoint(runDir: run, step: step, path: path, ranks: 2)
        try expectResumeFinishesExactly(ranks: 2, data: data, runDir: run, stoppedAt: step, extra: 5, scratch: dir + "/straight")
    }

    /// Open MPI 4.1's mpirun does not forward SIGTERM/SIGINT: it aborts the job, sending the ranks
    /// SIGCONT, then SIGTERM after odls_base_sigkill_timeout seconds (default 1), then SIGKILL after
    /// as many seconds again, and exits 1 whatever the ranks return; a rank that has written its
    /// stop checkpoint then blocks in MPI_Finalize until the SIGKILL. Usually the stop path writes
    /// the checkpoint inside that window (raised to 5 s here), but not always: the known issues
    /// below. What must hold whatever happens is that every checkpoint left is valid.
    @Test("mpirun -np 2, SIGTERM to mpirun: the job ends, every checkpoint left is valid, usually with a stop checkpoint")
    func mpiStopBySignalToMpirun() throws {
        let dir = try makeTemporaryDirectory(prefix: "sigmpirun")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = dir + "/toy.h5"
        try writeToyDataset(data, train: Self.trainRows)
        let run = dir + "/run"
        let command = try BackgroundCommand(mpirunPath(), ["--oversubscribe", "-np", "2", try binaryPath()] + endlessFlags(data: data, runDir: run),
                                            environment: ["OMPI_MCA_odls_base_sigkill_timeout": "5"])
        try startAndStopAfterFirstCheckpoint(command, runDir: run) { kill(command.process.processIdentifier, SIGTERM) }
        #expect(command.wait(timeout: 120), "the job did not end within 120 s of the signal")
        try expectEveryCheckpointValid(runDir: run, ranks: 2)
        withKnownIssue("mpirun's abort can SIGKILL the ranks before the stop checkpoint", isIntermittent: true) {
            let (step, path) = try stopReport(command.stdout)
            try expectStopCheckpoint(runDir: run, step: step, path: path, ranks: 2)
        }
        withKnownIssue("Open MPI 4.1 mpirun exits 1 after it is sent SIGTERM, whatever the ranks return") {
            #expect(command.process.terminationStatus == 0)
        }
    }

    /// Every ckpt-*.h5 in the run's folder reads and validates, with its step in its name.
    func expectEveryCheckpointValid(runDir: String, ranks: Int) throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: runDir + "/checkpoints").filter { $0.hasPrefix("ckpt-") }
        #expect(!files.isEmpty)
        for name in files {
            let c = try CheckpointFile.read(runDir + "/checkpoints/" + name, requireTrainingState: true)
            #expect(name == "ckpt-\(c.step).h5" && c.training?.worldSize == ranks)
        }
    }

    @Test("SIGKILL while checkpoints are being written: every checkpoint left is valid, and --resume auto continues exactly")
    func sigkillLeavesValidCheckpoints() throws {
        let dir = try makeTemporaryDirectory(prefix: "sigkill")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = dir + "/toy.h5"
        try writeToyDataset(data, train: Self.trainRows)
        let run = dir + "/run"
        // A checkpoint after every step: the run spends most of its time inside the atomic write.
        let flags = CheckpointRun.flags(data: data, runDir: run) + ["--epochs", "0", "--checkpoint-every", "1"]
        var killedAt: [Int] = []
        for round in 1...3 {
            let command = try BackgroundCommand(try binaryPath(), flags + ["--max-steps", "100000000"] + (round > 1 ? ["--resume", "auto"] : []))
            let folder = run + "/checkpoints"
            let before = (try? FileManager.default.contentsOfDirectory(atPath: folder))?.filter { $0.hasPrefix("ckpt-") } ?? []
            // Wait for a checkpoint this round wrote, then kill without warning.
            let progressed = pollUntil(timeout: 120) {
                let now = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { $0.hasPrefix("ckpt-") }
                return !Set(now).subtracting(before).isEmpty
            }
            try #require(progressed && command.process.isRunning, "\(command.stdout)\n\(command.stderr)")
            kill(command.process.processIdentifier, SIGKILL)
            #expect(command.wait(timeout: 60))
            #expect(command.process.terminationReason == .uncaughtSignal)
            try expectEveryCheckpointValid(runDir: run, ranks: 1)
            let steps = try FileManager.default.contentsOfDirectory(atPath: folder).compactMap { $0.hasPrefix("ckpt-") ? Int($0.dropFirst(5).dropLast(3)) : nil }
            killedAt.append(try #require(steps.max()))
        }
        #expect(killedAt == killedAt.sorted() && Set(killedAt).count == 3, "each round resumed and went further: \(killedAt)")
        // The last resume removes any temp file a killed writer left and ends where a straight run ends.
        let total = killedAt.last! + 5
        let resumed = try bsvi(flags + ["--max-steps", "\(total)", "--resume", "auto"])
        #expect(resumed.status == 0, "\(resumed.stdout)\n\(resumed.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: run + "/checkpoints").allSatisfy { !$0.hasPrefix(".") })
        let straight = try bsvi(CheckpointRun.flags(data: data, runDir: dir + "/straight") + ["--epochs", "0", "--max-steps", "\(total)"])
        #expect(straight.status == 0, "\(straight.stderr)")
        CheckpointRun.expectIdenticalState(try CheckpointFile.read(run + "/final.h5"), try CheckpointFile.read(dir + "/straight/final.h5"),
                                           "killed three times, resumed, vs straight")
    }

    /// Stop signals are held from main on and then released for commands without a graceful
    /// stop: released to what the process started with, not to the default action, or a parent's
    /// `trap '' TERM` (SIGINT in a script's background job) would be lost.
    @Test("a command without a graceful stop keeps ignoring the stop signals its parent ignored")
    func inheritedIgnoreIsKept() throws {
        let dir = try makeTemporaryDirectory(prefix: "sigign")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeToyDataset(dir + "/toy.h5")
        let command = try BackgroundCommand("/bin/sh", ["-c", "trap '' TERM INT; exec \"$0\" \"$@\"", try binaryPath(), "bench",
                                                        "--data", dir + "/toy.h5", "--batch-size", "16", "--steps", "300", "--eval-examples", "0"]
                                                        + tinyModel)
        // Not before the shell has set its trap: from the exec on (the process's name changes).
        let pid = command.process.processIdentifier
        let deadline = Date().addingTimeInterval(30)
        func name() -> String { ((try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines) }
        while name() != "bsvi-dist" && command.process.isRunning && Date() < deadline { usleep(200) }
        // Every 5 ms for the whole run: some land before main, some while the signals are
        // held, the rest after their release. All must be ignored.
        var sent = 0
        while command.process.isRunning {
            kill(command.process.processIdentifier, sent % 2 == 0 ? SIGTERM : SIGINT)
            sent += 1
            usleep(5000)
        }
        #expect(command.wait(timeout: 60))
        #expect(sent > 10, "the run ended before the signals could test anything (\(sent) sent)")
        #expect(command.process.terminationReason == .exit && command.process.terminationStatus == 0,
                "\(command.process.terminationReason == .uncaughtSignal ? "killed by signal" : "exit") \(command.process.terminationStatus): \(command.stderr)")
        #expect(command.stdout.contains("examples/s"), "\(command.stdout)")
    }

    /// A parent that blocks SIGTERM/SIGINT (a Dispatch-based supervisor, this test runner's
    /// threads) hands the mask on to the process it spawns; the run must still see the signal.
    @Test("a run launched with SIGTERM blocked by its parent still stops gracefully on SIGTERM")
    func stopsWhenLaunchedWithSignalsBlocked() throws {
        let dir = try makeTemporaryDirectory(prefix: "sigblocked")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = dir + "/toy.h5"
        try writeToyDataset(data, train: Self.trainRows)
        let run = dir + "/run"
        // The spawning thread's mask, blocked stop signals included, is what the run starts with.
        let launched = DispatchSemaphore(value: 0)
        let started = HandOver<Result<BackgroundCommand, Error>?>(nil)
        let launcher = Thread {
            var stopSignals = sigset_t()
            sigemptyset(&stopSignals)
            sigaddset(&stopSignals, SIGTERM)
            sigaddset(&stopSignals, SIGINT)
            pthread_sigmask(SIG_BLOCK, &stopSignals, nil)
            started.value = Result { try BackgroundCommand(try binaryPath(), self.endlessFlags(data: data, runDir: run), inheritBlockedStopSignals: true) }
            launched.signal()
        }
        launcher.start()
        launched.wait()
        let command = try started.value!.get()
        let folder = run + "/checkpoints"
        try #require(pollUntil(timeout: 120) { ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).contains { $0.hasPrefix("ckpt-") } })
        kill(command.process.processIdentifier, SIGTERM)
        #expect(command.wait(timeout: 30), "SIGTERM stayed pending: the run never saw it")
        #expect(command.process.terminationReason == .exit && command.process.terminationStatus == 0)
        let (step, path) = try stopReport(command.stdout)
        try expectStopCheckpoint(runDir: run, step: step, path: path, ranks: 1)
    }

    /// mpirun forwards SIGUSR1/SIGUSR2 to every rank at once (ess_base_forward_signals), so a rank
    /// that treats them like SIGTERM gives a graceful stop through mpirun with exit status 0.
    @Test("mpirun -np 2, SIGUSR1 to mpirun: forwarded to the ranks, graceful stop, exit 0")
    func mpiStopBySIGUSR1ToMpirun() throws {
        let dir = try makeTemporaryDirectory(prefix: "sigusr1")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = dir + "/toy.h5"
        try writeToyDataset(data, train: Self.trainRows)
        let run = dir + "/run"
        let command = try BackgroundCommand(mpirunPath(), ["--oversubscribe", "-np", "2", try binaryPath()] + endlessFlags(data: data, runDir: run))
        try startAndStopAfterFirstCheckpoint(command, runDir: run) { kill(command.process.processIdentifier, SIGUSR1) }
        #expect(command.wait(timeout: 120), "the job did not stop within 120 s of the signal")
        #expect(command.process.terminationReason == .exit && command.process.terminationStatus == 0, "\(command.stderr)")
        let (step, path) = try stopReport(command.stdout)
        try expectStopCheckpoint(runDir: run, step: step, path: path, ranks: 2)
        try expectResumeFinishesExactly(ranks: 2, data: data, runDir: run, stoppedAt: step, extra: 5, scratch: dir + "/straight")
    }
}
