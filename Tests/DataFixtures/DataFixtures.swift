import CZip
import CZlib
import Foundation

/// Input files for the tests of `prepare-data`, written byte by byte from their specifications
/// (no Python needed): IDX, .amat, NumPy .npy and .npz, gzip.
public enum DataFixtures {
    /// An IDX ubyte file: magic 0x0000080N for N dimensions, big-endian sizes, then the bytes.
    public static func idx(dims: [Int], values: [UInt8], magic: [UInt8]? = nil) -> [UInt8] {
        precondition(values.count == dims.reduce(1, *))
        var bytes = magic ?? [0, 0, 0x08, UInt8(dims.count)]
        for v in dims { bytes += [UInt8(v >> 24 & 0xff), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }
        return bytes + values
    }

    /// An .amat text: one line per row, values separated by single spaces.
    public static func amat(_ rows: [[Double]]) -> String {
        rows.map { row in row.map { $0 == $0.rounded() ? String(Int($0)) : String($0) }.joined(separator: " ") }
            .joined(separator: "\n") + "\n"
    }

    /// NumPy element types the tests write.
    public enum NPYType: String {
        case uint8 = "|u1", bool = "|b1", float32 = "<f4", float64 = "<f8", float64BigEndian = ">f8", int64 = "<i8", object = "|O"
    }

    /// A version 1.0 .npy file of `values` (given as Doubles, stored as `type`), shape `shape`.
    /// `fortranOrder` only changes the header (the tests check that such files are refused).
    public static func npy(_ values: [Double], shape: [Int], type: NPYType, fortranOrder: Bool = false) -> [UInt8] {
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '\(type.rawValue)', 'fortran_order': \(fortranOrder ? "True" : "False"), 'shape': \(shapeText), }"
        // Magic (6) + version (2) + length (2) + header + newline is a multiple of 64 bytes.
        while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0]
        bytes += [UInt8(header.utf8.count & 0xff), UInt8(header.utf8.count >> 8)]
        bytes += Array(header.utf8)
        for v in values {
            switch type {
            case .uint8, .bool: bytes.append(UInt8(v))
            case .float32: withUnsafeBytes(of: Float(v).bitPattern.littleEndian) { bytes += $0 }
            case .float64: withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes += $0 }
            case .float64BigEndian: withUnsafeBytes(of: v.bitPattern.bigEndian) { bytes += $0 }
            case .int64: withUnsafeBytes(of: Int64(v).littleEndian) { bytes += $0 }
            case .object: bytes += [0x80, 0x02]  // the start of a pickle; never read
            }
        }
        return bytes
    }

    /// An .npz archive written with libzip: member KEY.npy per array, deflated (as
    /// numpy.savez_compressed does) or stored (numpy.savez).
    public static func writeNPZ(_ path: String, arrays: [(key: String, npy: [UInt8])], compressed: Bool) throws {
        var code: Int32 = 0
        guard let archive = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &code) else {
            throw FixtureError("zip_open(\(path)) failed with libzip error \(code)")
        }
        var buffers: [UnsafeMutableRawPointer] = []
        defer { buffers.forEach { $0.deallocate() } }
        for (key, npy) in arrays {
            // libzip reads the buffer when the archive is closed, so it must outlive the loop.
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: max(npy.count, 1), alignment: 1)
            npy.withUnsafeBytes { buffer.copyMemory(from: $0.baseAddress!, byteCount: npy.count) }
            buffers.append(buffer)
            guard let source = zip_source_buffer(archive, buffer, zip_uint64_t(npy.count), 0) else {
                zip_discard(archive)
                throw FixtureError("zip_source_buffer failed")
            }
            let index = zip_file_add(archive, key + ".npy", source, zip_flags_t(ZIP_FL_OVERWRITE))
            guard index >= 0 else {
                zip_source_free(source)
                zip_discard(archive)
                throw FixtureError("zip_file_add(\(key).npy) failed")
            }
            zip_set_file_compression(archive, zip_uint64_t(index), compressed ? ZIP_CM_DEFLATE : ZIP_CM_STORE, 0)
        }
        guard zip_close(archive) == 0 else {
            let message = String(cString: zip_error_strerror(zip_get_error(archive)))
            zip_discard(archive)
            throw FixtureError("zip_close(\(path)) failed: \(message)")
        }
    }

    /// `bytes` compressed with gzip (zlib's gz* interface, as `gzip` writes them).
    public static func writeGzip(_ path: String, _ bytes: [UInt8]) throws {
        guard let gz = gzopen(path, "wb") else { throw FixtureError("gzopen(\(path)) failed") }
        let written = bytes.withUnsafeBytes { gzwrite(gz, $0.baseAddress, UInt32($0.count)) }
        guard gzclose(gz) == Z_OK, Int(written) == bytes.count else { throw FixtureError("writing \(path) failed") }
    }

    public static func write(_ path: String, _ bytes: [UInt8]) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    public static func read(_ path: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    /// Deterministic pseudo-random bytes (xorshift), for pixel values.
    public static func pseudoRandomBytes(_ count: Int, seed: UInt64, below bound: Int = 256) -> [UInt8] {
        var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        return (0..<count).map { _ in
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            return UInt8(Int(state >> 33) % bound)
        }
    }
}

public struct FixtureError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
