import CHDF5
import CHDF5Shims

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
        let access = try file.checked(name, "cannot set up the dataset's chunk cache") {
            let access = try hdf5(H5Pcreate(bsvi_h5p_dataset_access()), "H5Pcreate")
            if let bytes = chunkCacheBytes {
                // −1 for the slot count and w0 are H5D_CHUNK_CACHE_NSLOTS_DEFAULT and _W0_DEFAULT
                // ((size_t)−1 and −1.0): only the size changes.
                do { try hdf5(H5Pset_chunk_cache(access, -1, bytes, -1), "H5Pset_chunk_cache") } catch {
                    ignoringFailure(H5Pclose(access))
                    throw error
                }
            }
            return access
        }
        defer { ignoringFailure(H5Pclose(access)) }
        let dataset = try file.openDataset(name, access: access)
        do {
            (rows, width, chunkRows) = try file.checked(name, "cannot read the dataset's shape and storage layout") {
                let space = try hdf5(H5Dget_space(dataset), "H5Dget_space")
                defer { ignoringFailure(H5Sclose(space)) }
                let shape = try HDF5File.extent(of: space)
                guard shape.count == 2 else { throw file.fail(name, "expected a 2-D dataset [rows, width], found shape \(shape)") }
                let creation = try hdf5(H5Dget_create_plist(dataset), "H5Dget_create_plist")
                defer { ignoringFailure(H5Pclose(creation)) }
                guard try hdf5(H5Pget_layout(creation), "H5Pget_layout") == H5D_CHUNKED else { return (shape[0], shape[1], nil) }
                var chunk = [hsize_t](repeating: 0, count: 2)
                try hdf5(H5Pget_chunk(creation, 2, &chunk), "H5Pget_chunk")
                return (shape[0], shape[1], Int(chunk[0]))
            }
        } catch {
            ignoringFailure(H5Dclose(dataset))  // on the error path: the error above is the one to report
            throw error
        }
        self.dataset = dataset
    }

    /// The dataset was only read from: closing it cannot lose data.
    deinit { ignoringFailure(H5Dclose(dataset)) }

    /// Reads rows `range` (rows.count × width bytes) into `out` via a hyperslab selection.
    func read(_ range: Range<Int>, into out: UnsafeMutablePointer<UInt8>) throws {
        guard range.lowerBound >= 0 && range.upperBound <= rows else {
            throw file.fail(name, "rows \(range.lowerBound)..<\(range.upperBound) are outside the split's \(rows) rows")
        }
        if range.isEmpty { return }
        try file.checked(name, "reading rows \(range.lowerBound)..<\(range.upperBound) failed (checksum mismatch, or a truncated or corrupt file)") {
            try file.readHyperslab(of: dataset, rows: range, memType: bsvi_h5t_native_uint8(), into: out)
        }
    }
}
