/// What to do on meeting a run folder's lock file: a pure function of what the kernel said about
/// the lock, what the file names and whether that process runs, so every case is testable
/// without processes or file systems.
///
/// The kernel's word decides when it has one: a lock it reports held is held by a live process
/// (refuse); a free one was released by its holder's exit, however it exited. The file's
/// contents add two things. A holder left named in it ended without releasing (killed, crashed):
/// on this host the lock is taken over with a warning; on another host the run refuses, because
/// some cluster file systems keep locks local to each host (BeeGFS by default, Lustre with
/// `localflock`, NFS with `local_lock`), so a free lock there does not prove that run has ended —
/// unless the holder was an earlier incarnation of the same Slurm job (a requeue after a node
/// failure or preemption, whose new rank 0 is usually on another node): Slurm ends a job's
/// processes before it requeues it.
/// Where the file system has no locks at all (flock fails with ENOLCK, EOPNOTSUPP or ENOSYS) the
/// contents are all there is: a live pid on this host holds the folder.
enum RunFolderLockPolicy {
    enum KernelLock: Equatable {
        case acquired
        case heldByAnotherProcess
        case unsupported(reason: String)
    }

    enum Contents: Equatable {
        /// Never used, or released cleanly.
        case empty
        case holder(RunFolderLockHolder)
        /// Text that does not parse (a write cut short, a hand edit).
        case unreadable(String)
    }

    enum Decision: Equatable {
        case take(warnings: [String])
        case refuse(RunFolderLockError)
    }

    static func decide(lockFile: String, kernelLock: KernelLock, contents: Contents, me: RunFolderLockHolder,
                       isRunning: (Int32) -> Bool) -> Decision {
        var warnings: [String] = []
        if case .unsupported(let reason) = kernelLock {
            warnings.append("warning: \(lockFile): the file system does not support locks (\(reason)); the lock file names this run, "
                            + "but two runs started at the same moment would not see each other")
        }
        switch (kernelLock, contents) {
        case (.heldByAnotherProcess, .holder(let holder)):
            return .refuse(.heldByAnotherRun(lockFile: lockFile, holder: holder))
        case (.heldByAnotherProcess, _):
            return .refuse(.heldByAnotherRun(lockFile: lockFile, holder: nil))
        case (_, .empty):
            return .take(warnings: warnings)
        case (_, .unreadable(let text)):
            let shown = text.count > 80 ? String(text.prefix(80)) + "…" : text
            return .take(warnings: warnings + ["warning: \(lockFile) held text that names no run (\(shown.debugDescription)); taking the lock over"])
        case (_, .holder(let holder)) where holder.host != me.host:
            guard holder.isEarlierRun(ofJobOf: me) else { return .refuse(.leftByRunOnAnotherHost(lockFile: lockFile, holder: holder)) }
            return .take(warnings: warnings + [takeOverWarning(lockFile, holder, "Slurm requeued the job (this is restart \(me.job!.restart)), "
                                                               + "so its processes have ended")])
        case (.acquired, .holder(let holder)):
            // The kernel says nobody holds it, so a running pid with that number is another process.
            let state = isRunning(holder.pid) && holder.pid != me.pid ? "its pid now belongs to another process" : "it is no longer running"
            return .take(warnings: warnings + [takeOverWarning(lockFile, holder, state)])
        case (.unsupported, .holder(let holder)):
            // Without kernel locks a live pid on this host must be taken at its word (our own pid
            // is a leftover from an earlier process that had the same number, e.g. in a container).
            if holder.pid != me.pid && isRunning(holder.pid) {
                return .refuse(.heldByAnotherRun(lockFile: lockFile, holder: holder))
            }
            return .take(warnings: warnings + [takeOverWarning(lockFile, holder, "it is no longer running")])
        }
    }

    static func takeOverWarning(_ lockFile: String, _ holder: RunFolderLockHolder, _ state: String) -> String {
        "warning: \(lockFile): taking over the run folder from a run that ended without releasing it (\(holder)); \(state)"
    }
}
