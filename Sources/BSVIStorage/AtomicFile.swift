import CStopSignal
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Crash-safe replacement of a file: write a temp file in the same folder, fsync it, rename
/// it over the destination, fsync the folder. At any moment the destination is either the
/// old complete file or the new complete file; a failure removes the temp file.
///
/// A body that streams its input into the file (prepare-data) may fail because of the input;
/// such errors (kind usage, badData or missingInput) are passed on as they are, so the user
/// reads what is wrong with the input, not that the output could not be written.
public enum AtomicFile {
    /// The temp name used for `path` (same folder, hidden, with the writer's pid).
    public static func temporaryPath(for path: String) -> String {
        let url = URL(fileURLWithPath: path)
        return url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())").path
    }

    /// Removes the temp files of `path` that writers killed mid-write left. `anyWriter`: all of
    /// them, for a caller that knows no writer of `path` is alive (one holding the run folder's
    /// lock, which also covers other hosts). Otherwise (prepare-data, which takes no lock) only
    /// those whose pid is no live process here and that nobody has written to for
    /// `idleSecondsOfAbandoned`: a writer on another host sharing the folder has a pid this host
    /// cannot see, but it keeps its file fresh.
    public static func removeStaleTemporaryFiles(of path: String, anyWriter: Bool = true) {
        let url = URL(fileURLWithPath: path)
        let folder = url.deletingLastPathComponent().path
        let prefix = "." + url.lastPathComponent + ".tmp-"
        for name in (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [] where name.hasPrefix(prefix) {
            let file = (folder as NSString).appendingPathComponent(name)
            if !anyWriter {
                if let pid = pid_t(name.dropFirst(prefix.count)), kill(pid, 0) == 0 || errno == EPERM { continue }
                let modified = (try? FileManager.default.attributesOfItem(atPath: file))?[.modificationDate] as? Date ?? Date()
                if Date().timeIntervalSince(modified) < idleSecondsOfAbandoned { continue }
            }
            try? FileManager.default.removeItem(atPath: file)
        }
    }

    public static let idleSecondsOfAbandoned: TimeInterval = 600

    /// NAME_MAX of Linux file systems (ext4, XFS, NFS, Lustre).
    static let maximumNameBytes = 255

    /// Whether `write(to: path)` can put a file there: its folder exists, and `path` is not a
    /// folder (the final rename cannot replace one). `write` checks it before the body's work;
    /// commands check it before their long work (`OutputFile`).
    public static func checkDestination(_ path: String) throws {
        try checkFileName(path)
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        guard PathKind(folder) == .folder else {
            throw StorageError(file: path, problem: "folder \(folder) does not exist", fix: "create it first", kind: .cannotCreateOutput)
        }
        try checkReplaceable(path)
    }

    /// Whether `path` can name the file `write` creates, whatever its folder: it does not end in
    /// '/' (stat("out.h5/") fails with ENOTDIR, which reads as "nothing there", and the write
    /// would fail only at its rename, after the work), and its temp file's name, the longest
    /// name written, fits the 255 bytes a file name may have.
    public static func checkFileName(_ path: String) throws {
        guard !path.hasSuffix("/") else {
            throw StorageError(file: path, problem: "ends in '/', so it names a folder, not a file", fix: "name the file without the trailing /",
                               kind: .cannotCreateOutput)
        }
        let name = (path as NSString).lastPathComponent.utf8.count
        let longest = (temporaryPath(for: path) as NSString).lastPathComponent.utf8.count
        guard longest <= maximumNameBytes else {
            throw StorageError(file: path, problem: "the file name is too long: its temporary file's name would have \(longest) bytes, more than the \(maximumNameBytes) a file name may have",
                               fix: "choose a file name of at most \(maximumNameBytes - (longest - name)) bytes", kind: .cannotCreateOutput)
        }
    }

    /// Whether the final rename may put a file at `path`: nothing is there, or a regular file.
    /// It cannot replace a folder, and must not replace a device, FIFO or socket (given
    /// /dev/null as an output, it once replaced the machine's /dev/null).
    public static func checkReplaceable(_ path: String) throws {
        switch PathKind(path) {
        case .nothing, .regularFile:
            return
        case .folder:
            throw StorageError(file: path, problem: "is a folder, which the file cannot replace", fix: "choose a file name that is not a folder's",
                               kind: .cannotCreateOutput)
        case .other:
            throw StorageError(file: path, problem: "is not a regular file (a device, FIFO or socket), which the output would replace",
                               fix: "choose a regular file name", kind: .cannotCreateOutput)
        }
    }

    public static func write(to path: String, _ body: (String) throws -> Void) throws {
        try checkDestination(path)
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        let tmp = temporaryPath(for: path)
        // Ctrl-C while the body writes must not leave a hidden copy of the output behind.
        let registration = bsvi_remove_on_fatal_signal(tmp)
        defer { bsvi_forget_on_fatal_signal(registration) }
        do {
            try body(tmp)
            try fsyncPath(tmp, isDirectory: false)
            guard rename(tmp, path) == 0 else {
                throw StorageError(file: path, problem: "cannot rename \(tmp) into place: \(String(cString: strerror(errno)))")
            }
        } catch {
            unlink(tmp)
            let storageError = error as? StorageError
            switch storageError?.kind {
            case .usage?, .badData?, .missingInput?: throw error
            default: break
            }
            let cause = storageError.map { $0.problem } ?? "\(error)"
            throw StorageError(file: path, problem: "could not be written: \(cause); any previous version is unchanged and the temporary file was removed",
                               fix: "free disk space or choose a writable folder", kind: storageError?.kind ?? .ioError)
        }
        // The new file is in place from here on: a failure now must not claim the old one is.
        do { try fsyncPath(folder, isDirectory: true) } catch {
            let cause = (error as? StorageError)?.problem ?? "\(error)"
            throw StorageError(file: path, problem: "was written, but syncing its folder failed (\(cause)); the new file is in place but its name may not survive a power failure",
                               fix: "check the file system", kind: .ioError)
        }
    }

    static func fsyncPath(_ path: String, isDirectory: Bool) throws {
        let fd = open(path, isDirectory ? O_RDONLY | O_DIRECTORY : O_RDONLY)
        guard fd >= 0 else { throw StorageError(file: path, problem: "cannot open for fsync: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw StorageError(file: path, problem: "fsync failed: \(String(cString: strerror(errno)))") }
    }
}
