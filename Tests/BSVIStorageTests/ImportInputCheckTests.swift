@testable import BSVIStorage
import CHDF5Shims
import DataFixtures
import Foundation
import Testing

/// What prepare-data refuses before it writes anything, found by a review with hostile inputs:
/// each of these once imported wrong data with exit status 0, crashed, or ran for days.
@Suite("Import: inputs and outputs checked before the conversion")
struct ImportInputCheckTests {
    static let width = 20
    static func uint8(_ rows: Int, seed: UInt64) -> [UInt8] { DataFixtures.pseudoRandomBytes(rows * width, seed: seed) }

    /// An N×4×5 uint8 .npy of `rows` random intensities.
    static func writeImages(_ path: String, rows: Int, seed: UInt64, shape: [Int] = [4, 5]) throws {
        try DataFixtures.write(path, DataFixtures.npy(uint8(rows, seed: seed).map(Double.init), shape: [rows] + shape, type: .uint8))
    }

    @Test("an HDF5 input declared but never written is refused, not read as blank images (or for days, at 2^40 rows)")
    func unwrittenHDF5Dataset() throws {
        let dir = try makeScratchFolder("import-unwritten")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let f = try HDF5File.create(dir + "/in.h5")
        try f.createUInt8Dataset("/train", rows: 300, width: Self.width, chunkRows: 100)
        try f.createUInt8Dataset("/huge", rows: 1 << 40, width: Self.width, chunkRows: 1000)
        try Self.uint8(5, seed: 1).withUnsafeBufferPointer { try f.writeUInt8("/test", $0, shape: [5, Self.width]) }
        try f.close()
        for key in ["/train", "/huge"] {
            let error = importError(dir) {
                $0.train = dir + "/in.h5:" + key
                $0.test = dir + "/in.h5:/test"
                $0.validFromTrain = 10
                $0.imageShape = ImageShape(height: 4, width: 5)
            }
            expectError(error, .badData, mentions: ["in.h5", key, "never written", "not for every chunk"])
        }
    }

    @Test("an HDF5 input whose last rows are all 0 (as rows never written inside allocated storage read) is imported with a warning")
    func trailingRowsOfZeros() throws {
        let dir = try makeScratchFolder("import-trailing-zeros")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let f = try HDF5File.create(dir + "/in.h5")
        // One chunk of 300 rows, of which a writer that stopped early wrote 5: the chunk exists,
        // so the dataset counts as stored, and rows 5–299 read as 0.
        try f.createUInt8Dataset("/train", rows: 300, width: Self.width, chunkRows: 300)
        // Contiguous, as h5py's create_dataset makes it without chunks: the first write allocates it all.
        try f.write("/contiguous", shape: [300, Self.width], fileType: bsvi_h5t_std_u8le(), memType: bsvi_h5t_native_uint8(), data: nil,
                    checksummed: false)
        for key in ["/train", "/contiguous"] {
            try Self.uint8(5, seed: 3).withUnsafeBufferPointer { try f.writeUInt8Rows(key, rows: 0..<5, width: Self.width, from: $0.baseAddress!) }
        }
        // Blank images at the end of a whole dataset: one of 300 is no sign of a writer that stopped.
        var oneBlank = Self.uint8(300, seed: 4)
        for i in (299 * Self.width)..<(300 * Self.width) { oneBlank[i] = 0 }
        try oneBlank.withUnsafeBufferPointer { try f.writeUInt8("/whole", $0, shape: [300, Self.width]) }
        try Self.uint8(5, seed: 1).withUnsafeBufferPointer { try f.writeUInt8("/test", $0, shape: [5, Self.width]) }
        try f.close()
        func importing(_ key: String) throws -> ImportSummary {
            try runImport(dir) {
                $0.train = dir + "/in.h5:" + key
                $0.test = dir + "/in.h5:/test"
                $0.validFromTrain = 10
                $0.imageShape = ImageShape(height: 4, width: 5)
            }
        }
        for key in ["/train", "/contiguous"] {
            let warned = try importing(key)
            #expect(warned.warnings.count == 1, "\(warned.warnings)")
            for m in ["in.h5:\(key)", "last 295 of 300 rows", "rows 5–299", "are all 0", "never written", "stopped early", "f['\(key)'][:5]"] {
                #expect(warned.warnings.first?.contains(m) == true, "the warning should mention '\(m)': \(warned.warnings)")
            }
        }
        #expect(try importing("/whole").warnings.isEmpty)
    }

