import CHDF5
import CShims

/// A 2-D uint8 dataset held open for many reads of row ranges, with its chunking. The chunk is
/// the unit HDF5 reads from disk and verifies (Fletcher32): reading any row of a chunk costs the
/// whole chunk, so callers that need scattered rows read whole chunks once each and pick their
/// rows from them (BinaryDataset.readRows(_:ascending:into:)).
final class HDF5RowReader {
    let file: HDF5File
    let name: String
    let rows: Int
    let width: Int
    /// Rows per chunk, or nil for a contiguous dataset.
    let chunkRows: Int?
    private let dataset: hid_t

    /// `chunkCacheBytes` sizes HDF5's chunk cache for this dataset; 0 turns it off, which suits
    /// a reader that never reads a chunk twice (the cache could only add a copy).
    init(file: HDF5File, name: String, chunkCacheBytes: Int? = nil) throws {
        self.file = file
        self.name = name
        guard try file.exists(name) else { throw file.fail(name, "dataset not found") }
        let access = H5Pcreate(H5P_CLS_DATASET_ACCESS_ID_g)
        guard access >= 0 else { throw file.fail(name, "cannot create a dataset access property list") }
        defer { H5Pclose(access) }
        if let bytes = chunkCacheBytes {
            // −1 for the slot count and w0 are H5D_CHUNK_CACHE_NSLOTS_DEFAULT and _W0_DEFAULT
            // ((size_t)−1 and −1.0): only the size changes.
            guard H5Pset_chunk_cache(access, -1, bytes, -1) >= 0 else {
                throw file.fail(name, "cannot set the chunk cache size")
            }
        }
        dataset = H5Dopen2(file.id, name, access)
        guard dataset >= 0 else { throw file.fail(name, "cannot open dataset (not a dataset, or the file is corrupt)") }
        var shape = (rows: 0, width: 0)
        var chunk: Int? = nil
        do {
            let space = H5Dget_space(dataset)
            guard space >= 0 else { throw file.fail(name, "cannot read dataset shape") }
            defer { H5Sclose(space) }
            var dims = [hsize_t](repeating: 0, count: 2)
            guard H5Sget_simple_extent_ndims(space) == 2, H5Sget_simple_extent_dims(space, &dims, nil) == 2 else {
                throw file.fail(name, "expected a 2-D dataset [rows, width]")
            }
            shape = (Int(dims[0]), Int(dims[1]))
            let create = H5Dget_create_plist(dataset)
            guard create >= 0 else { throw file.fail(name, "cannot read the dataset's storage layout") }
            defer { H5Pclose(create) }
            if H5Pget_layout(create) == H5D_CHUNKED {
                var chunkDims = [hsize_t](repeating: 0, count: 2)
                guard H5Pget_chunk(create, 2, &chunkDims) == 2 else { throw file.fail(name, "cannot read the chunk shape") }
                chunk = Int(chunkDims[0])
            }
        } catch {
            H5Dclose(dataset)
            throw error
        }
        rows = shape.rows
        width = shape.width
        chunkRows = chunk
    }

    deinit { H5Dclose(dataset) }

    /// Reads rows `range` (rows.count × width bytes) into `out` via a hyperslab selection.
    func read(_ range: Range<Int>, into out: UnsafeMutablePointer<UInt8>) throws {
        guard range.lowerBound >= 0 && range.upperBound <= rows else {
            throw file.fail(name, "rows \(range.lowerBound)..<\(range.upperBound) are outside the split's \(rows) rows")
        }
        if range.isEmpty { return }
        let fileSpace = H5Dget_space(dataset)
        guard fileSpace >= 0 else { throw file.fail(name, "cannot read dataset shape") }
        defer { H5Sclose(fileSpace) }
        var start: [hsize_t] = [hsize_t(range.lowerBound), 0]
        var count: [hsize_t] = [hsize_t(range.count), hsize_t(width)]
        guard H5Sselect_hyperslab(fileSpace, H5S_SELECT_SET, &start, nil, &count, nil) >= 0 else {
            throw file.fail(name, "cannot select rows \(range.lowerBound)..<\(range.upperBound)")
        }
        let memSpace = H5Screate_simple(2, &count, nil)
        guard memSpace >= 0 else { throw file.fail(name, "cannot create a memory dataspace") }
        defer { H5Sclose(memSpace) }
        guard H5Dread(dataset, bsvi_h5t_native_uint8(), memSpace, fileSpace, bsvi_h5p_default(), out) >= 0 else {
            throw file.fail(name, "reading rows \(range.lowerBound)..<\(range.upperBound) failed (checksum mismatch, or a truncated or corrupt file)")
        }
    }
}
