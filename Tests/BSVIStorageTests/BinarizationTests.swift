import BSVIStorage
import DataFixtures
import Foundation
import Testing

@Suite("Import: --binarize auto, bernoulli, threshold, dynamic")
struct BinarizationTests {
    /// 20 rows of 8 grayscale pixels, with every split needing a conversion.
    static let gray = DataFixtures.pseudoRandomBytes(20 * 8, seed: 51)

    func prepare(_ dir: String, seed: UInt64 = 6, _ configure: (inout DataImportRequest) -> Void) throws -> ImportSummary {
        try DataFixtures.write(dir + "/g.npy", DataFixtures.npy(Self.gray.map(Double.init), shape: [20, 2, 4], type: .uint8))
        return try runImport(dir, seed: seed) {
            $0.train = dir + "/g.npy"
            $0.test = dir + "/g.npy"
            $0.validFromTrain = 5
            configure(&$0)
        }
    }

    @Test("threshold: a pixel is 1 exactly when intensity/255 > T; the threshold is recorded")
    func threshold() throws {
        let dir = try makeScratchFolder("bin-threshold")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try prepare(dir) {
            $0.binarization = .threshold
            $0.threshold = 0.3
        }
        #expect(try stored(dir, .test) == Self.gray.map { Double($0) / 255 > 0.3 ? 1 : 0 })
        #expect(try rootAttribute(dir, "binarization") == "threshold")
        #expect(try HDF5File.open(dir + "/out.h5").doubleAttribute("binarization_threshold") == 0.3)
    }

    @Test("bernoulli: the seed decides the bits, the same seed repeats them; auto on grayscale is the same as bernoulli")
    func bernoulliSeeds() throws {
        let dir = try makeScratchFolder("bin-bernoulli")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try prepare(dir, seed: 1) { $0.binarization = .bernoulli }
        let first = try stored(dir, .test)
        try prepare(dir, seed: 1) { $0.binarization = .auto }
        #expect(try stored(dir, .test) == first)
        try prepare(dir, seed: 2) { $0.binarization = .bernoulli }
        #expect(try stored(dir, .test) != first)
        #expect(try stored(dir, .test) == expectedBernoulli(Self.gray.map { Double($0) / 255 }, width: 8, seed: 2, split: .test))
    }

    @Test("auto: 0/1 in every split is stored as it is; one grayscale split makes every split Bernoulli-binarized (0/1 rows unchanged)")
    func autoDecidesOverAllSplits() throws {
        let dir = try makeScratchFolder("bin-auto")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let bits = randomBits(20 * 8, seed: 52)
        try DataFixtures.write(dir + "/b.npy", DataFixtures.npy(bits.map(Double.init), shape: [20, 8], type: .uint8))
        try DataFixtures.write(dir + "/g.npy", DataFixtures.npy(Self.gray.map(Double.init), shape: [20, 8], type: .uint8))
        let summary = try runImport(dir) {
            $0.train = dir + "/b.npy"
            $0.test = dir + "/g.npy"
            $0.validFromTrain = 5
            $0.imageShape = ImageShape(height: 2, width: 4)
        }
        #expect(summary.binarization == .bernoulli(seed: 5))
        // A 0/1 pixel has probability 0 or 1, so Bernoulli sampling leaves it as it is.
        #expect(try stored(dir, .train) + stored(dir, .valid) == bits)
        #expect(try stored(dir, .test) == expectedBernoulli(Self.gray.map { Double($0) / 255 }, width: 8, seed: 5, split: .test))
    }

    @Test("dynamic: /train keeps the intensities 0–255 (floats rounded to the nearest 1/255), /valid and /test are binarized once")
    func dynamic() throws {
        let dir = try makeScratchFolder("bin-dynamic")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let summary = try prepare(dir, seed: 8) { $0.binarization = .dynamic }
        #expect(try stored(dir, .train) == Array(Self.gray[0..<(15 * 8)]))
        let p = Self.gray.map { Double($0) / 255 }
        #expect(try stored(dir, .valid) == expectedBernoulli(Array(p[(15 * 8)...]), width: 8, seed: 8, split: .valid))
        #expect(try stored(dir, .test) == expectedBernoulli(p, width: 8, seed: 8, split: .test))
        #expect(summary.binarization == .dynamic(seed: 8))
        #expect(try rootAttribute(dir, "binarization") == "dynamic" && intAttribute(dir, "binarization_seed") == 8)

        try DataFixtures.write(dir + "/f.npy", DataFixtures.npy([0, 0.5, 1, 0.1], shape: [1, 4], type: .float32))
        try runImport(dir) {
            $0.train = dir + "/f.npy"
            $0.valid = dir + "/f.npy"
            $0.test = dir + "/f.npy"
            $0.binarization = .dynamic
            $0.imageShape = ImageShape(height: 2, width: 2)
        }
        #expect(try stored(dir, .train) == [0, 128, 255, 26])
    }

    @Test("flag values that cannot work are usage errors (64) before any file is read")
    func badFlags() throws {
        let dir = try makeScratchFolder("bin-flags")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let e1 = importError(dir) {
            $0.train = dir + "/missing.npy"
            $0.binarization = .threshold
            $0.threshold = 127
        }
        expectError(e1, .usage, mentions: ["--threshold", "pixel > 127' is --threshold 0.5"])
        let e2 = importError(dir) {
            $0.train = dir + "/missing.npy"
            $0.valid = dir + "/missing.npy"
            $0.validFromTrain = 3
        }
        expectError(e2, .usage, mentions: ["--valid-from-train", "--valid"])
        let e3 = importError(dir) {
            $0.train = dir + "/missing.npy"
            $0.validFromTrain = 0
        }
        expectError(e3, .usage, mentions: ["--valid-from-train", "at least 1"])
    }
}
