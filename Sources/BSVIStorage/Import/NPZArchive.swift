import CZip
import Foundation

/// A NumPy .npz file: a zip archive (numpy.savez stores members, savez_compressed deflates
/// them) whose member KEY.npy holds the array named KEY. Read through libzip, which checks the
/// archive's structure on opening (ZIP_CHECKCONS) and each member's CRC as it is read.
final class NPZArchive {
    let path: String
    fileprivate let handle: OpaquePointer
    /// Array names (member names without ".npy"), in archive order.
    let keys: [String]

    init(path: String) throws {
        self.path = path
        let location = InputLocation(file: path)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw location.error("file not found", fix: "check the path", kind: .missingInput)
        }
        guard !isDirectory.boolValue else {
            throw location.error("is a folder, not a file", fix: "name the .npz file itself", kind: .missingInput)
        }
        var code: Int32 = 0
        guard let handle = zip_open(path, ZIP_RDONLY | ZIP_CHECKCONS, &code) else {
            switch code {
            case ZIP_ER_NOZIP:
                throw location.error("not a zip archive, so not an .npz file (or truncated: the zip directory is at its end)",
                                     fix: "write it with numpy.savez or numpy.savez_compressed; download or copy it again if it was cut off")
            case ZIP_ER_INCONS:
                throw location.error("the zip archive is inconsistent (truncated or corrupt)", fix: "write or download the .npz file again")
            case ZIP_ER_OPEN, ZIP_ER_READ, ZIP_ER_NOENT:
                throw location.error("cannot read the archive: \(Self.message(forCode: code))", kind: .ioError)
            default:
                throw location.error("cannot open the zip archive: \(Self.message(forCode: code))", fix: "write the .npz file again")
            }
        }
        self.handle = handle
        let count = zip_get_num_entries(handle, 0)
        var keys: [String] = []
        for i in 0..<max(count, 0) {
            guard let name = zip_get_name(handle, zip_uint64_t(i), 0) else { continue }
            let member = String(cString: name)
            if member.hasSuffix(".npy") { keys.append(String(member.dropLast(4))) }
        }
        self.keys = keys
    }

    deinit { zip_discard(handle) }

    /// The array `key` as a byte stream (the .npy file inside the archive).
    func member(_ key: String) throws -> ByteInput {
        let location = InputLocation(file: path, object: key)
        guard keys.contains(key) else {
            throw location.error("the archive has no array '\(key)' (it holds: \(keys.joined(separator: ", ")))",
                                 fix: "name one of its arrays, e.g. --train \(path):\(keys.first ?? "KEY")", kind: .missingInput)
        }
        guard let file = zip_fopen(handle, key + ".npy", 0) else {
            throw location.error("cannot open the member \(key).npy: \(String(cString: zip_error_strerror(zip_get_error(handle))))",
                                 fix: "write the .npz file again")
        }
        return ZipMemberInput(archive: self, file: file, location: location)
    }

    static func message(forCode code: Int32) -> String {
        var error = zip_error_t()
        zip_error_init_with_code(&error, code)
        defer { zip_error_fini(&error) }
        return String(cString: zip_error_strerror(&error))
    }
}

/// One member of a zip archive, decompressed as it is read.
final class ZipMemberInput: ByteInput {
    let location: InputLocation
    private let archive: NPZArchive  // keeps the archive open while the member is read
    private let file: OpaquePointer

    fileprivate init(archive: NPZArchive, file: OpaquePointer, location: InputLocation) {
        self.archive = archive
        self.file = file
        self.location = location
    }

    deinit { zip_fclose(file) }

    func read(into buffer: UnsafeMutableRawPointer, count: Int) throws -> Int {
        var got = 0
        while got < count {
            let n = zip_fread(file, buffer + got, zip_uint64_t(count - got))
            if n < 0 {
                let message = String(cString: zip_error_strerror(zip_file_get_error(file)))
                throw location.error("corrupt archive member (libzip: \(message))", fix: "write or download the .npz file again")
            }
            if n == 0 { break }
            got += Int(n)
        }
        return got
    }
}
