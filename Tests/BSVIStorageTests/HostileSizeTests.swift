@testable import BSVIStorage
import BSVI
import DataFixtures
import Foundation
import Testing

/// Headers, attributes and flags whose sizes are hostile: before the fix each of these trapped
/// on an overflowing multiplication (SIGILL) or aborted on a header-sized allocation (SIGABRT),
/// killing this test process; now each is a StorageError naming the file and the field.
@Suite("Hostile sizes in headers, attributes and flags")
struct HostileSizeTests {
    /// An IDX header with arbitrary (unchecked) sizes, followed by `data` bytes.
    func idxHeader(_ dims: [UInt32], data: Int = 0) -> [UInt8] {
        var bytes: [UInt8] = [0, 0, 0x08, UInt8(dims.count)]
        for d in dims { withUnsafeBytes(of: d.bigEndian) { bytes += $0 } }
        return bytes + [UInt8](repeating: 0, count: data)
    }

    @Test("IDX and .npy headers whose row width overflows Int are refused, naming the file and the shape")
    func overflowingRowWidth() throws {
        let dir = try makeScratchFolder("hostile-width")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try DataFixtures.write(dir + "/huge3.idx3-ubyte", idxHeader([1, 0xffff_ffff, 0xffff_ffff], data: 16))
        var e = importError(dir) {
            $0.train = dir + "/huge3.idx3-ubyte"
            $0.test = dir + "/huge3.idx3-ubyte"
            $0.validFromTrain = 1
        }
        expectError(e, .badData, mentions: [dir + "/huge3.idx3-ubyte", "4294967295, 4294967295"])

        // An empty value list: the header alone claims (1, 2^62, 4).
        try DataFixtures.write(dir + "/huge.npy", DataFixtures.npy([], shape: [1, 1 << 62, 4], type: .uint8) + [0, 0, 0, 0])
        e = importError(dir) {
            $0.train = dir + "/huge.npy"
            $0.test = dir + "/huge.npy"
            $0.validFromTrain = 1
        }
        expectError(e, .badData, mentions: [dir + "/huge.npy", "4611686018427387904"])

        // The HDF5 importer's shapes go through the same function (h5py can declare this shape
        // with small chunks, which this module cannot write).
        #expect(throws: StorageError.self) { try rowLayout(of: [2, 1 << 32, 1 << 31], at: InputLocation(file: "x.h5", object: "/x")) }
        #expect(throws: StorageError.self) { try rowLayout(of: [2, -4, 4], at: InputLocation(file: "x.h5", object: "/x")) }
    }

    @Test("a 24-byte IDX file declaring 2^32-1 values a row gets the 'ends early' message, not a 34 GB allocation")
    func headerLargerThanTheFile() throws {
        let dir = try makeScratchFolder("hostile-short")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try DataFixtures.write(dir + "/nd.idx2-ubyte", idxHeader([1, 0xffff_ffff], data: 12))
        var e = importError(dir) {
            $0.train = dir + "/nd.idx2-ubyte"
            $0.test = dir + "/nd.idx2-ubyte"
            $0.validFromTrain = 1
        }
        expectError(e, .badData, mentions: [dir + "/nd.idx2-ubyte", "ends early", "4294967295"])

        // Gzipped, the size is unknown until read: the row-width limit bounds the buffer instead.
        try DataFixtures.writeGzip(dir + "/nd.idx2-ubyte.gz", idxHeader([1, 0xffff_ffff], data: 12))
        e = importError(dir) {
            $0.train = dir + "/nd.idx2-ubyte.gz"
            $0.test = dir + "/nd.idx2-ubyte.gz"
            $0.validFromTrain = 1
        }
        expectError(e, .badData, mentions: [dir + "/nd.idx2-ubyte.gz", "\(SizeLimits.maxRowWidth)"])

        // A .npy whose header promises more rows than its data holds, likewise before reading.
        try DataFixtures.write(dir + "/rows.npy", DataFixtures.npy([0, 1, 0, 1], shape: [1 << 40, 4], type: .float32))
        e = importError(dir) {
            $0.train = dir + "/rows.npy"
            $0.test = dir + "/rows.npy"
            $0.validFromTrain = 1
        }
        expectError(e, .badData, mentions: [dir + "/rows.npy", "ends early", "1099511627776"])
    }

    @Test("--image-shape with sides whose product overflows is refused as a usage error")
    func absurdImageShape() throws {
        #expect(ImageShape(parsing: "4294967296x4294967296") == nil)
        #expect(ImageShape(parsing: "4097x4096") == nil)
        #expect(ImageShape(parsing: "4096x4096") == ImageShape(height: 4096, width: 4096))
        let dir = try makeScratchFolder("hostile-shape")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try DataFixtures.write(dir + "/g.npy", DataFixtures.npy([0, 1, 0, 1, 1, 0, 1, 0], shape: [2, 4], type: .uint8))
        let e = importError(dir) {
            $0.train = dir + "/g.npy"
            $0.valid = dir + "/g.npy"
            $0.test = dir + "/g.npy"
            $0.imageShape = ImageShape(height: 1 << 32, width: 1 << 32)  // what the flag parser no longer builds
        }
        expectError(e, .usage, mentions: ["--image-shape", "4294967296x4294967296"])
    }

    /// A dataset file written through the plain HDF5 API, with `edit` adding the hostile part.
    func writeDataset(_ path: String, splits: [DataSplit] = DataSplit.allCases, edit: (HDF5File) throws -> Void = { _ in }) throws {
        let f = try HDF5File.create(path)
        let row = [UInt8](repeating: 1, count: 16)
        for s in splits { try row.withUnsafeBufferPointer { try f.writeUInt8("/" + s.rawValue, $0, shape: [1, 16]) } }
        try edit(f)
        try f.close()
    }

