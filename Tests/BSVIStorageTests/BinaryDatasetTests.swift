import BSVIStorage
import Foundation
import Testing

/// Chunk-wise reads of scattered training rows (the per-epoch reads of the global data order).
@Suite("Binary dataset reads")
struct BinaryDatasetTests {
    static let width = 16

    /// Row r holds the bits of r, so every row read back says which row it is.
    static func rowBits(_ rows: Int) -> [UInt8] {
        (0..<rows).flatMap { r in (0..<width).map { UInt8((r >> $0) & 1) } }
    }

    static func rowID(_ bytes: UnsafePointer<UInt8>) -> Int {
        (0..<width).reduce(0) { $0 | Int(bytes[$1]) << $1 }
    }

    /// /train of `rows` rows in checksummed chunks of BinaryDatasetWriter.chunkRows rows.
    static func writeChunked(_ path: String, rows: Int, values: [UInt8]? = nil) throws {
        try BinaryDatasetWriter.write(to: path, splits: [.init(name: .train, rows: rows, width: width, values: values ?? rowBits(rows))],
                                      imageHeight: 4, imageWidth: 4, source: "test")
    }

    static func read(_ dataset: BinaryDataset, _ rows: [Int]) throws -> (ids: [Int], stats: BinaryDataset.ReadStatistics) {
        var out = [UInt8](repeating: 0xff, count: rows.count * width)
        let stats = try out.withUnsafeMutableBufferPointer { try dataset.readRows(.train, ascending: rows, into: $0.baseAddress!) }
        let ids = out.withUnsafeBufferPointer { b in rows.indices.map { rowID(b.baseAddress! + $0 * width) } }
        return (ids, stats)
    }

    @Test("scattered rows come back in order; each chunk holding one of them is read once, the others not at all")
    func scatteredRowsChunkByChunk() throws {
        let dir = try makeScratchFolder("rows")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let chunk = BinaryDatasetWriter.chunkRows
        let n = 2 * chunk + chunk / 2 + 3
        try Self.writeChunked(dir + "/d.h5", rows: n)
        let dataset = try BinaryDataset(path: dir + "/d.h5")
        // Rows in chunks 0 and 2 (the last, partial one), none in chunk 1.
        let rows = [0, 1, 7, chunk - 1] + Array(stride(from: 2 * chunk, to: n, by: 13)) + [n - 1]
        let (ids, stats) = try Self.read(dataset, rows)
        #expect(ids == rows)
        #expect(stats.rows == rows.count && stats.blocks == 2)
        #expect(stats.bytesRead == (chunk + (n - 2 * chunk)) * Self.width)
        // Every row of the split, and none.
        #expect(try Self.read(dataset, Array(0..<n)).ids == Array(0..<n))
        #expect(try Self.read(dataset, []).stats == BinaryDataset.ReadStatistics())
    }

    @Test("a contiguous (unchunked) split is read in blocks of about 1 MiB")
    func contiguousSplit() throws {
        let dir = try makeScratchFolder("contiguous")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let n = 70_000  // 1.1 MB at 16 bytes a row: two blocks of 65,536 rows
        let f = try HDF5File.create(dir + "/d.h5")
        try Self.rowBits(n).withUnsafeBufferPointer { try f.writeUInt8("/train", $0, shape: [n, Self.width]) }
        try f.close()
        let dataset = try BinaryDataset(path: dir + "/d.h5")
        let rows = [3, 65_535, 65_536, 69_999]
        let (ids, stats) = try Self.read(dataset, rows)
        // 16 bits of row id: rows from 65,536 on read back as their low 16 bits.
        #expect(ids == rows.map { $0 & 0xffff })
        #expect(stats.blocks == 2)
    }

    @Test("a value other than 0/1 is reported with its row, by the scattered read that keeps the row and by validateRows")
    func badValueNamesItsRow() throws {
        let dir = try makeScratchFolder("bad")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let n = 2500, badRow = 1234
        var values = Self.rowBits(n)
        values[badRow * Self.width + 5] = 7
        values[(badRow + 10) * Self.width] = 2
        try Self.writeChunked(dir + "/d.h5", rows: n, values: values)
        let dataset = try BinaryDataset(path: dir + "/d.h5")
        #expect(throws: StorageError(file: dir + "/d.h5", object: "/train", problem: "2 values are not 0/1 (first in row \(badRow))",
                                     fix: "binarize the data, e.g. with `bsvi-dist prepare-data`", kind: .badData)) {
            try Self.read(dataset, [5, badRow, badRow + 10, 2000])
        }
        // Rows of the same chunk that are fine read fine: only the rows kept are checked.
        #expect(try Self.read(dataset, [5, badRow - 1, badRow + 1]).ids == [5, badRow - 1, badRow + 1])
        do {
            try dataset.validateRows(.train, rows: 1000..<n)
            Issue.record("expected an error")
        } catch {
            #expect("\(error)".contains("first in row \(badRow)"), "\(error)")
        }
        try dataset.validateRows(.train, rows: 0..<badRow)
        try dataset.validateRows(.train, rows: (badRow + 11)..<n)
    }

    @Test("the rows' digest is the same however the rows are split into parts (ranks), and changes with one bit or two swapped rows")
    func rowsDigest() throws {
        let dir = try makeScratchFolder("digest")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let n = 2500
        let values = Self.rowBits(n)
        try Self.writeChunked(dir + "/d.h5", rows: n, values: values)
        let whole = try BinaryDataset(path: dir + "/d.h5").validateRows(.train, rows: 0..<n)
        for parts in [2, 3, 7] {
            let dataset = try BinaryDataset(path: dir + "/d.h5")
            let sum = try (0..<parts).reduce(UInt64(0)) { $0 &+ (try dataset.validateRows(.train, rows: ShardPlanLike.part(n, parts, $1))) }
            #expect(sum == whole, "\(parts) parts")
        }
        var flipped = values
        flipped[1234 * Self.width + 3] ^= 1
        try Self.writeChunked(dir + "/flipped.h5", rows: n, values: flipped)
        #expect(try BinaryDataset(path: dir + "/flipped.h5").validateRows(.train, rows: 0..<n) != whole)
        var swapped = values
        for c in 0..<Self.width { swapped.swapAt(10 * Self.width + c, 11 * Self.width + c) }
        if swapped != values {
            try Self.writeChunked(dir + "/swapped.h5", rows: n, values: swapped)
            #expect(try BinaryDataset(path: dir + "/swapped.h5").validateRows(.train, rows: 0..<n) != whole)
        }
    }
}

/// Contiguous balanced parts, as the ranks' start-up checks take them.
enum ShardPlanLike {
    static func part(_ count: Int, _ parts: Int, _ index: Int) -> Range<Int> {
        let base = count / parts, extra = count % parts
        let start = index * base + min(index, extra)
        return start..<(start + base + (index < extra ? 1 : 0))
    }
}
