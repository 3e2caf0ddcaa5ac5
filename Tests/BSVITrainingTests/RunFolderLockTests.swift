@testable import BSVITraining
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The lock on real files and processes: one holder at a time, a kernel lock other processes
/// see, released by release(), by deinit and by the holder's death (SIGKILL).
@Suite("run folder lock")
struct RunFolderLockTests {
    static func scratchFolder() throws -> String {
        let dir = NSTemporaryDirectory() + "bsvi-lock-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    static func lockFileText(_ run: String) -> String {
        (try? String(contentsOfFile: run + "/" + RunFolderLock.fileName, encoding: .utf8)) ?? ""
    }

    /// Takes `run`'s lock, writing each warning to `warnings`.
    static func acquire(_ run: String, warnings: inout [String]) throws -> RunFolderLock {
        var collected: [String] = []
        defer { warnings += collected }
        return try RunFolderLock.acquire(runDirectory: run, warn: { collected.append($0) })
    }

    @Test("one holder at a time: a second acquire is refused naming the holder; after release the folder is free again")
    func acquireRefuseRelease() throws {
        let base = try Self.scratchFolder()
        defer { try? FileManager.default.removeItem(atPath: base) }
        let run = base + "/nested/run"  // created by acquire
        var warnings: [String] = []
        let first = try Self.acquire(run, warnings: &warnings)
        #expect(warnings.isEmpty && first.path == run + "/.lock")
        #expect(RunFolderLockHolder(fileContents: Self.lockFileText(run)) == first.holder)
        #expect(first.holder.pid == getpid())

        let refusal = #expect(throws: RunFolderLockError.self) { _ = try Self.acquire(run, warnings: &warnings) }
        #expect(refusal == .heldByAnotherRun(lockFile: first.path, holder: first.holder))
        let message = refusal.map { "\($0)" } ?? ""
        #expect(message.contains("pid \(getpid()) on host \(first.holder.host), since ") && message.contains("--run-dir"), "\(message)")

        first.release()
        #expect(Self.lockFileText(run).isEmpty, "a clean release empties the file")
        let second = try Self.acquire(run, warnings: &warnings)
        #expect(warnings.isEmpty, "\(warnings)")
        second.release()
        second.release()  // a second release does nothing
    }

    @Test("releaseRemovingFolder removes a folder that holds only the lock file, and keeps one that holds more; the folder can be locked again")
    func releaseRemovingFolder() throws {
        let base = try Self.scratchFolder()
        defer { try? FileManager.default.removeItem(atPath: base) }
        var warnings: [String] = []
        let run = base + "/run"
        try Self.acquire(run, warnings: &warnings).releaseRemovingFolder()
        #expect(!FileManager.default.fileExists(atPath: run))
        #expect(FileManager.default.fileExists(atPath: base), "only the run folder goes")

        let lock = try Self.acquire(run, warnings: &warnings)
        #expect(FileManager.default.createFile(atPath: run + "/metrics.csv", contents: Data("kind\n".utf8)))
        lock.releaseRemovingFolder()
        #expect(try FileManager.default.contentsOfDirectory(atPath: run).sorted() == [RunFolderLock.fileName, "metrics.csv"])
        // Released: the folder is free, and no warning (a clean release).
        let again = try Self.acquire(run, warnings: &warnings)
        again.release()
        #expect(warnings.isEmpty, "\(warnings)")
    }

    @Test("a lock the program lets go of without release() (an error unwinding the run) is released by deinit")
    func deinitReleases() throws {
        let run = try Self.scratchFolder()
        defer { try? FileManager.default.removeItem(atPath: run) }
        var warnings: [String] = []
        do { _ = try Self.acquire(run, warnings: &warnings) }
        #expect(Self.lockFileText(run).isEmpty)
        try Self.acquire(run, warnings: &warnings).release()
        #expect(warnings.isEmpty, "\(warnings)")
    }

