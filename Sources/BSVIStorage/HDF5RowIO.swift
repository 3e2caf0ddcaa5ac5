import CHDF5
import CShims

/// Row-range reads and writes for datasets too large to hold in memory at once: an importer
/// reads an input dataset a chunk of rows at a time and writes the output the same way.
extension HDF5File {
    /// Creates a uint8 [rows, width] dataset, chunked by `chunkRows` rows with Fletcher32 (the
    /// layout `BinaryDatasetWriter` writes); fill it with `writeUInt8Rows`.
    public func createUInt8Dataset(_ name: String, rows: Int, width: Int, chunkRows: Int) throws {
        try write(name, shape: [rows, width], fileType: H5T_STD_U8LE_g, memType: bsvi_h5t_native_uint8(),
                  data: nil, checksummed: true, chunkRows: chunkRows)
    }

    /// Writes rows `rows` of a 2-D uint8 dataset of width `width` from `values` (rows.count × width).
    public func writeUInt8Rows(_ name: String, rows: Range<Int>, width: Int, from values: UnsafePointer<UInt8>) throws {
        let d = try openDataset(name)
        defer { H5Dclose(d) }
        let fileSpace = H5Dget_space(d)
        defer { H5Sclose(fileSpace) }
        var start: [hsize_t] = [hsize_t(rows.lowerBound), 0]
        var count: [hsize_t] = [hsize_t(rows.count), hsize_t(width)]
        guard H5Sselect_hyperslab(fileSpace, H5S_SELECT_SET, &start, nil, &count, nil) >= 0 else {
            throw fail(name, "cannot select rows \(rows.lowerBound)..<\(rows.upperBound)")
        }
        let memSpace = H5Screate_simple(2, &count, nil)
        defer { H5Sclose(memSpace) }
        guard H5Dwrite(d, bsvi_h5t_native_uint8(), memSpace, fileSpace, bsvi_h5p_default(), values) >= 0 else {
            throw fail(name, "writing rows \(rows.lowerBound)..<\(rows.upperBound) failed (disk full?)")
        }
    }

    /// Reads rows `rows` (along the first dimension, all of every other dimension) of a numeric
    /// dataset of any rank, converted by HDF5 to Float64, into `out`. One-byte enums (h5py's
    /// bool) have no conversion to numbers in HDF5: their stored values are read as they are.
    public func readRowsAsDoubles(_ name: String, rows: Range<Int>, into out: UnsafeMutablePointer<Double>) throws {
        let d = try openDataset(name)
        defer { H5Dclose(d) }
        let fileSpace = H5Dget_space(d)
        defer { H5Sclose(fileSpace) }
        let rank = Int(H5Sget_simple_extent_ndims(fileSpace))
        guard rank >= 1 else { throw fail(name, "cannot read the dataset's shape") }
        var dims = [hsize_t](repeating: 0, count: rank)
        H5Sget_simple_extent_dims(fileSpace, &dims, nil)
        var start = [hsize_t](repeating: 0, count: rank)
        start[0] = hsize_t(rows.lowerBound)
        var count = dims
        count[0] = hsize_t(rows.count)
        guard H5Sselect_hyperslab(fileSpace, H5S_SELECT_SET, &start, nil, &count, nil) >= 0 else {
            throw fail(name, "cannot select rows \(rows.lowerBound)..<\(rows.upperBound)")
        }
        let memSpace = H5Screate_simple(Int32(rank), &count, nil)
        defer { H5Sclose(memSpace) }
        let fileType = H5Dget_type(d)
        defer { H5Tclose(fileType) }
        let failed = fail(name, "reading rows \(rows.lowerBound)..<\(rows.upperBound) failed (checksum mismatch, or a truncated or corrupt file)")
        if H5Tget_class(fileType) == H5T_ENUM && H5Tget_size(fileType) == 1 {
            let values = count.reduce(1) { $0 * Int($1) }
            let memType = H5Tget_native_type(fileType, H5T_DIR_ASCEND)
            defer { H5Tclose(memType) }
            var bytes = [Int8](repeating: 0, count: values)
            guard H5Dread(d, memType, memSpace, fileSpace, bsvi_h5p_default(), &bytes) >= 0 else { throw failed }
            for i in 0..<values { out[i] = Double(bytes[i]) }
            return
        }
        guard H5Dread(d, bsvi_h5t_native_double(), memSpace, fileSpace, bsvi_h5p_default(), out) >= 0 else { throw failed }
    }
}