    @Test("inspect: image attributes that overflow or are not positive are warnings, a missing /train and huge empty splits problems; none a crash")
    func inspectorAttributesAndSplits() throws {
        let dir = try makeScratchFolder("hostile-inspect")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeDataset(dir + "/attr.h5") { f in
            try f.setAttribute("image_height", Int64(1) << 62)
            try f.setAttribute("image_width", Int64(4))
        }
        // Training does not read the image shape: a warning (sample ignores it), not a problem.
        var r = try DatasetInspector.inspect(dir + "/attr.h5")
        #expect(r.problems.isEmpty && r.warnings.count == 1 && r.warnings[0].contains("4611686018427387904×4"), "\(r.warnings)")

        try writeDataset(dir + "/neg.h5") { f in
            try f.setAttribute("image_height", Int64(-4))
            try f.setAttribute("image_width", Int64(-4))
        }
        r = try DatasetInspector.inspect(dir + "/neg.h5")
        #expect(r.problems.isEmpty && r.warnings.count == 1 && r.warnings[0].contains("-4×-4") && r.warnings[0].contains("positive"), "\(r.warnings)")

        // Any split makes it a dataset: the missing /train is a problem of the dataset.
        try writeDataset(dir + "/notrain.h5", splits: [.valid, .test])
        #expect(try DatasetInspector.isDataset(dir + "/notrain.h5"))
        #expect(try DatasetInspector.inspect(dir + "/notrain.h5").problems == ["/train is missing"])

        // 2^20 rows of 2^30 pixels, no chunk written: a 2 KB file that asked for a terabyte.
        try writeDataset(dir + "/wide.h5", splits: [.train, .valid]) { f in
            try f.createUInt8Dataset("/test", rows: 1 << 20, width: 1 << 30, chunkRows: 1)
        }
        r = try DatasetInspector.inspect(dir + "/wide.h5")
        #expect(r.problems.count == 1 && r.problems[0].contains("/test") && r.problems[0].contains("\(SizeLimits.maxRowWidth)"), "\(r.problems)")
        // The trainer's reader refuses it too.
        let e = #expect(throws: StorageError.self) { try BinaryDataset(path: dir + "/wide.h5").shape(of: .test) }
        #expect(e?.file == dir + "/wide.h5" && e?.object == "/test")

        // Declared but never written: listed rather than read as zeros (or for days).
        try writeDataset(dir + "/unwritten.h5", splits: [.train, .valid]) { f in
            try f.createUInt8Dataset("/test", rows: 1 << 40, width: 16, chunkRows: 1000)
        }
        r = try DatasetInspector.inspect(dir + "/unwritten.h5")
        #expect(r.problems.count == 1 && r.problems[0].contains("never"), "\(r.problems)")
        // The trainer's reader refuses to read it as zeros, and only that split: the written
        // ones stay readable.
        let unwritten = try BinaryDataset(path: dir + "/unwritten.h5")
        let refusal = #expect(throws: StorageError.self) { try unwritten.shape(of: .test) }
        #expect(refusal?.file == dir + "/unwritten.h5" && refusal?.object == "/test" && refusal?.problem.contains("never") == true,
                "\(String(describing: refusal))")
        #expect(try unwritten.shape(of: .train).rows > 0)
    }

    @Test("a model-only checkpoint whose attributes imply 40 GB of parameters is refused from its dataset shapes, before allocating")
    func checkpointAttributes() throws {
        let dir = try makeScratchFolder("hostile-ckpt")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let good = sampleCheckpoint(withTraining: false, piCount: 0, history: 0)
        func edited(_ name: String, _ edit: (HDF5File) throws -> Void) throws -> String {
            let path = dir + "/" + name
            try CheckpointFile.write(good, to: path)
            let f = try HDF5File.open(path, writable: true)
            try edit(f)
            try f.close()
            return path
        }
        var path = try edited("big.h5") { f in
            try f.setAttribute("input_dim", on: "/model", Int64(100_000))
            try f.setAttribute("hidden_dims", on: "/model", [Int64(100_000), 100_000])
        }
        var e = #expect(throws: StorageError.self) { try CheckpointFile.read(path) }
        #expect(e?.file == path && e?.object == "/model/encoder/dense_0/kernel" && e?.problem.contains("[100000, 100000]") == true,
                "\(String(describing: e))")

        // Widths whose products overflowed VAEModel's layout arithmetic.
        path = try edited("overflow.h5") { f in
            try f.setAttribute("input_dim", on: "/model", Int64(1) << 33)
            try f.setAttribute("hidden_dims", on: "/model", [Int64(1) << 33])
        }
        e = #expect(throws: StorageError.self) { try CheckpointFile.read(path) }
        #expect(e?.file == path && e?.object == "/model" && e?.problem.contains("8589934592") == true, "\(String(describing: e))")

        // Only declared, never written: a whole-dataset read (as of a checkpoint's tensors,
        // moments and metrics) refuses to allocate 8 TB of int64s for it.
        path = dir + "/unwritten.h5"
        let f = try HDF5File.create(path)
        try f.createUInt8Dataset("/x", rows: 1 << 20, width: 1 << 20, chunkRows: 1)
        try f.close()
        e = #expect(throws: StorageError.self) { try HDF5File.open(path).readInt64s("/x") }
        #expect(e?.object == "/x" && e?.problem.contains("never") == true, "\(String(describing: e))")
    }
}
