import CHDF5
import CHDF5Shims

/// Whole datasets: shape and type, typed reads (each checks the stored type first) and writes.
extension HDF5File {
    public struct DatasetInfo: Equatable, Sendable {
        public let shape: [Int]
        public let elementType: HDF5ElementType
        public let hasFletcher32: Bool
        public var count: Int { shape.reduce(1, *) }
    }

    // MARK: Opening

    /// Opens dataset `name`; `access` is a dataset access property list. The caller closes it.
    func openDataset(_ name: String, access: hid_t = bsvi_h5p_default()) throws -> hid_t {
        guard try exists(name) else { throw fail(name, "dataset not found") }
        return try checked(name, "cannot open dataset (not a dataset, or the file is corrupt)") {
            try hdf5(H5Dopen2(id, name, access), "H5Dopen2")
        }
    }

    /// Runs `body` with dataset `name` open, and closes it.
    @discardableResult
    func withDataset<T>(_ name: String, _ body: (hid_t) throws -> T) throws -> T {
        try closing(openDataset(name), with: H5Dclose, "H5Dclose", object: name, body)
    }

    /// The extent of a simple dataspace, one entry a dimension.
    static func extent(of space: hid_t) throws(HDF5CallError) -> [Int] {
        let rank = Int(try hdf5(H5Sget_simple_extent_ndims(space), "H5Sget_simple_extent_ndims"))
        var dims = [hsize_t](repeating: 0, count: max(rank, 1))
        try hdf5(H5Sget_simple_extent_dims(space, &dims, nil), "H5Sget_simple_extent_dims")
        // hsize_t is unsigned: a corrupt or hostile file can declare more than Int.max, which
        // Int(_:) would trap on.
        return try dims.prefix(rank).map { d throws(HDF5CallError) -> Int in
            guard let n = Int(exactly: d) else {
                throw HDF5CallError(call: "H5Sget_simple_extent_dims", reason: "a dimension of \(d) exceeds the largest size this program handles")
            }
            return n
        }
    }

    // MARK: Reading

    public func datasetInfo(_ name: String) throws -> DatasetInfo {
        try withDataset(name) { d in
            try checked(name, "cannot read the dataset's shape, type or storage filters") {
                let space = try hdf5(H5Dget_space(d), "H5Dget_space")
                defer { ignoringFailure(H5Sclose(space)) }
                let type = try hdf5(H5Dget_type(d), "H5Dget_type")
                defer { ignoringFailure(H5Tclose(type)) }
                let creation = try hdf5(H5Dget_create_plist(d), "H5Dget_create_plist")
                defer { ignoringFailure(H5Pclose(creation)) }
                return DatasetInfo(shape: try Self.extent(of: space), elementType: try HDF5ElementType.of(type),
                                   hasFletcher32: try Self.hasFletcher32(creation))
            }
        }
    }

    private static func hasFletcher32(_ creation: hid_t) throws(HDF5CallError) -> Bool {
        let filters = try hdf5(H5Pget_nfilters(creation), "H5Pget_nfilters")
        for i in 0..<UInt32(filters) {
            var flags: UInt32 = 0, valueCount = 0, config: UInt32 = 0
            var name = [CChar](repeating: 0, count: 64)
            let filter = try hdf5(H5Pget_filter2(creation, i, &flags, &valueCount, nil, 64, &name, &config), "H5Pget_filter2")
            if filter == H5Z_FILTER_FLETCHER32 { return true }
        }
        return false
    }

    /// The dataset's info, after checking that its element type is one `accepts` takes and that
    /// a whole read can be allocated (`checkWholeRead`).
    private func info(_ name: String, expecting expected: String, _ accepts: (HDF5ElementType) -> Bool) throws -> DatasetInfo {
        let info = try datasetInfo(name)
        guard accepts(info.elementType) else { throw fail(name, "expected \(expected) dataset, found \(info.elementType)") }
        try checkWholeRead(name, info)
        return info
    }

