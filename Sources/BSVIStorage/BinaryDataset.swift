import BSVI
import Foundation

/// The splits of a binarized image dataset file (DESIGN.md §4).
public enum DataSplit: String, CaseIterable, Codable, Sendable {
    case train, valid, test
}

/// A read-only binarized dataset: `/train`, `/valid`, `/test`, each uint8 [N, D] of 0/1.
/// A contiguous row range (an HDF5 hyperslab) or any set of rows (chunk by chunk) can be read,
/// so each rank reads only the rows it trains on. Every read validates the values.
/// In a dataset prepared with `--binarize dynamic` (attribute `binarization` = "dynamic"), /train
/// holds intensities 0–255 instead (`values(of:)`), read with `readIntensityRows`
/// (BinaryDataset+Intensities.swift) and turned into a fresh binary image per epoch by
/// `DynamicBinarization.draw`; /valid and /test are binary as always.
public final class BinaryDataset {
    public let path: String
    let file: HDF5File
    /// The `binarization` root attribute ("none", "bernoulli", "threshold", "dynamic"); nil in
    /// files written before it existed (they are Bernoulli-binarized Fashion-MNIST). Read once at
    /// opening: it decides how every read of /train is checked.
    public let binarization: String?
    /// Splits whose every chunk was found written (`shape(of:)`): checked once per split, on
    /// first use, so a run that never reads a damaged split is not stopped by it.
    private var fullyStored: Set<DataSplit> = []

    public init(path: String) throws {
        self.path = path
        file = try HDF5File.open(path)
        binarization = try? file.stringAttribute("binarization")
        // Storage the reader cannot use (a virtual dataset, external files, a filter this HDF5
        // lacks) is a choice made for the whole file: refused at opening, which the ranks do
        // together (one message under mpirun), not at a split's first read.
        for split in DataSplit.allCases where try file.exists("/" + split.rawValue) {
            try file.checkStorage("/" + split.rawValue)
        }
    }

    /// Whether /train holds intensities for dynamic binarization.
    public var isDynamic: Bool { binarization == "dynamic" }

    /// What the values of `split` mean: intensities for /train of a dynamic dataset, else 0/1.
    public func values(of split: DataSplit) -> SplitValues {
        split == .train && isDynamic ? .intensities : .binary
    }

    /// Number of rows and the row width of a split, after checking dtype and rank.
    public func shape(of split: DataSplit) throws -> (rows: Int, width: Int) {
        let name = "/" + split.rawValue
        guard try file.exists(name) else {
            throw StorageError(file: path, object: name, problem: "split is missing",
                               fix: "the dataset needs /train, /valid and /test; rebuild it with `bsvi-dist prepare-data`")
        }
        let info = try file.datasetInfo(name)
        guard info.elementType == .uint8 else {
            throw StorageError(file: path, object: name, problem: "dtype is \(info.elementType), expected uint8 with values 0/1",
                               fix: "store binarized pixels as uint8")
        }
        guard info.shape.count == 2 else {
            throw StorageError(file: path, object: name, problem: "rank is \(info.shape.count) (shape \(info.shape)), expected 2: [examples, pixels]",
                               fix: "flatten each image into one row")
        }
        guard info.shape[0] > 0 else {
            throw StorageError(file: path, object: name, problem: "split has zero rows", fix: "rebuild the dataset")
        }
        guard info.shape[1] > 0 else {
            throw StorageError(file: path, object: name, problem: "rows have zero width", fix: "rebuild the dataset")
        }
        // Row buffers are rows × width: a hostile width (a 2 KB file can declare 2^30 with no
        // chunk written) would abort on allocation instead of failing with this message.
        guard info.shape[1] <= SizeLimits.maxRowWidth else {
            throw StorageError(file: path, object: name,
                               problem: "rows of \(info.shape[1]) pixels, more than the \(SizeLimits.maxRowWidth) (4096×4096) a row may hold",
                               fix: "rebuild the dataset with `bsvi-dist prepare-data`")
        }
        // A split declared but never written (no storage, or chunks missing) — a conversion cut
        // off by another tool, say — reads as fill values: all-zero images that pass every 0/1
        // check and train.
        if !fullyStored.contains(split) {
            try file.checkWholeRead(name, info)
            fullyStored.insert(split)
        }
        return (info.shape[0], info.shape[1])
    }

