@testable import BSVITraining
import Foundation
import Testing

/// Every case of what a run does on meeting a run folder's lock file, without processes.
@Suite("run folder lock: policy")
struct RunFolderLockPolicyTests {
    let file = "/runs/a/.lock"
    let me = RunFolderLockHolder(host: "node1", pid: 100, since: Date(timeIntervalSince1970: 1_800_000_000))
    let sameHost = RunFolderLockHolder(host: "node1", pid: 200, since: Date(timeIntervalSince1970: 1_700_000_000))
    let otherHost = RunFolderLockHolder(host: "node2", pid: 200, since: Date(timeIntervalSince1970: 1_700_000_000))

    func decide(_ lock: RunFolderLockPolicy.KernelLock, _ contents: RunFolderLockPolicy.Contents,
                running: Set<Int32> = []) -> RunFolderLockPolicy.Decision {
        RunFolderLockPolicy.decide(lockFile: file, kernelLock: lock, contents: contents, me: me, isRunning: { running.contains($0) })
    }

    func warnings(_ d: RunFolderLockPolicy.Decision) -> [String]? {
        if case .take(let w) = d { return w }
        return nil
    }

    @Test("a lock the kernel reports held is refused, whatever the file says and wherever its holder runs")
    func heldIsRefused() {
        #expect(decide(.heldByAnotherProcess, .holder(sameHost)) == .refuse(.heldByAnotherRun(lockFile: file, holder: sameHost)))
        #expect(decide(.heldByAnotherProcess, .holder(otherHost)) == .refuse(.heldByAnotherRun(lockFile: file, holder: otherHost)))
        // A dead pid in the file does not matter: the kernel knows better (another pid namespace, say).
        #expect(decide(.heldByAnotherProcess, .holder(sameHost), running: []) == .refuse(.heldByAnotherRun(lockFile: file, holder: sameHost)))
        #expect(decide(.heldByAnotherProcess, .empty) == .refuse(.heldByAnotherRun(lockFile: file, holder: nil)))
        #expect(decide(.heldByAnotherProcess, .unreadable("x")) == .refuse(.heldByAnotherRun(lockFile: file, holder: nil)))
    }

    @Test("a free lock released cleanly is taken without a word")
    func cleanReleaseIsTakenSilently() {
        #expect(decide(.acquired, .empty) == .take(warnings: []))
    }

