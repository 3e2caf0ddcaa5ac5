import BSVIStorage
import DataFixtures
import Foundation
import Testing

/// `bsvi-dist prepare-data` and `inspect` on datasets, through the release binary: every bad
/// input ends with one message naming the file, the thing and the fix, the exit status of
/// sysexits.h, and no output (nor temp file) left behind; converted files train like the default one.
@Suite("prepare-data and inspect on datasets")
struct PrepareDataTests {
    /// Files every case can use: good 4-pixel inputs in several formats.
    static func writeGoodInputs(_ dir: String) throws {
        let bits = randomBits(40 * 4)
        try DataFixtures.write(dir + "/good.npy", DataFixtures.npy(bits.map(Double.init), shape: [40, 2, 2], type: .uint8))
        try DataFixtures.amat(stride(from: 0, to: bits.count, by: 4).map { bits[$0..<($0 + 4)].map(Double.init) })
            .write(toFile: dir + "/good.amat", atomically: true, encoding: .utf8)
        try DataFixtures.write(dir + "/good-idx3-ubyte", DataFixtures.idx(dims: [40, 2, 2], values: bits))
    }

    static func randomBits(_ count: Int, seed: UInt64 = 1) -> [UInt8] { DataFixtures.pseudoRandomBytes(count, seed: seed, below: 2) }

    /// (name, exit status, what the message must mention): each writes its bad input into the folder
    /// and gives the prepare-data flags (the output is always out.h5 in the folder).
    static let cases: [(String, Int32, [String])] = [
        ("truncated gzip", 65, ["cut-idx3-ubyte.gz", "gzip stream ends early", "download"]),
        ("corrupt gzip", 65, ["crc-idx3-ubyte.gz", "corrupt gzip data"]),
        ("wrong IDX magic", 65, ["magic-idx3-ubyte", "not an IDX file", "0x00000803"]),
        ("truncated zip", 65, ["cut.npz", "not a zip archive", "truncated"]),
        ("corrupt zip member", 65, ["corrupt.npz", "train", "corrupt archive member"]),
        ("truncated npy", 65, ["cut.npy", "ends early", "stops after 39"]),
        ("Fortran-order npy", 65, ["fortran.npy", "Fortran", "ascontiguousarray"]),
        ("object npy", 65, ["object.npy", "object array"]),
        ("amat lines of different widths", 65, ["ragged.amat", "line 3 has 3 values; line 1 has 4"]),
        ("splits of different widths", 65, ["wide.npy", "rows have 6 values", "good.npy", "have 4"]),
        ("values outside the declared range", 65, ["range.npy", "row 2, column 2", "1.5", "outside [0, 1]", "divide"]),
        ("an empty split", 65, ["empty.npy", "no rows", "empty split"]),
        ("--valid-from-train larger than the training set", 64, ["good.npy", "has 40 rows", "--valid-from-train 50"]),
        ("a missing input", 66, ["nowhere.amat", "not found"]),
        // --source used to be listed with errors ignored: each of these said only "no training input named".
        ("a --source folder that does not exist", 66, ["no-such-folder", "folder not found", "--source"]),
        ("a --source that is a file", 66, ["good.amat", "is not a folder", "--source"]),
        ("a --source folder without a training file", 66, ["src", "no amat training file", "'_train.amat' or '-train.amat'", "--train FILE"]),
        ("a --source folder without a test file", 66, ["no test split", "in --source", "'_test.amat' or '-test.amat'", "--test FILE"]),
        ("a name that does not say the format", 64, ["data.bin", "--format"]),
        ("an output folder that cannot be created", 73, ["a-file/out.h5", "cannot create the folder"]),
    ]

