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
}
