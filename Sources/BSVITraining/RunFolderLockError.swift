import BSVIStorage

/// Why a run may not use its run folder. Every case is sysexits' EX_CANTCREAT (73): the run
/// cannot create its outputs there.
public enum RunFolderLockError: Error, Equatable, CustomStringConvertible, ExitStatusCarrying {
    /// Another live process holds the folder's lock (`holder` is nil if it has not written its
    /// name yet, or is not bsvi-dist).
    case heldByAnotherRun(lockFile: String, holder: RunFolderLockHolder?)
    /// The lock file names a run on another host that ended without releasing it, or that is
    /// still running on a file system whose locks are not shared between hosts; a process on
    /// another host cannot be checked from here.
    case leftByRunOnAnotherHost(lockFile: String, holder: RunFolderLockHolder)
    /// The folder or its lock file cannot be created, opened or written.
    case cannotCreate(lockFile: String, problem: String)

    public var failureKind: FailureKind { .cannotCreateOutput }
    public var exitStatus: ExitStatus { .cannotCreateOutput }

    public var description: String {
        switch self {
        case .heldByAnotherRun(let file, let holder):
            let who = holder.map { "another run (\($0))" } ?? "another process (it has not written its name to the lock file yet)"
            return "\(file): the run folder is in use by \(who) (wait for that run to finish, or choose another --run-dir)"
        case .leftByRunOnAnotherHost(let file, let holder):
            return "\(file): the run folder was taken by a run on another host (\(holder)) that has not released it, "
                + "and bsvi-dist cannot check a process on another host (if that run is no longer running, delete \(file) "
                + "and start again; otherwise wait for it to finish, or choose another --run-dir)"
        case .cannotCreate(let file, let problem):
            return "\(file): cannot create the run folder's lock file: \(problem) (check that the folder is writable, or choose another --run-dir)"
        }
    }
}
