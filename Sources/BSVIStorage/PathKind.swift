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