    /// Whether any stored chunk went through the filter at `filterIndex` of the pipeline (a
    /// chunk's filter mask has bit i set when filter i was skipped for it).
    private static func anyChunkFiltered(_ d: hid_t, filterIndex: UInt32) throws(HDF5CallError) -> Bool {
        let space = try hdf5(H5Dget_space(d), "H5Dget_space")
        defer { ignoringFailure(H5Sclose(space)) }
        var count: hsize_t = 0
        try hdf5(H5Dget_num_chunks(d, space, &count), "H5Dget_num_chunks")
        for index in 0..<count {
            var mask: UInt32 = 0
            try hdf5(H5Dget_chunk_info(d, space, index, nil, &mask, nil, nil), "H5Dget_chunk_info")
            if mask & (1 << filterIndex) == 0 { return true }
        }
        return false
    }

    /// Refuses storage this program cannot vouch for or decode (`storageProblem`), with the fix.
    func checkStorage(_ name: String) throws {
        if let problem = try storageProblem(name) {
            throw fail(name, problem, fix: "copy it into a plain dataset of this file (h5py: f2.create_dataset(name, data=f[name][:]) "
                                         + "with no compression or gzip; or h5repack -f NONE)")
        }
    }

    /// Storage this program cannot vouch for or decode, or nil. A virtual dataset (VDS) or one
    /// with external raw files reads its missing sources as zeros, HDF5 reporting them allocated;
    /// a filter this HDF5 lacks (h5py's lzf) fails every read with a message about plugins.
    private func storageProblem(_ name: String) throws -> String? {
        try withDataset(name) { d in
            try checked(name, "cannot read the dataset's storage layout") {
                let creation = try hdf5(H5Dget_create_plist(d), "H5Dget_create_plist")
                defer { ignoringFailure(H5Pclose(creation)) }
                if try hdf5(H5Pget_layout(creation), "H5Pget_layout") == H5D_VIRTUAL {
                    return "is a virtual dataset (its data lives in other files, and sources that are missing would read as zeros)"
                }
                if try hdf5(H5Pget_external_count(creation), "H5Pget_external_count") > 0 {
                    return "keeps its data in external raw files (a file that is missing or short would read as zeros)"
                }
                let filters = try hdf5(H5Pget_nfilters(creation), "H5Pget_nfilters")
                for i in 0..<UInt32(filters) {
                    var flags: UInt32 = 0, valueCount = 0, config: UInt32 = 0
                    var filterName = [CChar](repeating: 0, count: 64)
                    let filter = try hdf5(H5Pget_filter2(creation, i, &flags, &valueCount, nil, 64, &filterName, &config), "H5Pget_filter2")
                    guard try hdf5(H5Zfilter_avail(filter), "H5Zfilter_avail") <= 0 else { continue }
                    // An optional filter (h5py's lzf is one) that was unavailable when a chunk was
                    // written left that chunk unfiltered, which HDF5 reads: only chunks it filtered
                    // cannot be read.
                    if flags & UInt32(H5Z_FLAG_OPTIONAL) != 0, try !Self.anyChunkFiltered(d, filterIndex: i) { continue }
                    let label = String(decoding: filterName.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                    return "is compressed with filter '\(label.isEmpty ? "unnamed" : label)' (id \(filter)), which this program's HDF5 cannot decode"
                }
                return nil
            }
        }
    }

    /// Whether every element of a dataset has storage in the file: every chunk of a chunked
    /// dataset written (counted, since HDF5's space status compares byte sizes and calls a
    /// Fletcher32 dataset, 4 bytes longer per chunk, only partly allocated), or the contiguous
    /// data allocated. A dataset that is only declared reads as fill values, however large.
    /// Rows a writer never reached inside storage that exists (contiguous storage is allocated
    /// whole by the first write, a chunk by the first row written to it) read as the fill value
    /// too, and nothing in the file tells them from rows written with it: the importer warns of
    /// trailing rows of 0 instead (`InputSurvey.trailingZeroRows`).
    /// Storage that cannot be vouched for or decoded (`storageProblem`) is an error.
    public func isFullyStored(_ name: String) throws -> Bool {
        try checkStorage(name)
        return try withDataset(name) { d in
            try checked(name, "cannot read the dataset's storage layout or allocation status") {
                let creation = try hdf5(H5Dget_create_plist(d), "H5Dget_create_plist")
                defer { ignoringFailure(H5Pclose(creation)) }
                if try hdf5(H5Pget_layout(creation), "H5Pget_layout") == H5D_CHUNKED {
                    let space = try hdf5(H5Dget_space(d), "H5Dget_space")
                    defer { ignoringFailure(H5Sclose(space)) }
                    let shape = try Self.extent(of: space)
                    var chunk = [hsize_t](repeating: 0, count: max(shape.count, 1))
                    try hdf5(H5Pget_chunk(creation, Int32(chunk.count), &chunk), "H5Pget_chunk")
                    // Chunks along each dimension, rounded up; a chunk size of 0 cannot occur in
                    // a readable file, but would make the expected count unknowable.
                    var expected: UInt64 = 1
                    for (n, c) in zip(shape, chunk) {
                        guard c > 0 else { return false }
                        let (p, overflow) = expected.multipliedReportingOverflow(by: (UInt64(n) + c - 1) / c)
                        if overflow { return false }
                        expected = p
                    }
                    var stored: hsize_t = 0
                    try hdf5(H5Dget_num_chunks(d, space, &stored), "H5Dget_num_chunks")
                    return stored >= expected
                }
                var status = H5D_SPACE_STATUS_ERROR
                try hdf5(H5Dget_space_status(d, &status), "H5Dget_space_status")
                return status == H5D_SPACE_STATUS_ALLOCATED
            }
        }
    }

    /// Before a whole dataset is read into one array: its element count must not overflow, and
    /// its data must be in the file. Without this a 2 KB file declaring a chunked
    /// (2^20, 2^30) dataset, none of it written, makes the reader allocate a terabyte (an
    /// abort, not an error); with it, what is allocated is what the file stores. A dataset's
    /// splits, read a row range at a time, go through it too (`BinaryDataset.shape(of:)`): rows
    /// never written would read as zeros.
    func checkWholeRead(_ name: String, _ info: DatasetInfo) throws {
        guard let count = SizeLimits.product(info.shape) else {
            throw fail(name, "shape \(info.shape) declares more elements than can be counted (corrupt file)", fix: "write the file again")
        }

        guard try count == 0 || isFullyStored(name) else {
            throw fail(name, "shape \(info.shape) is declared but its data was never written (the file holds no storage for it, or not for every chunk: an incomplete or corrupt file)",
                       fix: "write the file again")
        }
    }

    /// Reads a whole dataset converted to `memType` into `out` (count elements).
    func read(_ name: String, memType: hid_t, into out: UnsafeMutableRawPointer) throws {
        try withDataset(name) { d in
            try checked(name, "reading the data failed (checksum mismatch or corrupt file)") {
                try hdf5(H5Dread(d, memType, bsvi_h5s_all(), bsvi_h5s_all(), bsvi_h5p_default(), out), "H5Dread")
            }
        }
    }

    public func readFloats(_ name: String) throws -> (values: [Float], shape: [Int]) {
        let info = try info(name, expecting: "a float32", \.isFloat)
        var values = [Float](repeating: 0, count: info.count)
        if info.count > 0 { try values.withUnsafeMutableBytes { try read(name, memType: bsvi_h5t_native_float(), into: $0.baseAddress!) } }
        return (values, info.shape)
    }

    public func readDoubles(_ name: String) throws -> [Double] {
        let info = try info(name, expecting: "a float64", \.isFloat)
        var values = [Double](repeating: 0, count: info.count)
        if info.count > 0 { try values.withUnsafeMutableBytes { try read(name, memType: bsvi_h5t_native_double(), into: $0.baseAddress!) } }
        return values
    }

    public func readInt64s(_ name: String) throws -> [Int64] {
        let info = try info(name, expecting: "an int64", \.convertsExactlyToInt64)
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

    // MARK: Writing

    /// Writes a dataset. `checksummed` stores it chunked (whole dataset, or `chunkRows` rows per
    /// chunk) with HDF5's Fletcher32 filter, verified on every read.
    func write(_ name: String, shape: [Int], fileType: hid_t, memType: hid_t, data: UnsafeRawPointer?,
               checksummed: Bool, chunkRows: Int? = nil) throws {
        try createGroup(parentPath(of: name))
        let dataset = try checked(name, "cannot create dataset") {
            var dims = shape.map { hsize_t($0) }
            let space = try hdf5(H5Screate_simple(Int32(dims.count), &dims, nil), "H5Screate_simple")
            defer { ignoringFailure(H5Sclose(space)) }
            let creation = try hdf5(H5Pcreate(bsvi_h5p_dataset_create()), "H5Pcreate")
            defer { ignoringFailure(H5Pclose(creation)) }
            // No creation times in the object headers (nor in groups' and the root's, HDF5File):
            // the same contents give the same bytes — per-example files of one evaluation on any
            // number of ranks, checkpoints of a run repeated.
            try hdf5(H5Pset_obj_track_times(creation, false), "H5Pset_obj_track_times")
            if checksummed && shape.allSatisfy({ $0 > 0 }) {
                var chunk = dims
                if let rows = chunkRows { chunk[0] = hsize_t(min(rows, shape[0])) }
                try hdf5(H5Pset_chunk(creation, Int32(chunk.count), &chunk), "H5Pset_chunk")
                try hdf5(H5Pset_fletcher32(creation), "H5Pset_fletcher32")
            }
            return try hdf5(H5Dcreate2(id, name, fileType, space, bsvi_h5p_default(), creation, bsvi_h5p_default()), "H5Dcreate2")
        }
        try closing(dataset, with: H5Dclose, "H5Dclose", object: name) { d in
            guard let data, shape.reduce(1, *) > 0 else { return }
            try checked(name, "writing the data failed (disk full?)") {
                try hdf5(H5Dwrite(d, memType, bsvi_h5s_all(), bsvi_h5s_all(), bsvi_h5p_default(), data), "H5Dwrite")
            }
        }
    }

    public func writeFloats(_ name: String, _ values: UnsafeBufferPointer<Float>, shape: [Int], checksummed: Bool = true) throws {
        precondition(values.count == shape.reduce(1, *))
        try write(name, shape: shape, fileType: bsvi_h5t_ieee_f32le(), memType: bsvi_h5t_native_float(),
                  data: values.baseAddress, checksummed: checksummed)
    }

    public func writeFloats(_ name: String, _ values: [Float], shape: [Int], checksummed: Bool = true) throws {
        try values.withUnsafeBufferPointer { try writeFloats(name, $0, shape: shape, checksummed: checksummed) }
    }

    public func writeDoubles(_ name: String, _ values: [Double]) throws {
        try values.withUnsafeBytes {
            try write(name, shape: [values.count], fileType: bsvi_h5t_ieee_f64le(), memType: bsvi_h5t_native_double(),
                      data: $0.baseAddress, checksummed: true)
        }
    }

    public func writeInt64s(_ name: String, _ values: [Int64]) throws {
        try values.withUnsafeBytes {
            try write(name, shape: [values.count], fileType: bsvi_h5t_std_i64le(), memType: bsvi_h5t_native_int64(),
                      data: $0.baseAddress, checksummed: true)
        }
    }

    /// A uint8 dataset; with `checksummedChunkRows`, chunked by that many rows with Fletcher32.
    public func writeUInt8(_ name: String, _ values: UnsafeBufferPointer<UInt8>, shape: [Int],
                           checksummedChunkRows: Int? = nil) throws {
        try write(name, shape: shape, fileType: bsvi_h5t_std_u8le(), memType: bsvi_h5t_native_uint8(),
                  data: values.baseAddress, checksummed: checksummedChunkRows != nil, chunkRows: checksummedChunkRows)
    }
}
