import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Rank 0's exclusive claim on a run folder for the life of a run, so that a second run on the
/// same folder (a requeued job while the old one is still being killed, a second terminal)
/// refuses at once instead of overwriting the first one's checkpoints and metrics.
///
/// The lock is a flock(2) lock on `<run-dir>/.lock`, so the kernel — or on NFS the lock server,
/// to which Linux passes flock — drops it when the holder dies, whatever kills it. flock rather
/// than fcntl: a flock lock belongs to the open file, so no other close() in the process can
/// drop it and two opens conflict even within one process. The file's contents only name the
/// holder (`RunFolderLockHolder`); `release()` empties it, so a name left in it means its run
/// ended without releasing. `RunFolderLockPolicy` decides what each case means.
///
/// Keep the instance alive for the whole run and end it with `release()` (e.g. in a `defer`):
/// Swift may deinitialize an object after its last use, which would end the lock early.
/// `deinit` releases too, for exit paths that unwind without calling it.
public final class RunFolderLock {
    public static let fileName = ".lock"
    /// `<run-dir>/.lock`
    public let path: String
    public let holder: RunFolderLockHolder
    private var descriptor: Int32

    private init(path: String, holder: RunFolderLockHolder, descriptor: Int32) {
        self.path = path
        self.holder = holder
        self.descriptor = descriptor
    }

    /// Creates `runDirectory` if needed and takes its lock, or throws `RunFolderLockError`
    /// naming the holder. Each warning (a lock taken over, a file system without locks) is
    /// passed to `warn` as one line.
    public static func acquire(runDirectory: String, warn: (String) -> Void) throws -> RunFolderLock {
        let path = (runDirectory as NSString).appendingPathComponent(fileName)
        let (fd, kernelLock) = try openAndLock(path, in: runDirectory)
        do {
            let me = RunFolderLockHolder.current()
            let decision = RunFolderLockPolicy.decide(lockFile: path, kernelLock: kernelLock,
                                                      contents: try contents(of: fd, path: path), me: me, isRunning: isRunning)
            switch decision {
            case .refuse(let error):
                throw error
            case .take(let warnings):
                try write(me.fileContents, to: fd, path: path)
                warnings.forEach(warn)
                return RunFolderLock(path: path, holder: me, descriptor: fd)
            }
        } catch {
            close(fd)
            throw error
        }
    }

    /// Empties the lock file (a clean release, so the next run takes the folder without a
    /// warning) and closes it, which drops the lock. Safe to call more than once.
    public func release() {
        guard descriptor >= 0 else { return }
        _ = ftruncate(descriptor, 0)
        _ = fsync(descriptor)
        // Unlock explicitly: a child forked by another thread and not yet at its exec holds a copy
        // of the descriptor (O_CLOEXEC closes it only at the exec), and close alone would leave
        // the lock held through that copy; LOCK_UN releases it on the shared open file.
        _ = flock(descriptor, LOCK_UN)
        close(descriptor)
        descriptor = -1
    }

    /// For a run refused before it wrote anything into a folder it made: removes the lock file
    /// while the lock is held, then the folder if nothing else is in it, then releases. A run
    /// that opened the file meanwhile finds it gone once it holds the lock, and starts over.
    public func releaseRemovingFolder() {
        guard descriptor >= 0 else { return }
        let folder = (path as NSString).deletingLastPathComponent
        if (try? FileManager.default.contentsOfDirectory(atPath: folder)) == [Self.fileName] {
            unlink(path)
            rmdir(folder)  // fails, harmlessly, if another run has put a file there by now
        }
        release()
    }

    deinit { release() }

    /// Creates the folder if needed, opens the lock file and tries its lock. A run refused in a
    /// folder it had just made removes the folder, lock file and all (`releaseRemovingFolder`):
    /// a lock taken on that file as it went is a lock on nothing, so it starts over from the folder.
    private static func openAndLock(_ path: String, in runDirectory: String) throws -> (Int32, RunFolderLockPolicy.KernelLock) {
        while true {
            do {
                try FileManager.default.createDirectory(atPath: runDirectory, withIntermediateDirectories: true)
            } catch {
                throw RunFolderLockError.cannotCreate(lockFile: path, problem: "the folder \(runDirectory) cannot be created: \(systemReason(error))")
            }
            // O_CLOEXEC: a child this process starts must not inherit the lock and keep it after we exit.
            let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw RunFolderLockError.cannotCreate(lockFile: path, problem: errnoText("open")) }
            let kernelLock: RunFolderLockPolicy.KernelLock
            do { kernelLock = try lockWithoutWaiting(fd, path: path) } catch {
                close(fd)
                throw error
            }
            if kernelLock == .acquired && !isStillAt(path, fd) {
                close(fd)
                continue
            }
            return (fd, kernelLock)
        }
    }

    /// Whether `path` still names the file open as `fd` (not removed or replaced since it was opened).
    private static func isStillAt(_ path: String, _ fd: Int32) -> Bool {
        var open = stat(), named = stat()
        return fstat(fd, &open) == 0 && stat(path, &named) == 0 && open.st_dev == named.st_dev && open.st_ino == named.st_ino
    }

    private static func lockWithoutWaiting(_ fd: Int32, path: String) throws -> RunFolderLockPolicy.KernelLock {
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            switch errno {
            case EINTR: continue
            case EWOULDBLOCK: return .heldByAnotherProcess
            case ENOLCK, EOPNOTSUPP, ENOSYS: return .unsupported(reason: errnoText("flock"))
            default: throw RunFolderLockError.cannotCreate(lockFile: path, problem: errnoText("flock"))
            }
        }
        return .acquired
    }

    private static func contents(of fd: Int32, path: String) throws -> RunFolderLockPolicy.Contents {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while bytes.count < 65536 {
            let n = pread(fd, &chunk, chunk.count, off_t(bytes.count))
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw RunFolderLockError.cannotCreate(lockFile: path, problem: errnoText("read")) }
            if n == 0 { break }
            bytes += chunk[..<n]
        }
        let text = String(decoding: bytes, as: UTF8.self)
        if text.allSatisfy(\.isWhitespace) { return .empty }
        return RunFolderLockHolder(fileContents: text).map { .holder($0) } ?? .unreadable(text)
    }

    /// Replaces the file's contents and fsyncs them, so that other hosts read the new holder.
    private static func write(_ text: String, to fd: Int32, path: String) throws {
        let bytes = Array(text.utf8)
        guard ftruncate(fd, 0) == 0 else { throw RunFolderLockError.cannotCreate(lockFile: path, problem: errnoText("ftruncate")) }
        var written = 0
        while written < bytes.count {
            let n = bytes[written...].withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(written)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw RunFolderLockError.cannotCreate(lockFile: path, problem: errnoText("write")) }
            written += n
        }
        guard fsync(fd) == 0 else { throw RunFolderLockError.cannotCreate(lockFile: path, problem: errnoText("fsync")) }
    }

    /// kill(pid, 0) succeeds, or fails only for lack of permission, exactly when the process exists.
    static func isRunning(_ pid: Int32) -> Bool { kill(pid, 0) == 0 || errno == EPERM }

    private static func errnoText(_ call: String) -> String { "\(call): \(String(cString: strerror(errno)))" }
}
