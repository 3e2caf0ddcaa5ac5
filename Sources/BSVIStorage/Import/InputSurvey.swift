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