    @Test("a lock file left by a dead process on this host (a child started and reaped) is taken over with a warning naming it")
    func staleLockOfDeadPidIsTakenOver() throws {
        let run = try Self.scratchFolder()
        defer { try? FileManager.default.removeItem(atPath: run) }
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/bin/sh")
        child.arguments = ["-c", "exit 0"]
        try child.run()
        child.waitUntilExit()
        let dead = RunFolderLockHolder(host: RunFolderLockHolder.current().host, pid: child.processIdentifier,
                                       since: Date(timeIntervalSince1970: 1_700_000_000))
        try dead.fileContents.write(toFile: run + "/.lock", atomically: false, encoding: .utf8)

        var warnings: [String] = []
        let lock = try Self.acquire(run, warnings: &warnings)
        defer { lock.release() }
        #expect(warnings.count == 1 && warnings[0].contains("pid \(child.processIdentifier) on host \(dead.host)")
                && warnings[0].contains("2023-11-14T22:13:20Z") && warnings[0].contains("no longer running"), "\(warnings)")
        #expect(RunFolderLockHolder(fileContents: Self.lockFileText(run)) == lock.holder)
    }

    @Test("a lock file naming a run on another host is refused, and the file is left as it was")
    func otherHostIsRefused() throws {
        let run = try Self.scratchFolder()
        defer { try? FileManager.default.removeItem(atPath: run) }
        let away = RunFolderLockHolder(host: "not-" + RunFolderLockHolder.current().host, pid: 4242, since: Date())
        try away.fileContents.write(toFile: run + "/.lock", atomically: false, encoding: .utf8)
        var warnings: [String] = []
        let refusal = #expect(throws: RunFolderLockError.self) { _ = try Self.acquire(run, warnings: &warnings) }
        #expect(refusal == .leftByRunOnAnotherHost(lockFile: run + "/.lock", holder: away))
        #expect(Self.lockFileText(run) == away.fileContents)
        // Deleting the file, as the message says, frees the folder.
        try FileManager.default.removeItem(atPath: run + "/.lock")
        try Self.acquire(run, warnings: &warnings).release()
        #expect(warnings.isEmpty)
    }

    @Test("a run folder that cannot be created is refused naming the lock file")
    func cannotCreate() throws {
        let base = try Self.scratchFolder()
        defer { try? FileManager.default.removeItem(atPath: base) }
        #expect(FileManager.default.createFile(atPath: base + "/file", contents: Data()))
        var warnings: [String] = []
        let error = #expect(throws: RunFolderLockError.self) { _ = try Self.acquire(base + "/file/run", warnings: &warnings) }
        guard case .cannotCreate(let file, _)? = error else { Issue.record("\(String(describing: error))"); return }
        #expect(file == base + "/file/run/.lock")
        #expect("\(error!)".contains("Not a directory"), "\(error!)")
    }

    /// The child's side of `liveHolderIsRefusedAndSIGKILLFreesIt`: takes the lock, says so with a
    /// file and waits to be killed (SIGALRM ends it if the test never does).
    static func holdUntilKilled(_ run: String) async -> ExitTest.Result? {
        await #expect(processExitsWith: .signal(SIGKILL)) { [run] in
            let lock = try RunFolderLock.acquire(runDirectory: run, warn: { _ in })
            _ = FileManager.default.createFile(atPath: run + "/holding", contents: Data())
            alarm(600)
            withExtendedLifetime(lock) { while true { pause() } }
        }
    }

    /// The parent's side of `liveHolderIsRefusedAndSIGKILLFreesIt`, on a thread of its own: waits
    /// for the child to hold the lock, tries to take it, then kills the child. It only records;
    /// the test asserts once the child is reaped.
    final class ParentSide: @unchecked Sendable {
        let run: String
        let done = DispatchSemaphore(value: 0)
        private(set) var holder: RunFolderLockHolder?
        private(set) var attempt: Result<RunFolderLock, Error>?
        init(run: String) { self.run = run }

        func start() {
            Thread { [self] in
                defer { done.signal() }
                // A bounded poll for the child's "holding" file (the child needs a process start
                // first; under a loaded machine that took over 120 s once).
                let deadline = Date().addingTimeInterval(600)
                while !FileManager.default.fileExists(atPath: run + "/holding") && Date() < deadline { usleep(20_000) }
                holder = RunFolderLockHolder(fileContents: RunFolderLockTests.lockFileText(run))
                guard let pid = holder?.pid else { return }
                attempt = Result { try RunFolderLock.acquire(runDirectory: run, warn: { _ in }) }
                kill(pid, SIGKILL)
            }.start()
        }
    }

    @Test("a lock held by another live process is refused naming it; SIGKILL to the holder frees it, taken over with a warning")
    func liveHolderIsRefusedAndSIGKILLFreesIt() async throws {
        let run = try Self.scratchFolder()
        defer { try? FileManager.default.removeItem(atPath: run) }
        // The parent's side on its own thread, the exit test on this task: with the exit test in
        // an `async let` and this task polling, the child's start waited in the shared pool (one
        // thread a core) behind every test queued before it.
        let parent = ParentSide(run: run)
        parent.start()
        _ = await Self.holdUntilKilled(run)  // returns once the child is reaped: its lock is gone with it
        parent.done.wait()
        let child = try #require(parent.holder, "the child did not take the lock")
        #expect(child.pid != getpid() && child.host == RunFolderLockHolder.current().host)
        switch parent.attempt {
        case .failure(let error as RunFolderLockError):
            #expect(error == .heldByAnotherRun(lockFile: run + "/.lock", holder: child))
            #expect("\(error)".contains("pid \(child.pid) on host \(child.host)"))
        case .success(let lock):
            lock.release()
            Issue.record("the lock was taken while the child held it")
        case let other:
            Issue.record("expected RunFolderLockError.heldByAnotherRun, got \(String(describing: other))")
        }

        var warnings: [String] = []
        let lock = try Self.acquire(run, warnings: &warnings)
        defer { lock.release() }
        #expect(warnings.count == 1 && warnings[0].contains("pid \(child.pid) on host \(child.host)")
                && warnings[0].contains("no longer running"), "\(warnings)")
    }

    /// The descriptors process `pid` holds open on `path`, from /proc/<pid>/fd.
    static func openDescriptors(of path: String, in pid: String = "self") -> [Int32] {
        let target = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []
        return entries.compactMap(Int32.init).filter { fd in
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fd)")) == target
        }
    }

    @Test("the lock is the flock(2) lock the flock tool sees, and a child process does not inherit it",
          .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/flock")))
    func kernelLockSeenByFlockAndNotInherited() throws {
        let run = try Self.scratchFolder()
        defer { try? FileManager.default.removeItem(atPath: run) }
        func flockCanTake() throws -> Bool {
            let probe = Process()
            probe.executableURL = URL(fileURLWithPath: "/usr/bin/flock")
            probe.arguments = ["--nonblock", "--conflict-exit-code", "75", run + "/.lock", "true"]
            try probe.run()
            probe.waitUntilExit()
            return probe.terminationStatus == 0
        }
        var warnings: [String] = []
        let lock = try Self.acquire(run, warnings: &warnings)
        #expect(try !flockCanTake())
        // A child started while the lock is held: posix_spawn passes on every descriptor not
        // marked close-on-exec, so the child is told to close every other one and the lock's
        // descriptor is left to its close-on-exec flag alone. (Closing the others matters: tests
        // in other threads hold HDF5 files open, whose flock locks a child that inherited them
        // would keep — a bsvi-dist started then could not open them.)
        let lockFile = run + "/" + RunFolderLock.fileName
        let lockDescriptor = try #require(Self.openDescriptors(of: lockFile).first)
        var fds: [Int32] = [0, 0]
        try #require(pipe(&fds) == 0)
        var actions: posix_spawn_file_actions_t = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fds[0], 0)
        // glibc ignores a close action on a descriptor that is not open.
        for fd in Int32(3)..<lockDescriptor { posix_spawn_file_actions_addclose(&actions, fd) }
        // glibc ≥ 2.34 has closefrom as a spawn action; Swift's Glibc module does not declare it.
        typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
        let closeFrom = try #require(dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np"))
        try #require(unsafeBitCast(closeFrom, to: CloseFrom.self)(&actions, lockDescriptor + 1) == 0)
        var pid: pid_t = 0
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/cat"), nil]
        defer { argv.forEach { free($0) } }
        try #require(posix_spawn(&pid, "/bin/cat", &actions, nil, argv, environ) == 0)
        close(fds[0])
        // posix_spawn returns after the exec, so the child's descriptor table is final here.
        #expect(Self.openDescriptors(of: lockFile, in: "\(pid)").isEmpty, "the child inherited the lock's descriptor")
        lock.release()
        #expect(try flockCanTake(), "the lock outlived its release")
        close(fds[1])  // cat reads end of file and exits
        var status: Int32 = 0
        waitpid(pid, &status, 0)
    }
}
