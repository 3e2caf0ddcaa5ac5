import CHDF5
import CHDF5Shims

/// String datasets, and the UTF-8 string types shared with attributes.
extension HDF5File {
    /// A 1-D dataset of fixed-length, NUL-terminated UTF-8 strings (Fletcher32 checksummed).
    public func writeStrings(_ name: String, _ values: [String]) throws {
        let width = (values.map { $0.utf8.count }.max() ?? 0) + 1
        var bytes = [UInt8](repeating: 0, count: width * values.count)
        for (i, v) in values.enumerated() { for (j, c) in v.utf8.enumerated() { bytes[i * width + j] = c } }
        let type = try checked(name, "cannot make a string type of \(width) bytes") { try Self.fixedStringType(width) }
        defer { ignoringFailure(H5Tclose(type)) }
        try bytes.withUnsafeBytes {
            try write(name, shape: [values.count], fileType: type, memType: type, data: $0.baseAddress, checksummed: true)
        }
    }

    /// Strings of a 1-D dataset, fixed-length or variable-length (h5py writes the latter).
    public func readStrings(_ name: String) throws -> [String] {
        let info = try datasetInfo(name)
        guard info.elementType == .string else { throw fail(name, "expected a string dataset, found \(info.elementType)") }
        try checkWholeRead(name, info)  // before allocating info.count pointers or strings
        return try withDataset(name) { d in
            try checked(name, "reading strings failed (checksum mismatch or corrupt file)") {
                let type = try hdf5(H5Dget_type(d), "H5Dget_type")
                defer { ignoringFailure(H5Tclose(type)) }
                if try hdf5(H5Tis_variable_str(type), "H5Tis_variable_str") > 0 {
                    let memType = try Self.variableStringType()
                    defer { ignoringFailure(H5Tclose(memType)) }
                    var pointers = [UnsafeMutablePointer<CChar>?](repeating: nil, count: info.count)
                    // HDF5 allocated each string; freeing memory cannot lose data.
                    defer { for p in pointers { ignoringFailure(H5free_memory(p)) } }
                    try hdf5(H5Dread(d, memType, bsvi_h5s_all(), bsvi_h5s_all(), bsvi_h5p_default(), &pointers), "H5Dread")
                    return pointers.map { $0.map { String(cString: $0) } ?? "" }
                }
                let width = try hdf5Size(H5Tget_size(type), "H5Tget_size")
                var bytes = [UInt8](repeating: 0, count: width * info.count + 1)
                try hdf5(H5Dread(d, type, bsvi_h5s_all(), bsvi_h5s_all(), bsvi_h5p_default(), &bytes), "H5Dread")
                return (0..<info.count).map { i in
                    String(decoding: bytes[(i * width)..<((i + 1) * width)].prefix { $0 != 0 }, as: UTF8.self)
                }
            }
        }
    }

    /// Fixed-length NUL-terminated UTF-8 strings of `width` bytes; the caller closes it.
    static func fixedStringType(_ width: Int) throws(HDF5CallError) -> hid_t {
        try stringType { t throws(HDF5CallError) in
            try hdf5(H5Tset_size(t, width), "H5Tset_size")
            try hdf5(H5Tset_strpad(t, H5T_STR_NULLTERM), "H5Tset_strpad")
        }
    }

    /// Variable-length UTF-8 strings; the caller closes it.
    static func variableStringType() throws(HDF5CallError) -> hid_t {
        try stringType { t throws(HDF5CallError) in try hdf5(H5Tset_size(t, bsvi_h5t_variable()), "H5Tset_size") }
    }

    /// A copy of C's string type in UTF-8, shaped by `configure`; released if that fails.
    private static func stringType(_ configure: (hid_t) throws(HDF5CallError) -> Void) throws(HDF5CallError) -> hid_t {
        let t = try hdf5(H5Tcopy(bsvi_h5t_c_s1()), "H5Tcopy")
        do {
            try configure(t)
            try hdf5(H5Tset_cset(t, H5T_CSET_UTF8), "H5Tset_cset")
        } catch {
            ignoringFailure(H5Tclose(t))
            throw error
        }
        return t
    }
}
