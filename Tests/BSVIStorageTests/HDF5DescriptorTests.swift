@testable import BSVIStorage
import CHDF5
import CHDF5Shims
import Foundation
import Testing

/// HDF5 opens files without O_CLOEXEC; HDF5File marks them, so a process this one starts does
/// not keep a file — and HDF5's flock lock on it — open after the exec (in the test suite such a
/// child made a concurrent `bsvi-dist train` fail with "unable to lock file").
@Suite("HDF5 file descriptors")
struct HDF5DescriptorTests {
    /// The descriptor flags of the file's POSIX descriptor.
    func descriptorFlags(_ file: HDF5File) throws -> Int32 {
        var handle: UnsafeMutableRawPointer?
        try #require(H5Fget_vfd_handle(file.id, bsvi_h5p_default(), &handle) >= 0)
        let fd = try #require(handle).load(as: Int32.self)
        return fcntl(fd, F_GETFD)
    }

    @Test("files created, opened for reading and opened for writing are all close-on-exec")
    func closeOnExec() throws {
        let dir = try makeScratchFolder("fd")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/f.h5"
        let created = try HDF5File.create(path)
        #expect(try descriptorFlags(created) & FD_CLOEXEC != 0)
        try created.close()
        for writable in [false, true] {
            let opened = try HDF5File.open(path, writable: writable)
            #expect(try descriptorFlags(opened) & FD_CLOEXEC != 0, "writable: \(writable)")
            try opened.close()
        }
    }
}