    func setUp(_ name: String, in dir: String) throws -> [String] {
        let good = ["--test", dir + "/good.npy", "--valid-from-train", "4"]
        func write(_ file: String, _ bytes: [UInt8]) throws { try DataFixtures.write(dir + "/" + file, bytes) }
        let idx = DataFixtures.idx(dims: [40, 2, 2], values: Self.randomBits(160))
        try DataFixtures.writeGzip(dir + "/whole.gz", idx)
        let gz = try DataFixtures.read(dir + "/whole.gz")
        switch name {
        case "truncated gzip":
            try write("cut-idx3-ubyte.gz", Array(gz.prefix(gz.count / 2)))
            return ["--train", dir + "/cut-idx3-ubyte.gz"] + good
        case "corrupt gzip":
            var bytes = gz
            bytes[gz.count - 6] ^= 0xff  // the CRC-32 of the data
            try write("crc-idx3-ubyte.gz", bytes)
            return ["--train", dir + "/crc-idx3-ubyte.gz"] + good
        case "wrong IDX magic":
            try write("magic-idx3-ubyte", [0x1f, 0x8c] + idx.dropFirst(2))
            return ["--train", dir + "/magic-idx3-ubyte"] + good
        case "truncated zip", "corrupt zip member":
            let npy = DataFixtures.npy(Self.randomBits(160).map(Double.init), shape: [40, 4], type: .uint8)
            try DataFixtures.writeNPZ(dir + "/whole.npz", arrays: [("train", npy), ("test", npy)], compressed: true)
            var bytes = try DataFixtures.read(dir + "/whole.npz")
            if name == "truncated zip" {
                try write("cut.npz", Array(bytes.dropLast(30)))
                return ["--train", dir + "/cut.npz", "--valid-from-train", "4"]
            }
            for i in 39..<47 { bytes[i] ^= 0x5a }  // deflated data of train.npy, after its local header
            try write("corrupt.npz", bytes)
            return ["--train", dir + "/corrupt.npz", "--valid-from-train", "4"]
        case "truncated npy":
            try write("cut.npy", Array(DataFixtures.npy(Self.randomBits(160).map(Double.init), shape: [40, 4], type: .float32).dropLast(1)))
            return ["--train", dir + "/cut.npy"] + good
        case "Fortran-order npy":
            try write("fortran.npy", DataFixtures.npy(Self.randomBits(160).map(Double.init), shape: [40, 4], type: .uint8, fortranOrder: true))
            return ["--train", dir + "/fortran.npy"] + good
        case "object npy":
            try write("object.npy", DataFixtures.npy([0], shape: [1, 1], type: .object))
            return ["--train", dir + "/object.npy"] + good
        case "amat lines of different widths":
            try "0 1 0 1\n1 1 0 0\n0 1 1\n".write(toFile: dir + "/ragged.amat", atomically: true, encoding: .utf8)
            return ["--train", dir + "/ragged.amat", "--test", dir + "/good.amat", "--valid-from-train", "1"]
        case "splits of different widths":
            try write("wide.npy", DataFixtures.npy(Self.randomBits(60).map(Double.init), shape: [10, 6], type: .uint8))
            return ["--train", dir + "/good.npy", "--test", dir + "/wide.npy", "--valid-from-train", "4"]
        case "values outside the declared range":
            var values = Self.randomBits(160).map(Double.init)
            values[2 * 4 + 2] = 1.5
            try write("range.npy", DataFixtures.npy(values, shape: [40, 4], type: .float32))
            return ["--train", dir + "/range.npy"] + good
        case "an empty split":
            try write("empty.npy", DataFixtures.npy([], shape: [0, 4], type: .uint8))
            return ["--train", dir + "/good.npy", "--test", dir + "/empty.npy", "--valid-from-train", "4"]
        case "--valid-from-train larger than the training set":
            return ["--train", dir + "/good.npy", "--test", dir + "/good.npy", "--valid-from-train", "50"]
        case "a --source folder that does not exist":
            return ["--format", "amat", "--source", dir + "/no-such-folder", "--valid-from-train", "4"]
        case "a --source that is a file":
            return ["--format", "amat", "--source", dir + "/good.amat", "--valid-from-train", "4"]
        case "a --source folder without a training file", "a --source folder without a test file":
            try FileManager.default.createDirectory(atPath: dir + "/src", withIntermediateDirectories: true)
            let present = name.hasSuffix("training file") ? "toy_test.amat" : "toy_train.amat"
            try FileManager.default.copyItem(atPath: dir + "/good.amat", toPath: dir + "/src/" + present)
            return ["--format", "amat", "--source", dir + "/src", "--valid-from-train", "4", "--image-shape", "2x2"]
        case "a missing input":
            return ["--train", dir + "/nowhere.amat"] + good
        case "a name that does not say the format":
            try write("data.bin", [0])
            return ["--train", dir + "/data.bin"] + good
        default:
            try "x".write(toFile: dir + "/a-file", atomically: true, encoding: .utf8)
            return ["--train", dir + "/good.npy"] + good + ["--output", dir + "/a-file/out.h5"]
        }
    }

