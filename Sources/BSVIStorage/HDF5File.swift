import CHDF5
import CShims
import Foundation

/// The HDF5 library prints its own error stack by default; we report errors ourselves.
private var silenceHDF5Errors: Void { bsvi_h5_silence_errors() }

/// Element type classes the project reads and writes.
public enum HDF5ElementType: Equatable, CustomStringConvertible, Sendable {
    case uint8, int64, float32, float64, string, other(String)

    public var description: String {
        switch self {
        case .uint8: return "uint8"
        case .int64: return "int64"
        case .float32: return "float32"
        case .float64: return "float64"
        case .string: return "string"
        case .other(let s): return s
        }
    }
}

/// An open HDF5 file with typed helpers that check every return code and throw a
/// `StorageError` naming the file and object.
public final class HDF5File {
    public let path: String
    let id: hid_t
    private var isOpen = true

    private init(path: String, id: hid_t) {
        self.path = path
        self.id = id
    }

    deinit { if isOpen { H5Fclose(id) } }

    /// Opens an existing file (read-only unless `writable`).
    public static func open(_ path: String, writable: Bool = false) throws -> HDF5File {
        _ = silenceHDF5Errors
        guard FileManager.default.fileExists(atPath: path) else {
            throw StorageError(file: path, problem: "file not found", fix: "check the path", kind: .missingInput)
        }
        guard H5Fis_hdf5(path) > 0 else {
            throw StorageError(file: path, problem: "not an HDF5 file (or truncated/corrupt)",
                               fix: "pass a file written by bsvi-dist or another HDF5 tool", kind: .badData)
        }
        let id = H5Fopen(path, writable ? bsvi_h5f_acc_rdwr() : bsvi_h5f_acc_rdonly(), bsvi_h5p_default())
        guard id >= 0 else {
            throw StorageError(file: path, problem: "HDF5 could not open the file (truncated or corrupt)", kind: .badData)
        }
        return HDF5File(path: path, id: id)
    }

    /// Creates a new file, replacing any file at `path`. Files use the HDF5 1.10 format
    /// (superblock v3, version-2 object headers, new chunk indexes), in which every piece of
    /// metadata carries a checksum, so corruption anywhere is detected on read; HDF5 ≥ 1.10
    /// (h5py, h5dump) reads it.
    public static func create(_ path: String) throws -> HDF5File {
        _ = silenceHDF5Errors
        let fapl = H5Pcreate(bsvi_h5p_file_access())
        defer { H5Pclose(fapl) }
        H5Pset_libver_bounds(fapl, H5F_LIBVER_V110, H5F_LIBVER_V110)
        let id = H5Fcreate(path, bsvi_h5f_acc_trunc(), bsvi_h5p_default(), fapl)
        guard id >= 0 else {
            throw StorageError(file: path, problem: "cannot create the file", fix: "check that the folder exists and is writable",
                               kind: .cannotCreateOutput)
        }
        return HDF5File(path: path, id: id)
    }

    /// Flushes and closes; errors here mean the data may not be on disk.
    public func close() throws {
        guard isOpen else { return }
        isOpen = false
        let flushed = H5Fflush(id, H5F_SCOPE_GLOBAL) >= 0
        let closed = H5Fclose(id) >= 0
        if !flushed || !closed {
            throw StorageError(file: path, problem: "flushing/closing the file failed (disk full?)")
        }
    }

    func fail(_ object: String?, _ problem: String, fix: String? = nil) -> StorageError {
        StorageError(file: path, object: object, problem: problem, fix: fix)
    }

    // MARK: Structure

    /// Whether an object exists at an absolute path ("/a/b/c"), checking each component. A
    /// damaged link or group throws rather than reading as "absent", so a corrupt optional part
    /// (e.g. /training) is never mistaken for a missing one.
    public func exists(_ objectPath: String) throws -> Bool {
        var prefix = ""
        for part in objectPath.split(separator: "/") {
            prefix += "/" + part
            let found = H5Lexists(id, prefix, bsvi_h5p_default())
            if found < 0 { throw fail(prefix, "cannot look up the object (the file is corrupt)") }
            if found == 0 { return false }
        }
        return true
    }