    /// Reads rows `rows` of `split` as Float32 0/1 into `out` (rows.count × width), rejecting
    /// any value other than 0 or 1 with the count and the first offending row.
    public func readRows(_ split: DataSplit, rows: Range<Int>, into out: Matrix) throws {
        try requireBinary(split)
        let (n, width) = try shape(of: split)
        let name = "/" + split.rawValue
        precondition(out.rows == rows.count && out.cols == width, "row buffer shape mismatch")
        guard rows.lowerBound >= 0 && rows.upperBound <= n else {
            throw StorageError(file: path, object: name, problem: "rows \(rows.lowerBound)..<\(rows.upperBound) are outside the split's \(n) rows")
        }
        var bytes = [UInt8](repeating: 0, count: rows.count * width)
        try bytes.withUnsafeMutableBufferPointer {
            try file.readUInt8Rows(name, rows: rows, width: width, into: $0.baseAddress!)
            try checkBinary($0.baseAddress!, rows: rows.count, width: width, split: split) { rows.lowerBound + $0 }
        }
        for i in 0..<bytes.count { out.base[i] = Float(bytes[i]) }
    }

    /// What a chunk-wise read cost (the I/O figures of docs/distributed.md).
    public struct ReadStatistics: Equatable, Sendable {
        public var rows = 0
        /// Blocks (chunks) read, each once.
        public var blocks = 0
        /// Bytes HDF5 read and verified: whole blocks, not only the rows kept.
        public var bytesRead = 0
        public init() {}
    }

    /// Reads the rows `rows` (strictly ascending) of `split` into `out` as their stored bytes:
    /// row `rows[i]` lands at `out + i·width`. The split is read block by block — a block is one
    /// HDF5 chunk, the unit HDF5 reads and checksums anyway — each block at most once and only if
    /// it holds a wanted row, through one block-sized buffer: memory is the output plus one
    /// chunk, however the rows are spread. Values other than 0/1 are rejected as by
    /// `readRows(_:rows:into:)`.
    @discardableResult
    public func readRows(_ split: DataSplit, ascending rows: [Int], into out: UnsafeMutablePointer<UInt8>) throws -> ReadStatistics {
        try requireBinary(split)
        let (stats, width) = try gatherRows(split, ascending: rows, into: out)
        try checkBinary(out, rows: rows.count, width: width, split: split) { rows[$0] }
        return stats
    }

    /// The chunk-wise read of `readRows(_:ascending:into:)` without any check of the values;
    /// returns what it cost and the row width.
    func gatherRows(_ split: DataSplit, ascending rows: [Int], into out: UnsafeMutablePointer<UInt8>) throws
        -> (stats: ReadStatistics, width: Int) {
        let (n, width) = try shape(of: split)
        let reader = try HDF5RowReader(file: file, name: "/" + split.rawValue, chunkCacheBytes: 0)
        let blockRows = Self.blockRows(reader)
        let block = UnsafeMutablePointer<UInt8>.allocate(capacity: blockRows * width)
        defer { block.deallocate() }
        var stats = ReadStatistics()
        var loaded = -1
        var previous = -1
        for (i, row) in rows.enumerated() {
            precondition(row > previous, "rows must be strictly ascending")
            previous = row
            guard row < n else {
                throw StorageError(file: path, object: "/" + split.rawValue, problem: "row \(row) is outside the split's \(n) rows")
            }
            if row / blockRows != loaded {
                loaded = row / blockRows
                let range = (loaded * blockRows)..<min(n, (loaded + 1) * blockRows)
                try reader.read(range, into: block)
                stats.blocks += 1
                stats.bytesRead += range.count * width
            }
            (out + i * width).update(from: block + (row - loaded * blockRows) * width, count: width)
        }
        stats.rows = rows.count
        return (stats, width)
    }

