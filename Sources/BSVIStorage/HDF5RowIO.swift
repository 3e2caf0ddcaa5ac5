import CHDF5
import CHDF5Shims

/// Row-range reads and writes for datasets too large to hold in memory at once: an importer
/// reads an input dataset a chunk of rows at a time and writes the output the same way.
extension HDF5File {
    /// Creates a uint8 [rows, width] dataset, chunked by `chunkRows` rows with Fletcher32 (the
    /// layout `BinaryDatasetWriter` writes); fill it with `writeUInt8Rows`.
    public func createUInt8Dataset(_ name: String, rows: Int, width: Int, chunkRows: Int) throws {
        try write(name, shape: [rows, width], fileType: bsvi_h5t_std_u8le(), memType: bsvi_h5t_native_uint8(),
                  data: nil, checksummed: true, chunkRows: chunkRows)
    }

    /// Writes rows `rows` of a 2-D uint8 dataset of width `width` from `values` (rows.count × width).
    public func writeUInt8Rows(_ name: String, rows: Range<Int>, width: Int, from values: UnsafePointer<UInt8>) throws {
        try withDataset(name) { d in
            try checked(name, "writing rows \(rows.lowerBound)..<\(rows.upperBound) failed (disk full?)") {
                try withRowSelection(of: d, rows: rows) { memSpace, fileSpace, valuesPerRow throws(HDF5CallError) in
                    precondition(valuesPerRow == width, "row width mismatch")
                    try hdf5(H5Dwrite(d, bsvi_h5t_native_uint8(), memSpace, fileSpace, bsvi_h5p_default(), values), "H5Dwrite")
                }
            }
        }
    }

    /// Reads rows `rows` (along the first dimension, all of every other dimension) of a numeric
    /// dataset of any rank, converted by HDF5 to Float64, into `out`. One-byte enums (h5py's
    /// bool) have no conversion to numbers in HDF5: their stored values are read as they are,
    /// signed or unsigned as the enum's base type is (a uint8 enum's 200 is not −56).
    public func readRowsAsDoubles(_ name: String, rows: Range<Int>, into out: UnsafeMutablePointer<Double>) throws {
        try withDataset(name) { d in
            try checked(name, "reading rows \(rows.lowerBound)..<\(rows.upperBound) failed (checksum mismatch, or a truncated or corrupt file)") {
                let fileType = try hdf5(H5Dget_type(d), "H5Dget_type")
                defer { ignoringFailure(H5Tclose(fileType)) }
                guard try hdf5(H5Tget_class(fileType), "H5Tget_class") == H5T_ENUM,
                      try hdf5Size(H5Tget_size(fileType), "H5Tget_size") == 1 else {
                    return try readHyperslab(of: d, rows: rows, memType: bsvi_h5t_native_double(), into: out)
                }
                let memType = try hdf5(H5Tget_native_type(fileType, H5T_DIR_ASCEND), "H5Tget_native_type")
                defer { ignoringFailure(H5Tclose(memType)) }
                let shape = try withDataspace(of: d) { space throws(HDF5CallError) in try Self.extent(of: space) }
                let count = rows.count * shape.dropFirst().reduce(1, *)
                func read<Byte: FixedWidthInteger>(_: Byte.Type) throws(HDF5CallError) {
                    var bytes = [Byte](repeating: 0, count: count)
                    try readHyperslab(of: d, rows: rows, memType: memType, into: &bytes)
                    for i in 0..<count { out[i] = Double(bytes[i]) }
                }
                let base = try hdf5(H5Tget_super(fileType), "H5Tget_super")
                defer { ignoringFailure(H5Tclose(base)) }
                if try hdf5(H5Tget_sign(base), "H5Tget_sign") == H5T_SGN_2 { try read(Int8.self) } else { try read(UInt8.self) }
            }
        }
    }

    /// Reads rows `rows` (all of every other dimension) of the open dataset `d`, converted to
    /// `memType`, into `out`.
    func readHyperslab(of d: hid_t, rows: Range<Int>, memType: hid_t, into out: UnsafeMutableRawPointer) throws(HDF5CallError) {
        try withRowSelection(of: d, rows: rows) { memSpace, fileSpace, _ throws(HDF5CallError) in
            try hdf5(H5Dread(d, memType, memSpace, fileSpace, bsvi_h5p_default(), out), "H5Dread")
        }
    }

    /// Runs `body` with the dataset's dataspace.
    private func withDataspace<T>(of d: hid_t, _ body: (hid_t) throws(HDF5CallError) -> T) throws(HDF5CallError) -> T {
        let space = try hdf5(H5Dget_space(d), "H5Dget_space")
        defer { ignoringFailure(H5Sclose(space)) }
        return try body(space)
    }

    /// Runs `body` with a memory dataspace for rows `rows` of the open dataset `d` (all of every
    /// other dimension), the dataset's file dataspace with those rows selected, and the number of
    /// values in a row.
    private func withRowSelection(of d: hid_t, rows: Range<Int>,
                                  _ body: (_ memSpace: hid_t, _ fileSpace: hid_t, _ valuesPerRow: Int) throws(HDF5CallError) -> Void)
    throws(HDF5CallError) {
        try withDataspace(of: d) { fileSpace throws(HDF5CallError) in
            var count = try Self.extent(of: fileSpace).map { hsize_t($0) }
            precondition(!count.isEmpty, "rows of a scalar dataset")  // callers check the shape first
            var start = [hsize_t](repeating: 0, count: count.count)
            start[0] = hsize_t(rows.lowerBound)
            count[0] = hsize_t(rows.count)
            try hdf5(H5Sselect_hyperslab(fileSpace, H5S_SELECT_SET, &start, nil, &count, nil), "H5Sselect_hyperslab")
            let memSpace = try hdf5(H5Screate_simple(Int32(count.count), &count, nil), "H5Screate_simple")
            defer { ignoringFailure(H5Sclose(memSpace)) }
            try body(memSpace, fileSpace, count.dropFirst().reduce(1) { $0 * Int($1) })
        }
    }
}