    @Test("a file's only array is not taken for a split it is named against; a split found twice is refused, named twice warned")
    func splitsFromOneArray() throws {
        let dir = try makeScratchFolder("import-one-array")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let images = DataFixtures.npy(Self.uint8(30, seed: 2).map(Double.init), shape: [30, 4, 5], type: .uint8)
        try DataFixtures.writeNPZ(dir + "/only_test.npz", arrays: [("x_test", images)], compressed: false)
        try DataFixtures.writeNPZ(dir + "/only_images.npz", arrays: [("images", images)], compressed: false)

        // Before: x_test became /train, and /test came from the same array.
        let named = importError(dir) {
            $0.train = dir + "/only_test.npz"
            $0.validFromTrain = 5
        }
        expectError(named, .missingInput, mentions: ["only_test.npz", "x_train", "it holds: x_test"])
        let found = importError(dir) {
            $0.train = dir + "/only_test.npz:x_test"
            $0.validFromTrain = 5
        }
        expectError(found, .usage, mentions: ["only_test.npz:x_test", "both /train and /test", "--test"])
        // An array of another name is still the file's one array.
        let summary = try runImport(dir) {
            $0.train = dir + "/only_images.npz"
            $0.test = dir + "/only_images.npz:images"
            $0.validFromTrain = 5
        }
        #expect(summary.warnings.count == 1)
        #expect(summary.warnings.first?.contains("both /train and /test") == true)

        try Self.writeImages(dir + "/a.npy", rows: 12, seed: 3)
        try Self.writeImages(dir + "/b.npy", rows: 6, seed: 4)
        let separate = try runImport(dir) {
            $0.train = dir + "/a.npy"
            $0.test = dir + "/b.npy"
            $0.validFromTrain = 2
        }
        #expect(separate.warnings.isEmpty)
    }

    @Test("--valid-from-train N takes N training rows even when --source holds a validation file")
    func validFromTrainWinsOverSourceFile() throws {
        let dir = try makeScratchFolder("import-valid-from-train")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/src", withIntermediateDirectories: true)
        try Self.writeImages(dir + "/src/train.npy", rows: 30, seed: 5)
        try Self.writeImages(dir + "/src/valid.npy", rows: 7, seed: 6)
        try Self.writeImages(dir + "/src/test.npy", rows: 9, seed: 7)
        let summary = try runImport(dir) {
            $0.format = .npy
            $0.sourceFolder = dir + "/src"
            $0.validFromTrain = 5
        }
        #expect(summary.rows == [.train: 25, .valid: 5, .test: 9])
        let withoutFlag = try runImport(dir) {
            $0.format = .npy
            $0.sourceFolder = dir + "/src"
        }
        #expect(withoutFlag.rows == [.train: 30, .valid: 7, .test: 9])
    }

    @Test("FILE:KEY names a file in --source, as FILE alone does")
    func keyedNameInSource() throws {
        let dir = try makeScratchFolder("import-key-source")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/src", withIntermediateDirectories: true)
        let f = try HDF5File.create(dir + "/src/images.dat")
        let train = Self.uint8(30, seed: 8), test = Self.uint8(5, seed: 9)
        try train.withUnsafeBufferPointer { try f.writeUInt8("/x", $0, shape: [30, 4, 5]) }
        try test.withUnsafeBufferPointer { try f.writeUInt8("/t", $0, shape: [5, 4, 5]) }
        try f.close()
        let summary = try runImport(dir) {
            $0.format = .hdf5
            $0.sourceFolder = dir + "/src"
            $0.train = "images.dat:/x"
            $0.test = "images.dat:/t"
            $0.validFromTrain = 3
            $0.binarization = .dynamic
        }
        #expect(summary.rows == [.train: 27, .valid: 3, .test: 5])
        #expect(try stored(dir, .train) == Array(train[0..<(27 * Self.width)]))
    }