    @Test("a free lock left named by a run on this host is taken over with a warning naming it")
    func staleOnThisHostIsTakenOver() throws {
        let dead = try #require(warnings(decide(.acquired, .holder(sameHost), running: [])))
        #expect(dead.count == 1 && dead[0].contains(file) && dead[0].contains("pid 200 on host node1")
                && dead[0].contains("2023-11-14T22:13:20Z") && dead[0].contains("no longer running"), "\(dead)")
        // The kernel lock is free, so a live process with that pid is not the holder (the pid was reused).
        let reused = try #require(warnings(decide(.acquired, .holder(sameHost), running: [200])))
        #expect(reused.count == 1 && reused[0].contains("pid 200") && reused[0].contains("another process"), "\(reused)")
    }

    @Test("a run on another host that did not release is refused: its process cannot be checked from here")
    func otherHostIsRefused() {
        #expect(decide(.acquired, .holder(otherHost)) == .refuse(.leftByRunOnAnotherHost(lockFile: file, holder: otherHost)))
        #expect(decide(.unsupported(reason: "flock: ENOLCK"), .holder(otherHost))
                == .refuse(.leftByRunOnAnotherHost(lockFile: file, holder: otherHost)))
    }

    @Test("unreadable contents are taken over with a warning that quotes them")
    func unreadableIsTakenOver() throws {
        let w = try #require(warnings(decide(.acquired, .unreadable("garbage"))))
        #expect(w.count == 1 && w[0].contains("\"garbage\""), "\(w)")
    }

    @Test("without kernel locks the file decides: a live pid on this host holds the folder, a dead one is taken over")
    func fileSystemWithoutLocks() throws {
        let unsupported = RunFolderLockPolicy.KernelLock.unsupported(reason: "flock: Function not implemented")
        #expect(decide(unsupported, .holder(sameHost), running: [200]) == .refuse(.heldByAnotherRun(lockFile: file, holder: sameHost)))
        let dead = try #require(warnings(decide(unsupported, .holder(sameHost), running: [])))
        #expect(dead.count == 2 && dead[0].contains("does not support locks") && dead[0].contains("Function not implemented")
                && dead[1].contains("pid 200"), "\(dead)")
        // Our own pid in the file is an earlier process that had the same number.
        let ours = RunFolderLockHolder(host: "node1", pid: 100, since: sameHost.since)
        #expect(warnings(decide(unsupported, .holder(ours), running: [100]))?.count == 2)
        #expect(warnings(decide(unsupported, .empty))?.count == 1)
    }

    @Test("every refusal names the lock file, the holder and the fix, and is EX_CANTCREAT")
    func refusalMessages() {
        let held = RunFolderLockError.heldByAnotherRun(lockFile: file, holder: sameHost)
        #expect(held.description.contains(file) && held.description.contains("pid 200 on host node1, since 2023-11-14T22:13:20Z")
                && held.description.contains("wait for that run to finish, or choose another --run-dir"), "\(held)")
        let away = RunFolderLockError.leftByRunOnAnotherHost(lockFile: file, holder: otherHost)
        #expect(away.description.contains("pid 200 on host node2") && away.description.contains("delete \(file)")
                && away.description.contains("--run-dir"), "\(away)")
        #expect([held, away, .cannotCreate(lockFile: file, problem: "open: x")].allSatisfy { $0.failureKind.rawValue == 73 })
    }

    @Test("the holder survives a round trip through the file; other text is not a holder")
    func holderRoundTrip() {
        #expect(RunFolderLockHolder(fileContents: sameHost.fileContents) == sameHost)
        #expect(sameHost.fileContents == "host=node1\npid=200\nsince=2023-11-14T22:13:20Z\n")
        for text in ["", "host=node1\npid=200\n", "host=node1\npid=-3\nsince=2023-11-14T22:13:20Z", "host=\npid=2\nsince=2023-11-14T22:13:20Z", "hello",
                     "host=node1\npid=200\nsince=2023-11-14T22:13:20Z\nslurm_job=812\n"] {
            #expect(RunFolderLockHolder(fileContents: text) == nil, "\(text.debugDescription)")
        }
        let inJob = RunFolderLockHolder(host: "node2", pid: 7, since: sameHost.since, job: .init(id: "812", restart: 1))
        #expect(inJob.fileContents == "host=node2\npid=7\nsince=2023-11-14T22:13:20Z\nslurm_job=812\nslurm_restart=1\n")
        #expect(RunFolderLockHolder(fileContents: inJob.fileContents) == inJob)
    }

    @Test("the Slurm job comes from SLURM_JOB_ID and SLURM_RESTART_COUNT (0 when Slurm has not requeued it)")
    func slurmJobFromEnvironment() {
        #expect(RunFolderLockHolder.SlurmJob.current([:]) == nil)
        #expect(RunFolderLockHolder.SlurmJob.current(["SLURM_JOB_ID": "812"]) == .init(id: "812", restart: 0))
        #expect(RunFolderLockHolder.SlurmJob.current(["SLURM_JOB_ID": "812", "SLURM_RESTART_COUNT": "2"]) == .init(id: "812", restart: 2))
        #expect(RunFolderLockHolder.SlurmJob.current(["SLURM_JOB_ID": "a b"]) == nil)
    }

    @Test("a run on another host is taken over when it was an earlier incarnation of this Slurm job (a requeue), and only then")
    func requeuedSlurmJobTakesOver() throws {
        func holder(_ host: String, _ job: String?, _ restart: Int) -> RunFolderLockHolder {
            RunFolderLockHolder(host: host, pid: 200, since: otherHost.since, job: job.map { .init(id: $0, restart: restart) })
        }
        func decide(_ lock: RunFolderLockPolicy.KernelLock, left: RunFolderLockHolder, me: RunFolderLockHolder) -> RunFolderLockPolicy.Decision {
            RunFolderLockPolicy.decide(lockFile: file, kernelLock: lock, contents: .holder(left), me: me, isRunning: { _ in true })
        }
        let requeued = holder("node7", "812", 1)
        for lock in [RunFolderLockPolicy.KernelLock.acquired, .unsupported(reason: "flock: ENOLCK")] {
            let w = try #require(warnings(decide(lock, left: holder("node2", "812", 0), me: requeued)))
            #expect(w.last?.contains("Slurm job 812 restart 0") == true && w.last?.contains("this is restart 1") == true, "\(w)")
        }
        // Another job, the same incarnation, a later one, or no job on either side: it may still run.
        for left in [holder("node2", "813", 0), holder("node2", "812", 1), holder("node2", "812", 2), holder("node2", nil, 0)] {
            #expect(decide(.acquired, left: left, me: requeued) == .refuse(.leftByRunOnAnotherHost(lockFile: file, holder: left)), "\(left)")
        }
        let outsideSlurm = holder("node7", nil, 0)
        #expect(decide(.acquired, left: holder("node2", "812", 0), me: outsideSlurm)
                == .refuse(.leftByRunOnAnotherHost(lockFile: file, holder: holder("node2", "812", 0))))
        // A lock the kernel reports held is refused even so.
        #expect(decide(.heldByAnotherProcess, left: holder("node2", "812", 0), me: requeued)
                == .refuse(.heldByAnotherRun(lockFile: file, holder: holder("node2", "812", 0))))
    }
}