    @Test("bad input: the exit status of sysexits.h, one message naming the file, the thing and the fix, no output left",
          arguments: cases.map(\.0))
    func badInput(name: String) throws {
        let (_, status, mentions) = try #require(Self.cases.first { $0.0 == name })
        let dir = try makeTemporaryDirectory(prefix: "prep-bad")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.writeGoodInputs(dir)
        let flags = try setUp(name, in: dir)
        let before = Set(try FileManager.default.contentsOfDirectory(atPath: dir))
        let r = try bsvi(["prepare-data"] + flags + (flags.contains("--output") ? [] : ["--output", dir + "/out.h5"]))
        #expect(r.status == status && !r.signaled && !r.timedOut, "\(name): status \(r.status), expected \(status): \(r.stderr)")
        #expect(r.stderr.hasPrefix("error: "), "\(name): \(r.stderr)")
        for m in mentions { #expect(r.stderr.contains(m), "\(name): the message should mention '\(m)': \(r.stderr)") }
        #expect(r.stderr.contains("(") && r.stderr.split(separator: "\n").count == 1, "\(name): one line with a fix: \(r.stderr)")
        #expect(r.stdout.isEmpty, "\(name): \(r.stdout)")
        // Nothing was added: no output, no temp file.
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: dir)) == before, "\(name): files left behind")
    }

    @Test("an HDF5 input whose last rows are all 0 (a writer that stopped early) is converted with a warning on stderr, exit 0")
    func trailingRowsOfZeros() throws {
        let dir = try makeTemporaryDirectory(prefix: "prep-zeros")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let f = try HDF5File.create(dir + "/in.h5")
        // One chunk of 600 rows of which 100 were written: the rest read as 0.
        try f.createUInt8Dataset("/train", rows: 600, width: 4, chunkRows: 600)
        try Self.randomBits(400, seed: 7).withUnsafeBufferPointer { try f.writeUInt8Rows("/train", rows: 0..<100, width: 4, from: $0.baseAddress!) }
        try Self.randomBits(40, seed: 8).withUnsafeBufferPointer { try f.writeUInt8("/test", $0, shape: [10, 4]) }
        try f.close()
        let r = try bsvi(["prepare-data", "--train", dir + "/in.h5", "--valid-from-train", "5", "--image-shape", "2x2", "--output", dir + "/out.h5"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("warning: \(dir)/in.h5:/train: its last 500 of 600 rows (rows 100–599, counted from 0) are all 0"), "\(r.stderr)")
        #expect(r.stderr.contains("f['/train'][:100]"), "\(r.stderr)")
        #expect(try BinaryDataset(path: dir + "/out.h5").shape(of: .train) == (595, 4))
    }

    @Test("an existing output is kept, untouched, unless --force is given (73)")
    func outputExists() throws {
        let dir = try makeTemporaryDirectory(prefix: "prep-exists")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.writeGoodInputs(dir)
        try "precious".write(toFile: dir + "/out.h5", atomically: true, encoding: .utf8)
        let flags = ["prepare-data", "--train", dir + "/good.amat", "--test", dir + "/good.amat", "--valid-from-train", "4",
                     "--image-shape", "2x2", "--output", dir + "/out.h5"]
        let r = try bsvi(flags)
        #expect(r.status == 73, "\(r.stderr)")
        #expect(r.stderr.contains("out.h5") && r.stderr.contains("already exists") && r.stderr.contains("--force"))
        #expect(try String(contentsOfFile: dir + "/out.h5", encoding: .utf8) == "precious")
        let forced = try bsvi(flags + ["--force"])
        #expect(forced.status == 0, "\(forced.stderr)")
        #expect(try BinaryDataset(path: dir + "/out.h5").shape(of: .train) == (36, 4))
    }

    @Test("flag values that cannot work exit 64 before anything is read",
          arguments: [(["--format", "jpeg"], "jpeg"), (["--binarize", "sometimes"], "sometimes"),
                      (["--threshold", "0.3"], "--binarize threshold"), (["--binarize", "threshold", "--threshold", "200"], "0.498"),
                      (["--image-shape", "28"], "HxW"), (["--valid-from-train", "0"], "at least 1")])
    func badFlags(flags: [String], mention: String) throws {
        let dir = try makeTemporaryDirectory(prefix: "prep-flags")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.writeGoodInputs(dir)
        let r = try bsvi(["prepare-data", "--train", dir + "/good.npy", "--test", dir + "/good.npy", "--output", dir + "/out.h5"] + flags)
        #expect(r.status == 64, "\(flags): status \(r.status): \(r.stderr)")
        #expect(r.stderr.contains(mention), "\(flags): \(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/out.h5"))
    }

    @Test("a converted .amat trains like the default dataset, on one process and under mpirun -np 2, and evaluates")
    func convertedFileTrains() throws {
        let dir = try makeTemporaryDirectory(prefix: "prep-train")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Noisy copies of four 16-pixel prototypes, as .amat lines: 120 train, 30 test.
        let prototypes = (0..<4).map { Self.randomBits(16, seed: UInt64(100 + $0)) }
        let noise = DataFixtures.pseudoRandomBytes(150 * 16, seed: 3, below: 10)
        let rows = (0..<150).map { i in (0..<16).map { c in Double(noise[i * 16 + c] == 0 ? 1 - prototypes[i % 4][c] : prototypes[i % 4][c]) } }
        try DataFixtures.amat(Array(rows[0..<120])).write(toFile: dir + "/toy_train.amat", atomically: true, encoding: .utf8)
        try DataFixtures.amat(Array(rows[120...])).write(toFile: dir + "/toy_test.amat", atomically: true, encoding: .utf8)
        let p = try bsvi(["prepare-data", "--format", "amat", "--source", dir, "--valid-from-train", "24", "--image-shape", "4x4",
                          "--output", dir + "/toy.h5"])
        #expect(p.status == 0, "\(p.stderr)")
        #expect(p.stdout.contains("train 96, valid 24, test 30 rows of 16 pixels (4x4 images); binarization: none"), "\(p.stdout)")
        let train = ["train", "--data", dir + "/toy.h5", "--batch-size", "8", "--max-steps", "6", "--method", "bsvi", "--k", "2"] + tinyModel
        let one = try bsvi(train + ["--run-dir", dir + "/run1"])
        #expect(one.status == 0, "\(one.stderr)")
        let two = try mpirunBSVI(ranks: 2, train + ["--run-dir", dir + "/run2"], timeout: 120)
        #expect(two.status == 0, "\(two.stderr)")
        for run in ["run1", "run2"] {
            let ckpt = try CheckpointFile.read(dir + "/\(run)/final.h5")
            #expect(ckpt.shape.inputDim == 16 && ckpt.step == 6)
            #expect(ckpt.history.last?.split == "test" && ckpt.history.last?.examples == 30)
            #expect(ckpt.history.last.map { $0.logLikelihood.isFinite && $0.logLikelihood < 0 } == true)
        }
        let e = try bsvi(["eval", dir + "/run1/final.h5", "--data", dir + "/toy.h5", "--samples", "10", "--json"])
        #expect(e.status == 0, "\(e.stderr)")
    }

    @Test("inspect describes a dataset (text and --json), verifying every chunk; an unusable dataset exits 65, a missing file 66")
    func inspectDataset() throws {
        let dir = try makeTemporaryDirectory(prefix: "prep-inspect")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.writeGoodInputs(dir)
        let p = try bsvi(["prepare-data", "--train", dir + "/good.npy", "--test", dir + "/good-idx3-ubyte", "--valid-from-train", "5",
                          "--binarize", "threshold", "--threshold", "0.5", "--output", dir + "/d.h5"])
        #expect(p.status == 0, "\(p.stderr)")
        let text = try bsvi(["inspect", dir + "/d.h5"])
        #expect(text.status == 0, "\(text.stderr)")
        for line in ["dataset         \(dir)/d.h5", "binarization    threshold (intensity > 0.5)", "image shape     2×2",
                     "checksums       Fletcher32 verified on every chunk of every split", "train  35    4      binary",
                     "valid  5     4      binary", "test   40    4      binary"] {
            #expect(text.stdout.contains(line), "missing '\(line)' in\n\(text.stdout)")
        }
        let json = try bsvi(["inspect", dir + "/d.h5", "--json"])
        let j = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(j["kind"] as? String == "dataset" && j["checksums_verified"] as? Bool == true)
        #expect(j["image_height"] as? Int == 2 && j["image_width"] as? Int == 2 && j["binarization_threshold"] as? Double == 0.5)
        let splits = try #require(j["splits"] as? [[String: Any]])
        #expect(splits.map { $0["rows"] as? Int } == [35, 5, 40])
        let bits = Self.randomBits(160)
        let ones = Double(bits.filter { $0 == 1 }.count) / 160
        #expect(abs((splits[2]["fraction_of_ones"] as? Double ?? -1) - ones) < 1e-12)

        try BinaryDatasetWriter.write(to: dir + "/nonbinary.h5", splits: [
            .init(name: .train, rows: 2, width: 2, values: [0, 1, 7, 1]), .init(name: .valid, rows: 1, width: 2, values: [0, 1]),
            .init(name: .test, rows: 1, width: 2, values: [0, 1])], imageHeight: 1, imageWidth: 2, source: "test")
        let bad = try bsvi(["inspect", dir + "/nonbinary.h5"])
        #expect(bad.status == 65 && bad.stderr.contains("nonbinary.h5") && bad.stderr.contains("/train holds 1 values that are not 0/1"),
                "\(bad.status) \(bad.stderr)")
        #expect(bad.stdout.contains("binary (1 NOT 0/1)"))
        // The largest seed prepare-data takes is shown as given, one that can be passed back (it was shown as -1).
        let seeded = try bsvi(["prepare-data", "--train", dir + "/good.npy", "--test", dir + "/good.npy", "--valid-from-train", "5",
                               "--binarize", "bernoulli", "--seed", "18446744073709551615", "--output", dir + "/seeded.h5"])
        #expect(seeded.status == 0, "\(seeded.stderr)")
        let seedText = try bsvi(["inspect", dir + "/seeded.h5"])
        #expect(seedText.stdout.contains("binarization    bernoulli (seed 18446744073709551615)"), "\(seedText.stdout)")
        let seedJSON = try bsvi(["inspect", dir + "/seeded.h5", "--json"])
        #expect(seedJSON.stdout.contains("\"binarization_seed\" : 18446744073709551615"), "\(seedJSON.stdout)")
        let missing = try bsvi(["inspect", dir + "/nowhere.h5"])
        #expect(missing.status == 66 && missing.stderr.contains("nowhere.h5") && missing.stderr.contains("not found"))
    }

    @Test("SIGINT (Ctrl-C) or SIGTERM while prepare-data writes ends it by that signal and leaves neither the output nor its temp file",
          arguments: [SIGINT, SIGTERM])
    func signalMidWriteLeavesNothing(signal: Int32) throws {
        let dir = try makeTemporaryDirectory(prefix: "prep-signal")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // 100,000 grayscale images: writing them (Bernoulli draws, checksummed chunks) takes about
        // a second, time enough to see the temp file appear and to signal the process.
        var image = [UInt8](repeating: 0, count: 784)
        for p in 0..<784 where p % 7 == 0 { image[p] = UInt8(p % 256) }
        var pixels = [UInt8]()
        pixels.reserveCapacity(100_000 * 784)
        for _ in 0..<100_000 { pixels += image }
        let input = dir + "/in/many-idx3-ubyte"
        try FileManager.default.createDirectory(atPath: dir + "/in", withIntermediateDirectories: true)
        try DataFixtures.write(input, DataFixtures.idx(dims: [100_000, 28, 28], values: pixels))
        pixels = []
        let output = dir + "/out/data.h5"
        try FileManager.default.createDirectory(atPath: dir + "/out", withIntermediateDirectories: true)
        func leftovers() -> [String] { (try? FileManager.default.contentsOfDirectory(atPath: dir + "/out")) ?? [] }
        let command = try BackgroundCommand(try binaryPath(), ["prepare-data", "--train", input, "--test", input, "--output", output])
        // The temp file appears when the write begins, after the inputs are surveyed.
        #expect(pollUntil(timeout: 120) { !leftovers().isEmpty || !command.process.isRunning })
        try #require(command.process.isRunning && leftovers().count == 1 && leftovers()[0].hasPrefix(".data.h5.tmp-"),
                     "the write ended before the signal could be sent: \(leftovers()) \(command.stderr)")
        kill(command.process.processIdentifier, signal)
        #expect(command.wait(timeout: 120))
        #expect(command.process.terminationReason == .uncaughtSignal && command.process.terminationStatus == signal,
                "\(command.process.terminationReason) \(command.process.terminationStatus) \(command.stderr)")
        #expect(leftovers().isEmpty, "\(leftovers())")
    }

    @Test("memory is bounded by a chunk of rows: converting 150,000 images peaks no higher than converting 1,000")
    func memoryBounded() throws {
        let dir = try makeTemporaryDirectory(prefix: "prep-memory")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // 28×28 grayscale images (118 MB uncompressed for 150,000; a few hundred kB gzipped): a
        // converter that held the input would grow by at least that much, by 8× that as Float64s.
        func peak(_ count: Int) throws -> Double {
            var image = [UInt8](repeating: 0, count: 784)
            for p in 0..<784 where p % 29 == 0 { image[p] = 200 }
            var pixels = [UInt8]()
            pixels.reserveCapacity(count * 784)
            for _ in 0..<count { pixels += image }
            let input = dir + "/\(count)-idx3-ubyte.gz"
            try DataFixtures.writeGzip(input, DataFixtures.idx(dims: [count, 28, 28], values: pixels))
            pixels = []
            let r = try bsvi(["prepare-data", "--train", input, "--test", input, "--valid-from-train", "100", "--output", dir + "/out-\(count).h5"],
                             timeout: 600)
            try #require(r.status == 0, "\(r.stderr)")
            try? FileManager.default.removeItem(atPath: dir + "/out-\(count).h5")
            let field = try #require(r.stdout.components(separatedBy: "peak memory ").last?.split(separator: " ").first)
            return try #require(Double(field))
        }
        let small = try peak(1_000), large = try peak(150_000)
        #expect(small > 0 && large < small + 16, "peak memory \(small) MiB for 1,000 images, \(large) MiB for 150,000")
    }
}
