/// Writes a dataset file a chunk of rows at a time, in the layout `BinaryDatasetWriter` writes
/// (uint8 [N, D] per split, chunks of `BinaryDatasetWriter.chunkRows(width:)` rows with Fletcher32), so
/// that an import never holds more than a chunk per split in memory. Rows are buffered until a
/// whole HDF5 chunk is complete: each write then covers whole chunks, which the checksum filter
/// encodes once.
final class DatasetFileWriter {
    let file: HDF5File

    init(path: String) throws {
        file = try HDF5File.create(path)
    }

    func split(_ name: DataSplit, rows: Int, width: Int) throws -> SplitWriter {
        try SplitWriter(file: file, split: name, rows: rows, width: width)
    }

    func close() throws { try file.close() }
}

final class SplitWriter {
    let split: DataSplit
    let rows: Int
    let width: Int
    private let file: HDF5File
    private let name: String
    private var buffer: [UInt8]
    private var buffered = 0
    private(set) var written = 0

    fileprivate init(file: HDF5File, split: DataSplit, rows: Int, width: Int) throws {
        self.file = file
        self.split = split
        name = "/" + split.rawValue
        self.rows = rows
        self.width = width
        let chunkRows = BinaryDatasetWriter.chunkRows(width: width)
        buffer = [UInt8](repeating: 0, count: min(chunkRows, rows) * width)
        try file.createUInt8Dataset(name, rows: rows, width: width, chunkRows: chunkRows)
    }

    /// The index (within the split) of the next row appended.
    var nextRow: Int { written + buffered }

    /// Appends one row, which `fill` writes into the buffer.
    func appendRow(_ fill: (UnsafeMutablePointer<UInt8>) -> Void) throws {
        precondition(nextRow < rows, "more rows than the split was created with")
        buffer.withUnsafeMutableBufferPointer { fill($0.baseAddress! + buffered * width) }
        buffered += 1
        if buffered * width == buffer.count { try flush() }
    }

    /// Writes what is buffered; after the last row the split is complete.
    func finish() throws {
        try flush()
        precondition(written == rows, "split \(name) got \(written) of its \(rows) rows")
    }

    private func flush() throws {
        guard buffered > 0 else { return }
        try buffer.withUnsafeBufferPointer {
            try file.writeUInt8Rows(name, rows: written..<(written + buffered), width: width, from: $0.baseAddress!)
        }
        written += buffered
        buffered = 0
    }
}