    /// Checks rows `rows` of `split` (the start-up check of /train): reads them block by block
    /// through one block-sized buffer, nothing kept, so every chunk's Fletcher32 checksum is
    /// verified, and rejects values other than 0/1 in a binary split. Intensities (/train of a
    /// dynamic dataset) are 0–255 by construction: any uint8 is one. Returns the rows' digest
    /// (`rowsDigest`), so that the ranks' checks of their parts add up to the split's.
    @discardableResult
    public func validateRows(_ split: DataSplit, rows: Range<Int>) throws -> UInt64 {
        let (n, width) = try shape(of: split)
        let reader = try HDF5RowReader(file: file, name: "/" + split.rawValue, chunkCacheBytes: 0)
        guard rows.lowerBound >= 0 && rows.upperBound <= n else {
            throw StorageError(file: path, object: "/" + split.rawValue,
                               problem: "rows \(rows.lowerBound)..<\(rows.upperBound) are outside the split's \(n) rows")
        }
        let blockRows = Self.blockRows(reader)
        let block = UnsafeMutablePointer<UInt8>.allocate(capacity: blockRows * width)
        defer { block.deallocate() }
        var start = rows.lowerBound
        var digest: UInt64 = 0
        while start < rows.upperBound {
            // Block-aligned pieces, so every chunk is read once.
            let end = min(rows.upperBound, (start / blockRows + 1) * blockRows)
            try reader.read(start..<end, into: block)
            if values(of: split) == .binary {
                try checkBinary(block, rows: end - start, width: width, split: split) { [start] in start + $0 }
            }
            for r in 0..<(end - start) { digest &+= Self.rowDigest(block + r * width, width: width, row: start + r) }
            start = end
        }
        return digest
    }

    /// A 64-bit hash of one row's bytes and its index. The digest of a set of rows is the
    /// wrapping sum of theirs: the same however the rows are split into parts (ranks), and
    /// different, but for a 2⁻⁶⁴ chance, when any byte or row moves. Not cryptographic.
    public static func rowDigest(_ bytes: UnsafePointer<UInt8>, width: Int, row: Int) -> UInt64 {
        var h = 0xcbf2_9ce4_8422_2325 ^ (UInt64(row) &* 0x9E37_79B9_7F4A_7C15)
        var i = 0
        // FNV-1a's step on 8-byte words (little-endian loads), then on the last bytes.
        while i + 8 <= width {
            h = (h ^ UnsafeRawPointer(bytes + i).loadUnaligned(as: UInt64.self)) &* 0x100_0000_01b3
            i += 8
        }
        while i < width {
            h = (h ^ UInt64(bytes[i])) &* 0x100_0000_01b3
            i += 1
        }
        // SplitMix64's finalizer: every input bit reaches every output bit before the sum.
        h = (h ^ (h >> 30)) &* 0xbf58_476d_1ce4_e5b9
        h = (h ^ (h >> 27)) &* 0x94d0_49bb_1331_11eb
        return h ^ (h >> 31)
    }

    /// Rows per block of a chunk-wise read: one chunk of a chunked split; about 1 MiB of rows of
    /// a contiguous one.
    static func blockRows(_ reader: HDF5RowReader) -> Int {
        reader.chunkRows ?? max(1, (1 << 20) / max(reader.width, 1))
    }

    /// Throws, naming the count and the first offending row, if any of `rows` × `width` bytes is
    /// not 0 or 1; `rowID` maps a row of the buffer to its row in the split.
    func checkBinary(_ bytes: UnsafePointer<UInt8>, rows: Int, width: Int, split: DataSplit, rowID: (Int) -> Int) throws {
        // A value above 1 has a bit other than bit 0 set: one OR over the buffer finds it.
        var any: UInt8 = 0
        for i in 0..<(rows * width) { any |= bytes[i] }
        guard any & 0xFE != 0 else { return }
        var bad = 0
        var firstBad = -1
        for i in 0..<(rows * width) where bytes[i] > 1 {
            bad += 1
            if firstBad < 0 { firstBad = i }
        }
        throw StorageError(file: path, object: "/" + split.rawValue,
                           problem: "\(bad) values are not 0/1 (first in row \(rowID(firstBad / width)))",
                           fix: "binarize the data, e.g. with `bsvi-dist prepare-data`", kind: .badData)
    }