    @Test("splits whose images have other sides (4×5 against 5×4) are refused, though their rows are as wide")
    func imageShapesMustAgree() throws {
        let dir = try makeScratchFolder("import-shapes")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.writeImages(dir + "/a.npy", rows: 12, seed: 10, shape: [4, 5])
        try Self.writeImages(dir + "/b.npy", rows: 6, seed: 11, shape: [5, 4])
        let error = importError(dir) {
            $0.train = dir + "/a.npy"
            $0.test = dir + "/b.npy"
            $0.validFromTrain = 2
        }
        expectError(error, .badData, mentions: ["b.npy", "5x4", "4x5"])
    }

    @Test("an input rewritten between the survey and the conversion is refused (a value out of range used to trap)")
    func inputChangedBetweenPasses() throws {
        let dir = try makeScratchFolder("import-changed")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/f.npy"
        let values = (0..<(4 * Self.width)).map { Double($0 % 7) / 7 }
        try DataFixtures.write(path, DataFixtures.npy(values, shape: [4, Self.width], type: .float32))
        let survey = try InputSurvey(InputSpec(format: .npy, file: path), progress: .silent)
        var changed = values
        changed[33] = 2  // the same size, one value outside [0, 1]
        try DataFixtures.write(path, DataFixtures.npy(changed, shape: [4, Self.width], type: .float32))

        for stored in [StoredBinarization.dynamic(seed: 1), .bernoulli(seed: 1)] {
            let writer = try DatasetFileWriter(path: dir + "/out-\(stored.attribute).h5")
            let split = try writer.split(.train, rows: 4, width: Self.width)
            #expect {
                try DatasetImporter.convert(survey, into: [split], PixelConverter(stored: stored), .silent)
            } throws: { error in
                (error as? StorageError).map { $0.kind == .badData && $0.problem.contains("changed while it was being converted") } ?? false
            }
            try writer.close()
        }
        // Unchanged, the same survey converts.
        try DataFixtures.write(path, DataFixtures.npy(values, shape: [4, Self.width], type: .float32))
        let writer = try DatasetFileWriter(path: dir + "/out.h5")
        try DatasetImporter.convert(survey, into: [writer.split(.train, rows: 4, width: Self.width)],
                                    PixelConverter(stored: .dynamic(seed: 1)), .silent)
        try writer.close()
    }

    @Test("an .amat line of more values than a row may hold is refused as it is read")
    func amatRowTooWide() throws {
        let dir = try makeScratchFolder("import-amat-wide")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let line = String(repeating: "0 ", count: SizeLimits.maxRowWidth + 1) + "\n"
        try DataFixtures.writeGzip(dir + "/wide.amat.gz", Array(line.utf8))
        let error = importError(dir) {
            $0.train = dir + "/wide.amat.gz"
            $0.test = dir + "/wide.amat.gz"
            $0.validFromTrain = 1
        }
        expectError(error, .badData, mentions: ["wide.amat.gz", "line 1", "more than \(SizeLimits.maxRowWidth) values"])
    }

    @Test("rows wider than 8 KiB get fewer rows a chunk: a chunk, and the writer's buffer, stay within 8 MiB")
    func wideRowsSmallerChunks() throws {
        #expect(BinaryDatasetWriter.chunkRows(width: 784) == 1000)
        #expect(BinaryDatasetWriter.chunkRows(width: 100 * 200) == (8 << 20) / 20_000)
        #expect(BinaryDatasetWriter.chunkRows(width: SizeLimits.maxRowWidth) == 1)
        let dir = try makeScratchFolder("import-wide-chunks")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let rows = 500, width = 100 * 200
        let pixels = DataFixtures.pseudoRandomBytes(rows * width, seed: 12, below: 2)
        try DataFixtures.write(dir + "/w.npy", DataFixtures.npy(pixels.map(Double.init), shape: [rows, 100, 200], type: .uint8))
        try runImport(dir) {
            $0.train = dir + "/w.npy"
            $0.test = dir + "/w.npy"
            $0.validFromTrain = 10
        }
        let reader = try HDF5RowReader(file: HDF5File.open(dir + "/out.h5"), name: "/train")
        #expect(reader.chunkRows == (8 << 20) / width)
        #expect(try stored(dir, .train) + stored(dir, .valid) == pixels)
    }

    @Test("--output that names no file, a folder, or one of the inputs is refused before any input is read")
    func unusableOutput() throws {
        let dir = try makeScratchFolder("import-output")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.writeImages(dir + "/a.npy", rows: 12, seed: 13)
        let before = try DataFixtures.read(dir + "/a.npy")
        try FileManager.default.createDirectory(atPath: dir + "/folder", withIntermediateDirectories: true)
        for (output, kind, mention) in [("", FailureKind.usage, "names no file"), (dir + "/new/", .usage, "names no file"),
                                        (dir + "/folder", .cannotCreateOutput, "is a folder"),
                                        (dir + "/./a.npy", .usage, "is also an input")] {
            let error = importError(dir) {
                $0.train = dir + "/a.npy"
                $0.test = dir + "/a.npy"
                $0.validFromTrain = 2
                $0.output = output
            }
            expectError(error, kind, mentions: [mention])
        }
        #expect(try DataFixtures.read(dir + "/a.npy") == before)
        #expect(!FileManager.default.fileExists(atPath: dir + "/new"))
    }

    @Test("a folder, a FIFO or an HDF5 group given as an input is named as what it is")
    func inputsThatAreNotFiles() throws {
        let dir = try makeScratchFolder("import-not-files")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.writeImages(dir + "/a.npy", rows: 12, seed: 14)
        try FileManager.default.createDirectory(atPath: dir + "/d.npz", withIntermediateDirectories: true)
        #expect(mkfifo(dir + "/pipe.npy", 0o600) == 0)
        let f = try HDF5File.create(dir + "/g.h5")
        try Self.uint8(10, seed: 15).withUnsafeBufferPointer { try f.writeUInt8("/group/images", $0, shape: [10, 4, 5]) }
        try f.close()
        let cases: [(String, FailureKind, [String])] = [
            (dir + "/d.npz", .missingInput, ["d.npz", "is a folder"]),
            (dir + "/pipe.npy", .missingInput, ["pipe.npy", "not a regular file", "reads every input twice"]),
            (dir + "/g.h5:/group", .badData, ["g.h5", "/group", "is a group", "/group/images"]),
        ]
        // A FIFO found by its conventional name in --source is refused too.
        try FileManager.default.createDirectory(atPath: dir + "/src", withIntermediateDirectories: true)
        #expect(mkfifo(dir + "/src/train.npy", 0o600) == 0)
        try Self.writeImages(dir + "/src/test.npy", rows: 6, seed: 16)
        let found = importError(dir) {
            $0.format = .npy
            $0.sourceFolder = dir + "/src"
            $0.validFromTrain = 2
        }
        expectError(found, .missingInput, mentions: ["src/train.npy", "not a regular file"])
        for (train, kind, mentions) in cases {
            let error = importError(dir) {
                $0.train = train
                $0.test = dir + "/a.npy"
                $0.validFromTrain = 2
            }
            expectError(error, kind, mentions: mentions)
        }
    }
}
