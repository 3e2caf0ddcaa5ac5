import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Which file a path names: its device and inode, the same for every path to one file (`./`,
/// symbolic and hard links); nil when nothing is there.
public struct FileIdentity: Equatable, Sendable {
    let device: UInt64
    let inode: UInt64

    public init?(_ path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
    }

    /// Whether two paths name one file: the same text, or the same existing file (`d.h5`,
    /// `./d.h5`, an absolute path, a link).
    public static func sameFile(_ a: String, _ b: String) -> Bool {
        a == b || FileIdentity(a).map { $0 == FileIdentity(b) } == true
    }
}