    /// Refuses a binary read of a split that holds intensities, before reading anything: a
    /// dynamic /train has no fixed binary image (an all-0/1 one would otherwise pass the check).
    func requireBinary(_ split: DataSplit) throws {
        guard values(of: split) == .intensities else { return }
        throw StorageError(file: path, object: "/" + split.rawValue,
                           problem: "holds intensities 0–255 for dynamic binarization (binarization = \"dynamic\"), not binary images; "
                               + "training draws a fresh binary image from them every epoch",
                           fix: "for fixed binary images use /valid or /test, or prepare the data with --binarize auto or bernoulli",
                           kind: .badData)
    }

    /// Reads rows of a split (all by default) into a new buffer of rows × width Float32s; keep
    /// the buffer alive while using matrix views of it.
    public func readAll(_ split: DataSplit, rows: Range<Int>? = nil) throws -> FloatBuffer {
        let (n, width) = try shape(of: split)
        let r = rows ?? 0..<n
        let buffer = FloatBuffer(count: r.count * width)
        try readRows(split, rows: r, into: buffer.matrix(rows: r.count, cols: width))
        return buffer
    }

    public func stringAttribute(_ name: String) -> String? { try? file.stringAttribute(name) }
    public func intAttribute(_ name: String) -> Int? { (try? file.scalarInt64Attribute(name)).map { Int($0) } }

    /// The image shape a dataset file records (`image_height` × `image_width`), read from its
    /// attributes alone: nil when the file or either attribute is missing or unreadable.
    public static func recordedImageShape(at path: String) -> ImageShape? {
        guard let f = try? HDF5File.open(path) else { return nil }
        defer { try? f.close() }
        guard let h = try? f.scalarInt64Attribute("image_height"), let w = try? f.scalarInt64Attribute("image_width") else { return nil }
        return ImageShape(height: Int(h), width: Int(w))
    }
}

/// Writes a dataset file in the layout above, atomically (temp file + rename).
public enum BinaryDatasetWriter {
    public struct Split {
        public let name: DataSplit
        public let rows: Int
        public let width: Int
        public let values: [UInt8]
        public init(name: DataSplit, rows: Int, width: Int, values: [UInt8]) {
            precondition(values.count == rows * width)
            self.name = name
            self.rows = rows
            self.width = width
            self.values = values
        }
    }

    /// Rows per chunk: each chunk carries a Fletcher32 checksum, verified whenever it is read. A
    /// chunk is also the unit of every read, so 1000 rows (784 KB at 784 pixels) keeps a
    /// chunk-wise reader's buffer small while each read is large enough to be efficient.
    public static let chunkRows = 1000

    /// Rows per chunk for rows of `width` bytes: `chunkRows`, fewer for rows wider than 8 KiB
    /// so that a chunk (and every buffer that holds one) stays within 8 MiB; a 4096×4096 image
    /// would otherwise make 16 GB chunks, beyond HDF5's 4 GiB limit.
    public static func chunkRows(width: Int) -> Int { max(1, min(chunkRows, (8 << 20) / max(width, 1))) }

    public static func write(to path: String, splits: [Split], imageHeight: Int, imageWidth: Int, source: String,
                             extraIntAttributes: [String: Int64] = [:]) throws {
        try AtomicFile.write(to: path) { tmp in
            let f = try HDF5File.create(tmp)
            for s in splits {
                try s.values.withUnsafeBufferPointer {
                    try f.writeUInt8("/" + s.name.rawValue, $0, shape: [s.rows, s.width], checksummedChunkRows: chunkRows(width: s.width))
                }
            }
            try f.setAttribute("image_height", Int64(imageHeight))
            try f.setAttribute("image_width", Int64(imageWidth))
            try f.setAttribute("source", source)
            for (k, v) in extraIntAttributes.sorted(by: { $0.key < $1.key }) { try f.setAttribute(k, v) }
            try f.close()
        }
    }
}
