/// The first of the two passes over an input: reads every row to count them, check that
/// every value lies in the range the element type declares, and find out whether the input is
/// already 0/1 — all before an output file is created.
struct InputSurvey {
    let spec: InputSpec
    let rows: Int
    let width: Int
    let imageShape: ImageShape?
    let range: ValueRange
    let elementType: String
    /// Every value is 0 or 1.
    let isBinary: Bool
    /// What the user should know about an input that passed (an HDF5 dataset's trailing rows of 0).
    let warnings: [String]

    /// Rows read per chunk: at most 1000 and at most ~8 MB of Float64s, whatever the row width
    /// (the output's chunks, `BinaryDatasetWriter.chunkRows(width:)`, hold ~8 MiB of bytes).
    static func chunkRows(width: Int) -> Int { max(1, min(1000, 1_000_000 / max(width, 1))) }

    init(_ spec: InputSpec, progress: ImportProgress) throws {
        self.spec = spec
        let reader = try spec.open()
        let width = reader.width
        let chunk = Self.chunkRows(width: width)
        var buffer = [Double](repeating: 0, count: chunk * width)
        var rows = 0
        var binary = true
        var lastNonZeroRow = -1
        let maximum = reader.range.maximum
        while true {
            let n = try buffer.withUnsafeMutableBufferPointer { try reader.read(upTo: chunk, into: $0.baseAddress!) }
            if n == 0 { break }
            for i in 0..<(n * width) {
                let v = buffer[i]
                if v == 0 || v == 1 { continue }
                binary = false
                guard v >= 0 && v <= maximum else {
                    throw Self.outOfRange(v, at: reader.describeRow(rows + i / width), column: i % width, reader: reader)
                }
            }
            // From the chunk's end: it stops at the first value that is not 0, at once in most data.
            if let last = buffer[..<(n * width)].lastIndex(where: { $0 != 0 }) { lastNonZeroRow = rows + last / width }
            rows += n
            progress.update("checking \(spec): \(rows)\(reader.declaredRows.map { "/\($0)" } ?? "") rows")
        }
        guard rows > 0 else {
            throw reader.location.error("holds no rows (an empty split)", fix: "every split needs at least one example")
        }
        self.rows = rows
        self.width = width
        imageShape = reader.imageShape
        range = reader.range
        elementType = reader.elementType
        isBinary = binary
        warnings = spec.format == .hdf5 ? Self.trailingZeroRows(rows: rows, lastNonZeroRow: lastNonZeroRow, at: reader.location) : []
    }

    /// A warning when an HDF5 input's last rows are all 0, HDF5's fill value: rows a writer never
    /// reached read as 0 once the dataset's storage exists (contiguous storage is allocated
    /// whole by the first write), and the file cannot tell them from rows written as 0. Two rows
    /// and 1 % of the input at least, so that a blank image or two at the end pass unremarked.
    static func trailingZeroRows(rows: Int, lastNonZeroRow: Int, at location: InputLocation) -> [String] {
        let written = lastNonZeroRow + 1
        let trailing = rows - written
        guard trailing >= 2 && trailing * 100 >= rows else { return [] }
        let name = location.object ?? "/"
        let what = written == 0 ? "all \(rows) rows are 0" : "its last \(trailing) of \(rows) rows (rows \(written)–\(rows - 1), counted from 0) are all 0"
        let fix = written == 0 ? "check that the program that wrote it finished"
            : "if the program that wrote it stopped early, import only the first \(written) rows: save f['\(name)'][:\(written)] with h5py as a dataset of its own"
        return ["\(location): \(what), the value HDF5 returns for rows never written (\(fix))"]
    }

    /// Whether `values` fit what the survey found: in range, and 0/1 if the input was.
    func admits(_ values: ArraySlice<Double>) -> Bool {
        values.allSatisfy { isBinary ? ($0 == 0 || $0 == 1) : ($0 >= 0 && $0 <= range.maximum) }
    }

    static func outOfRange(_ v: Double, at row: String, column: Int, reader: RowReader) -> StorageError {
        let what = v.isNaN ? "is NaN" : "holds \(v), outside \(reader.range.description)"
        let fix: String
        switch (reader.range, reader.elementType) {
        case (.byte, _): fix = "integer pixels must be intensities 0–255"
        case (.unit, "text"): fix = "an .amat file holds 0/1 (or 0–1) values"
        default: fix = v.isNaN ? "replace non-finite values before saving"
            : "\(reader.elementType) pixels must be intensities in [0, 1]: divide 0–255 data by 255, or save it as uint8"
        }
        // Text files are read by line and value (from 1), arrays by index (from 0, as numpy does).
        let position = reader.elementType == "text" ? "\(row), value \(column + 1)" : "\(row), column \(column) (both counted from 0)"
        return reader.location.error("\(position) \(what) (\(reader.elementType) data)", fix: fix)
    }
}
