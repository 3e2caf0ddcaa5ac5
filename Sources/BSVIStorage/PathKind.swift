import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What a path names (symbolic links followed), as the checks before reading or writing a file
/// need it: a file is read or replaced only if it is a regular one.
enum PathKind: Equatable {
    case nothing, regularFile, folder
    /// A device, FIFO or socket.
    case other

    init(_ path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else {
            self = .nothing
            return
        }
        switch info.st_mode & S_IFMT {
        case S_IFREG: self = .regularFile
        case S_IFDIR: self = .folder
        default: self = .other
        }
    }
}

extension PathKind {
    /// Refuses an input that is a folder, a FIFO, a socket or a device before it is opened:
    /// opening a FIFO waits for a writer (forever if none comes), and a folder's read error ("Is a
    /// directory") would be reported as damaged data. `why` says why this reader needs a regular
    /// file; `flag` is the option that names the input, if one does. Nothing at `path` passes:
    /// each reader says "file not found" in its own words.
    static func checkIsInputFile(_ path: String, why: String, flag: String? = nil) throws {
        let with = flag.map { " with \($0)" } ?? ""
        switch PathKind(path) {
        case .nothing, .regularFile:
            return
        case .folder:
            throw StorageError(file: path, problem: "is a folder, not a file", fix: "name the file itself\(with)", kind: .missingInput)
        case .other:
            throw StorageError(file: path, problem: "is not a regular file (a pipe or a device): \(why)",
                               fix: "save the data to a file first and pass that file\(with)", kind: .missingInput)
        }
    }
}
