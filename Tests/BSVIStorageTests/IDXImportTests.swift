import BSVIStorage
import DataFixtures
import Foundation
import Testing

@Suite("Import: IDX files")
struct IDXImportTests {
    @Test("0/1 images, plain and gzip: stored bit for bit; the last --valid-from-train rows become /valid; shape from the header")
    func binaryPlainAndGzip() throws {
        let dir = try makeScratchFolder("idx")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let train = randomBits(30 * 12, seed: 1), test = randomBits(7 * 12, seed: 2)
        try DataFixtures.write(dir + "/train-images-idx3-ubyte", DataFixtures.idx(dims: [30, 3, 4], values: train))
        try DataFixtures.writeGzip(dir + "/t10k-images-idx3-ubyte.gz", DataFixtures.idx(dims: [7, 3, 4], values: test))
        let summary = try runImport(dir) {
            $0.train = dir + "/train-images-idx3-ubyte"
            $0.test = dir + "/t10k-images-idx3-ubyte.gz"
            $0.validFromTrain = 8
        }
        #expect(try stored(dir, .train) == Array(train[0..<(22 * 12)]))
        #expect(try stored(dir, .valid) == Array(train[(22 * 12)...]))
        #expect(try stored(dir, .test) == test)
        #expect(summary.imageShape == ImageShape(height: 3, width: 4))
        #expect(try intAttribute(dir, "image_height") == 3 && intAttribute(dir, "image_width") == 4)
        #expect(try rootAttribute(dir, "binarization") == "none")
    }

    @Test("grayscale images are Bernoulli-binarized once, keyed by (seed, split, row, pixel); 0 stays 0 and 255 becomes 1")
    func grayscale() throws {
        let dir = try makeScratchFolder("idx-gray")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var train = DataFixtures.pseudoRandomBytes(40 * 16, seed: 3)
        train[0] = 0
        train[1] = 255
        try DataFixtures.writeGzip(dir + "/a-idx3-ubyte.gz", DataFixtures.idx(dims: [40, 4, 4], values: train))
        try runImport(dir, seed: 77) {
            $0.train = dir + "/a-idx3-ubyte.gz"
            $0.test = dir + "/a-idx3-ubyte.gz"
            $0.validFromTrain = 10
        }
        let p = train.map { Double($0) / 255 }
        #expect(try stored(dir, .train) == expectedBernoulli(Array(p[0..<(30 * 16)]), width: 16, seed: 77, split: .train))
        #expect(try stored(dir, .valid) == expectedBernoulli(Array(p[(30 * 16)...]), width: 16, seed: 77, split: .valid))
        #expect(try stored(dir, .test) == expectedBernoulli(p, width: 16, seed: 77, split: .test))
        let bits = try stored(dir, .train)
        #expect(bits[0] == 0 && bits[1] == 1)
        #expect(try rootAttribute(dir, "binarization") == "bernoulli" && intAttribute(dir, "binarization_seed") == 77)
    }

    @Test("--format idx --source finds …train-images-idx3-ubyte[.gz] and …t10k/test-images (EMNIST names); several candidates are refused")
    func sourceFolder() throws {
        let dir = try makeScratchFolder("idx-source")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let train = randomBits(20 * 4, seed: 4), test = randomBits(5 * 4, seed: 5)
        try DataFixtures.writeGzip(dir + "/emnist-digits-train-images-idx3-ubyte.gz", DataFixtures.idx(dims: [20, 2, 2], values: train))
        try DataFixtures.writeGzip(dir + "/emnist-digits-test-images-idx3-ubyte.gz", DataFixtures.idx(dims: [5, 2, 2], values: test))
        try DataFixtures.write(dir + "/emnist-digits-train-labels-idx1-ubyte", DataFixtures.idx(dims: [20], values: [UInt8](repeating: 1, count: 20)))
        try runImport(dir) {
            $0.format = .idx
            $0.sourceFolder = dir
            $0.validFromTrain = 5
        }
        #expect(try stored(dir, .train) + stored(dir, .valid) == train)
        #expect(try stored(dir, .test) == test)

        try DataFixtures.writeGzip(dir + "/emnist-letters-train-images-idx3-ubyte.gz", DataFixtures.idx(dims: [20, 2, 2], values: train))
        let e = importError(dir) {
            $0.format = .idx
            $0.sourceFolder = dir
            $0.validFromTrain = 5
        }
        expectError(e, .usage, mentions: ["emnist-digits-train-images-idx3-ubyte.gz", "emnist-letters-train-images-idx3-ubyte.gz", "--train"])
    }

    @Test("wrong magic, a label file, a truncated or corrupt gzip, trailing bytes: bad data, named")
    func badFiles() throws {
        let dir = try makeScratchFolder("idx-bad")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let good = DataFixtures.idx(dims: [50, 4, 4], values: DataFixtures.pseudoRandomBytes(800, seed: 6))
        try DataFixtures.write(dir + "/test-idx3-ubyte", good)
        func check(_ name: String, _ bytes: [UInt8], mentions: [String]) throws {
            try DataFixtures.write(dir + "/" + name, bytes)
            let e = importError(dir) {
                $0.train = dir + "/" + name
                $0.test = dir + "/test-idx3-ubyte"
                $0.validFromTrain = 5
            }
            expectError(e, .badData, mentions: [name] + mentions)
            #expect(!FileManager.default.fileExists(atPath: dir + "/out.h5"))
        }
        try check("magic-idx3-ubyte", [0x12, 0x34] + good.dropFirst(2), mentions: ["not an IDX file", "0x12340803"])
        try check("labels-idx1-ubyte", DataFixtures.idx(dims: [3], values: [1, 2, 3]), mentions: ["label file"])
        try check("trailing-idx3-ubyte", good + [0], mentions: ["bytes after the 50 images"])
        try check("short-idx3-ubyte", Array(good.dropLast(20)), mentions: ["ends early", "stops after 48"])
        try DataFixtures.writeGzip(dir + "/whole.gz", good)
        let gz = try DataFixtures.read(dir + "/whole.gz")
        try check("cut-idx3-ubyte.gz", Array(gz.prefix(gz.count / 2)), mentions: ["gzip stream ends early"])
        var flipped = gz
        flipped[gz.count - 6] ^= 0xff  // inside the CRC-32 of the uncompressed data
        try check("crc-idx3-ubyte.gz", flipped, mentions: ["corrupt gzip data", "incorrect data check"])
    }
}