    /// Creates the group and any missing parents.
    public func createGroup(_ objectPath: String) throws {
        var prefix = ""
        for part in objectPath.split(separator: "/") {
            prefix += "/" + part
            if H5Lexists(id, prefix, bsvi_h5p_default()) > 0 { continue }
            let g = H5Gcreate2(id, prefix, bsvi_h5p_default(), bsvi_h5p_default(), bsvi_h5p_default())
            guard g >= 0 else { throw fail(prefix, "cannot create group") }
            H5Gclose(g)
        }
    }

    /// Names of the direct children of a group.
    public func children(of group: String) throws -> [String] {
        let g = H5Gopen2(id, group, bsvi_h5p_default())
        guard g >= 0 else { throw fail(group, "group not found") }
        defer { H5Gclose(g) }
        var info = H5G_info_t()
        guard H5Gget_info(g, &info) >= 0 else { throw fail(group, "cannot list group") }
        var names: [String] = []
        for i in 0..<info.nlinks {
            let n = H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, nil, 0, bsvi_h5p_default())
            guard n >= 0 else { throw fail(group, "cannot read a link name") }
            var buf = [CChar](repeating: 0, count: Int(n) + 1)
            H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, &buf, Int(n) + 1, bsvi_h5p_default())
            names.append(String(cString: buf))
        }
        return names
    }

    // MARK: Datasets

    public struct DatasetInfo: Equatable, Sendable {
        public let shape: [Int]
        public let elementType: HDF5ElementType
        public let hasFletcher32: Bool
        public var count: Int { shape.reduce(1, *) }
    }

    func openDataset(_ name: String) throws -> hid_t {
        guard try exists(name) else { throw fail(name, "dataset not found") }
        let d = H5Dopen2(id, name, bsvi_h5p_default())
        guard d >= 0 else { throw fail(name, "cannot open dataset (not a dataset, or the file is corrupt)") }
        return d
    }

    static func elementType(of type: hid_t) -> HDF5ElementType {
        let cls = H5Tget_class(type)
        let size = H5Tget_size(type)
        if cls == H5T_INTEGER {
            let signed = H5Tget_sign(type) == H5T_SGN_2
            if size == 1 && !signed { return .uint8 }
            if size == 8 && signed { return .int64 }
            return .other("\(signed ? "int" : "uint")\(size * 8)")
        }
        if cls == H5T_FLOAT { return size == 4 ? .float32 : size == 8 ? .float64 : .other("float\(size * 8)") }
        if cls == H5T_STRING { return .string }
        if cls == H5T_ENUM { return .other("enum\(size * 8)") }
        return .other("type class \(cls.rawValue)")
    }

    public func datasetInfo(_ name: String) throws -> DatasetInfo {
        let d = try openDataset(name)
        defer { H5Dclose(d) }
        let space = H5Dget_space(d)
        guard space >= 0 else { throw fail(name, "cannot read dataset shape") }
        defer { H5Sclose(space) }
        let rank = Int(H5Sget_simple_extent_ndims(space))
        guard rank >= 0 else { throw fail(name, "cannot read dataset rank") }
        var dims = [hsize_t](repeating: 0, count: max(rank, 1))
        H5Sget_simple_extent_dims(space, &dims, nil)
        let type = H5Dget_type(d)
        defer { H5Tclose(type) }
        let dcpl = H5Dget_create_plist(d)
        defer { H5Pclose(dcpl) }
        var fletcher = false
        let nfilters = H5Pget_nfilters(dcpl)
        if nfilters > 0 {
            for i in 0..<UInt32(nfilters) {
                var flags: UInt32 = 0
                var nelmts = 0
                var config: UInt32 = 0
                var name = [CChar](repeating: 0, count: 64)
                if H5Pget_filter2(dcpl, i, &flags, &nelmts, nil, 64, &name, &config) == H5Z_FILTER_FLETCHER32 {
                    fletcher = true
                }
            }
        }
        return DatasetInfo(shape: dims.prefix(rank).map { Int($0) }, elementType: Self.elementType(of: type),
                           hasFletcher32: fletcher)
    }

    /// Reads a whole dataset converted to `memType` into `out` (count elements).
    func read(_ name: String, memType: hid_t, into out: UnsafeMutableRawPointer) throws {
        let d = try openDataset(name)
        defer { H5Dclose(d) }
        guard H5Dread(d, memType, bsvi_h5s_all(), bsvi_h5s_all(), bsvi_h5p_default(), out) >= 0 else {
            throw fail(name, "reading the data failed (checksum mismatch or corrupt file)")
        }
    }

    public func readFloats(_ name: String) throws -> (values: [Float], shape: [Int]) {
        let info = try datasetInfo(name)
        guard info.elementType == .float32 || info.elementType == .float64 else {
            throw fail(name, "expected a float32 dataset, found \(info.elementType)")
        }
        var values = [Float](repeating: 0, count: info.count)
        if info.count > 0 { try values.withUnsafeMutableBytes { try read(name, memType: bsvi_h5t_native_float(), into: $0.baseAddress!) } }
        return (values, info.shape)
    }

    public func readDoubles(_ name: String) throws -> [Double] {
        let info = try datasetInfo(name)
        var values = [Double](repeating: 0, count: info.count)
        if info.count > 0 { try values.withUnsafeMutableBytes { try read(name, memType: bsvi_h5t_native_double(), into: $0.baseAddress!) } }
        return values
    }

    public func readInt64s(_ name: String) throws -> [Int64] {
        let info = try datasetInfo(name)
        var values = [Int64](repeating: 0, count: info.count)
        if info.count > 0 { try values.withUnsafeMutableBytes { try read(name, memType: bsvi_h5t_native_int64(), into: $0.baseAddress!) } }
        return values
    }

    /// Reads rows `rows` of a 2-D uint8 dataset of width `width` via a hyperslab selection.
    public func readUInt8Rows(_ name: String, rows: Range<Int>, width: Int, into out: UnsafeMutablePointer<UInt8>) throws {
        let reader = try HDF5RowReader(file: self, name: name)
        precondition(reader.width == width, "row width mismatch")
        try reader.read(rows, into: out)
    }

    /// Writes a dataset. `checksummed` stores it chunked (whole dataset, or `chunkRows` rows per
    /// chunk) with HDF5's Fletcher32 filter, verified on every read.
    func write(_ name: String, shape: [Int], fileType: hid_t, memType: hid_t, data: UnsafeRawPointer?,
               checksummed: Bool, chunkRows: Int? = nil) throws {
        try createGroup(parentPath(of: name))
        var dims = shape.map { hsize_t($0) }
        let space = H5Screate_simple(Int32(dims.count), &dims, nil)
        guard space >= 0 else { throw fail(name, "cannot create dataspace") }
        defer { H5Sclose(space) }
        let dcpl = H5Pcreate(bsvi_h5p_dataset_create())
        defer { H5Pclose(dcpl) }
        if checksummed && shape.allSatisfy({ $0 > 0 }) {
            var chunk = dims
            if let rows = chunkRows { chunk[0] = hsize_t(min(rows, shape[0])) }
            H5Pset_chunk(dcpl, Int32(chunk.count), &chunk)
            H5Pset_fletcher32(dcpl)
        }
        let d = H5Dcreate2(id, name, fileType, space, bsvi_h5p_default(), dcpl, bsvi_h5p_default())
        guard d >= 0 else { throw fail(name, "cannot create dataset") }
        defer { H5Dclose(d) }
        if let data, shape.reduce(1, *) > 0 {
            guard H5Dwrite(d, memType, bsvi_h5s_all(), bsvi_h5s_all(), bsvi_h5p_default(), data) >= 0 else {
                throw fail(name, "writing the data failed (disk full?)")
            }
        }
    }

    public func writeFloats(_ name: String, _ values: UnsafeBufferPointer<Float>, shape: [Int], checksummed: Bool = true) throws {
        precondition(values.count == shape.reduce(1, *))
        try write(name, shape: shape, fileType: H5T_IEEE_F32LE_g, memType: bsvi_h5t_native_float(),
                  data: values.baseAddress, checksummed: checksummed)
    }

    public func writeFloats(_ name: String, _ values: [Float], shape: [Int], checksummed: Bool = true) throws {
        try values.withUnsafeBufferPointer { try writeFloats(name, $0, shape: shape, checksummed: checksummed) }
    }

    public func writeDoubles(_ name: String, _ values: [Double]) throws {
        try values.withUnsafeBytes {
            try write(name, shape: [values.count], fileType: H5T_IEEE_F64LE_g, memType: bsvi_h5t_native_double(),
                      data: $0.baseAddress, checksummed: true)
        }
    }

    public func writeInt64s(_ name: String, _ values: [Int64]) throws {
        try values.withUnsafeBytes {
            try write(name, shape: [values.count], fileType: H5T_STD_I64LE_g, memType: bsvi_h5t_native_int64(),
                      data: $0.baseAddress, checksummed: true)
        }
    }

    /// A uint8 dataset; with `checksummedChunkRows`, chunked by that many rows with Fletcher32.
    public func writeUInt8(_ name: String, _ values: UnsafeBufferPointer<UInt8>, shape: [Int],
                           checksummedChunkRows: Int? = nil) throws {
        try write(name, shape: shape, fileType: H5T_STD_U8LE_g, memType: bsvi_h5t_native_uint8(),
                  data: values.baseAddress, checksummed: checksummedChunkRows != nil, chunkRows: checksummedChunkRows)
    }

    /// A 1-D dataset of fixed-length, NUL-terminated UTF-8 strings (Fletcher32 checksummed).
    public func writeStrings(_ name: String, _ values: [String]) throws {
        let width = (values.map { $0.utf8.count }.max() ?? 0) + 1
        var bytes = [UInt8](repeating: 0, count: width * values.count)
        for (i, v) in values.enumerated() { for (j, c) in v.utf8.enumerated() { bytes[i * width + j] = c } }
        let type = Self.fixedStringType(width)
        defer { H5Tclose(type) }
        try bytes.withUnsafeBytes {
            try write(name, shape: [values.count], fileType: type, memType: type, data: $0.baseAddress, checksummed: true)
        }
    }

    public func readStrings(_ name: String) throws -> [String] {
        let d = try openDataset(name)
        defer { H5Dclose(d) }
        let info = try datasetInfo(name)
        let type = H5Dget_type(d)
        defer { H5Tclose(type) }
        guard H5Tget_class(type) == H5T_STRING else { throw fail(name, "expected a string dataset") }
        if H5Tis_variable_str(type) > 0 {
            var ptrs = [UnsafeMutablePointer<CChar>?](repeating: nil, count: info.count)
            let mem = Self.variableStringType()
            defer { H5Tclose(mem) }
            guard H5Dread(d, mem, bsvi_h5s_all(), bsvi_h5s_all(), bsvi_h5p_default(), &ptrs) >= 0 else {
                throw fail(name, "reading strings failed")
            }
            defer { for p in ptrs { H5free_memory(p) } }
            return ptrs.map { $0.map { String(cString: $0) } ?? "" }
        }
        let width = H5Tget_size(type)
        var bytes = [CChar](repeating: 0, count: width * info.count + 1)
        guard H5Dread(d, type, bsvi_h5s_all(), bsvi_h5s_all(), bsvi_h5p_default(), &bytes) >= 0 else {
            throw fail(name, "reading strings failed")
        }
        return (0..<info.count).map { i in
            let slice = bytes[(i * width)..<((i + 1) * width)].map { UInt8(bitPattern: $0) }
            return String(decoding: slice.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    static func fixedStringType(_ width: Int) -> hid_t {
        let t = H5Tcopy(bsvi_h5t_c_s1())
        H5Tset_size(t, width)
        H5Tset_strpad(t, H5T_STR_NULLTERM)
        H5Tset_cset(t, H5T_CSET_UTF8)
        return t
    }

    static func variableStringType() -> hid_t {
        let t = H5Tcopy(bsvi_h5t_c_s1())
        H5Tset_size(t, bsvi_h5t_variable())
        H5Tset_cset(t, H5T_CSET_UTF8)
        return t
    }

    func parentPath(of name: String) -> String {
        guard let slash = name.lastIndex(of: "/"), slash != name.startIndex else { return "/" }
        return String(name[..<slash])
    }
}
