import CZlib
import Foundation

/// A sequential source of bytes: a file (gzip-compressed or plain) or a member of a zip archive.
protocol ByteInput: AnyObject {
    var location: InputLocation { get }
    /// Reads up to `count` bytes, fewer only at the end of the input; throws on corrupt data.
    func read(into buffer: UnsafeMutableRawPointer, count: Int) throws -> Int
    /// Bytes left to read when that is known without reading them (a plain, uncompressed
    /// file); nil otherwise (gzip streams, zip members).
    var remainingBytes: Int? { get }
}

extension ByteInput {
    var remainingBytes: Int? { nil }

    /// Checks a header's promise of `rows` rows of `width` values of `elementSize` bytes against
    /// the bytes the file still holds, when that is known. A 24-byte IDX file may declare
    /// 2^32-1 values a row; this turns it into the reader's "file ends early" message before
    /// anything is allocated or read. (Compressed inputs are not checked here: their chunk
    /// buffers are bounded by `checkRowWidth`, and reading finds the early end.)
    func checkDeclaredSize(rows: Int, width: Int, elementSize: Int, describe: (_ wholeRows: Int) -> String) throws {
        guard let remaining = remainingBytes else { return }
        guard let needed = SizeLimits.product([rows, width, elementSize]), needed <= remaining else {
            let rowBytes = SizeLimits.product([width, elementSize]) ?? Int.max
            throw location.error("the file ends early: \(describe(rowBytes > 0 ? remaining / rowBytes : 0)) "
                                 + "(\(remaining) bytes follow the header)",
                                 fix: "the file is truncated or its header is corrupt; download or write it again")
        }
    }

    /// Reads exactly `count` bytes, or throws a truncation error phrased by `what`.
    func readExactly(into buffer: UnsafeMutableRawPointer, count: Int, what: @autoclosure () -> String) throws {
        let got = try read(into: buffer, count: count)
        if got < count {
            throw location.error("the file ends early: \(what()) needs \(count) bytes, found \(got)",
                                 fix: "the file is truncated; download or write it again")
        }
    }

    func readBytes(_ count: Int, what: @autoclosure () -> String) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        try bytes.withUnsafeMutableBytes { try readExactly(into: $0.baseAddress!, count: count, what: what()) }
        return bytes
    }

    /// Whether the input is exhausted. Reading to the end also makes zlib and libzip verify the
    /// stream's CRC, so a corrupt last block is caught here rather than ignored.
    func isAtEnd() throws -> Bool {
        var byte: UInt8 = 0
        return try read(into: &byte, count: 1) == 0
    }
}

/// A file read through zlib, which passes plain files through unchanged and decompresses gzip
/// ones (MNIST and its relatives are distributed as .gz).
final class GzipFileInput: ByteInput {
    let location: InputLocation
    private let handle: gzFile
    private let fileSize: Int?

    init(path: String) throws {
        location = InputLocation(file: path)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw location.error("file not found", fix: "check the path", kind: .missingInput)
        }
        guard !isDirectory.boolValue else {
            throw location.error("is a folder, not a file", fix: "name the file itself", kind: .missingInput)
        }
        guard let handle = gzopen(path, "rb") else {
            throw location.error("cannot open the file: \(String(cString: strerror(errno)))", fix: "check its permissions",
                                 kind: .missingInput)
        }
        gzbuffer(handle, 1 << 20)
        self.handle = handle
        // Only a regular file's size says how many bytes follow (a pipe's or a FIFO's is 0).
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        fileSize = attributes?[.type] as? FileAttributeType == .typeRegular ? (attributes?[.size] as? NSNumber)?.intValue : nil
    }

    /// For a plain file (zlib reads it directly): its size less what has been read. gzdirect
    /// answers only after the first read, which the header's has been by the time this is asked.
    var remainingBytes: Int? {
        guard let fileSize, gzdirect(handle) == 1 else { return nil }
        let offset = gztell(handle)
        return offset >= 0 ? max(0, fileSize - Int(offset)) : nil
    }

    deinit { gzclose(handle) }

    func read(into buffer: UnsafeMutableRawPointer, count: Int) throws -> Int {
        var got = 0
        while got < count {
            let n = gzread(handle, buffer + got, UInt32(min(count - got, 1 << 30)))
            if n < 0 { throw gzipError() }
            if n == 0 { break }
            got += Int(n)
        }
        if got < count {
            // A short read is the end of the data, unless the gzip stream itself was cut off.
            var code: Int32 = 0
            _ = gzerror(handle, &code)
            if code == Z_BUF_ERROR {
                throw location.error("the gzip stream ends early (truncated file)", fix: "download the file again")
            }
            if code != Z_OK && code != Z_STREAM_END { throw gzipError() }
        }
        return got
    }

    private func gzipError() -> StorageError {
        var code: Int32 = 0
        var message = gzerror(handle, &code).map { String(cString: $0) } ?? "unknown error"
        // zlib puts the path in front of its message; ours already starts with it.
        if message.hasPrefix(location.file + ": ") { message.removeFirst(location.file.count + 2) }
        if code == Z_ERRNO {
            return location.error("reading failed: \(String(cString: strerror(errno)))", kind: .ioError)
        }
        return location.error("corrupt gzip data (zlib: \(message))", fix: "download the file again")
    }
}

/// The data part of a file whose header declares its rows (IDX, .npy): whole rows of `rowBytes`
/// bytes read a chunk at a time. Reading fewer bytes than declared, or finding bytes after them,
/// is an error phrased with `rows` (e.g. "images") and `rowDescription` (e.g. "784 pixels").
struct DeclaredRows {
    let input: ByteInput
    let total: Int
    let rowBytes: Int
    let rows: String
    let rowDescription: String
    let fix: String
    private(set) var rowsRead = 0
    private var trailingReported = false
    private var scratch: [UInt8] = []

    init(input: ByteInput, total: Int, rowBytes: Int, rows: String, rowDescription: String, fix: String) {
        self.input = input
        self.total = total
        self.rowBytes = rowBytes
        self.rows = rows
        self.rowDescription = rowDescription
        self.fix = fix
    }

    /// Reads up to `maxRows` rows and hands their bytes to `convert` with the row count; 0 once
    /// all declared rows are read (after checking, once, that nothing follows them).
    mutating func read(upTo maxRows: Int, _ convert: (UnsafeRawBufferPointer, Int) -> Void) throws -> Int {
        let n = min(maxRows, total - rowsRead)
        guard n > 0 else {
            if !trailingReported, try !input.isAtEnd() {
                trailingReported = true
                throw input.location.error("holds bytes after the \(total) \(rows) its header declares (corrupt file)", fix: fix)
            }
            return 0
        }
        let bytes = n * rowBytes
        if scratch.count < bytes { scratch = [UInt8](repeating: 0, count: bytes) }
        let got = try scratch.withUnsafeMutableBytes { try input.read(into: $0.baseAddress!, count: bytes) }
        guard got == bytes else {
            throw input.location.error("the data ends early: the header declares \(total) \(rows) of \(rowDescription), "
                                       + "the data stops after \(rowsRead + got / rowBytes)",
                                       fix: "the file is truncated; write or download it again")
        }
        scratch.withUnsafeBytes { convert(UnsafeRawBufferPointer(rebasing: $0[0..<bytes]), n) }
        rowsRead += n
        return n
    }
}
