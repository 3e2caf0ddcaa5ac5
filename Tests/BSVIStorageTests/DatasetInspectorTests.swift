import BSVIStorage
import DataFixtures
import Foundation
import Testing

@Suite("Dataset inspection")
struct DatasetInspectorTests {
    @Test("splits, rows, widths, fraction of ones, binarization, image shape and source are reported; every chunk is checksummed")
    func describesADataset() throws {
        let dir = try makeScratchFolder("inspect")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // 2,100 rows: three chunks, the last one partial.
        var bits = [UInt8](repeating: 0, count: 2_100 * 4)
        for i in stride(from: 0, to: bits.count, by: 4) { bits[i] = 1 }  // a quarter of the pixels are 1
        try DataFixtures.write(dir + "/b.npy", DataFixtures.npy(bits.map(Double.init), shape: [2_100, 2, 2], type: .uint8))
        try runImport(dir) {
            $0.train = dir + "/b.npy"
            $0.test = dir + "/b.npy"
            $0.validFromTrain = 100
        }
        #expect(try DatasetInspector.isDataset(dir + "/out.h5"))
        let r = try DatasetInspector.inspect(dir + "/out.h5")
        #expect(r.splits.map(\.name) == ["train", "valid", "test"])
        #expect(r.splits.map(\.rows) == [2_000, 100, 2_100])
        #expect(r.splits.allSatisfy { $0.width == 4 && $0.holds == "binary" && $0.fractionOfOnes == 0.25 && $0.checksummed })
        #expect(r.binarization == "none" && r.imageHeight == 2 && r.imageWidth == 2)
        #expect(r.source?.contains("b.npy") == true)
        #expect(r.checksumsVerified && r.problems.isEmpty)
    }

    @Test("a binarization seed of 2^63 or more is reported as prepare-data --seed took it, not as a negative number")
    func largeSeed() throws {
        let dir = try makeScratchFolder("inspect-seed")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try DataFixtures.write(dir + "/g.npy", DataFixtures.npy([0, 51, 102, 255, 0, 51, 102, 255], shape: [2, 4], type: .uint8))
        for seed in [UInt64.max, 1 << 63, 20190411] {
            try runImport(dir, seed: seed) {
                $0.train = dir + "/g.npy"
                $0.valid = dir + "/g.npy"
                $0.test = dir + "/g.npy"
                $0.binarization = .bernoulli
                $0.imageShape = ImageShape(height: 2, width: 2)
            }
            #expect(try DatasetInspector.inspect(dir + "/out.h5").binarizationSeed == seed)
        }
    }

    @Test("a dynamic /train reports the mean intensity / 255 as its expected fraction of ones")
    func dynamicTrain() throws {
        let dir = try makeScratchFolder("inspect-dyn")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try DataFixtures.write(dir + "/g.npy", DataFixtures.npy([0, 51, 102, 255, 0, 51, 102, 255], shape: [2, 4], type: .uint8))
        try runImport(dir) {
            $0.train = dir + "/g.npy"
            $0.valid = dir + "/g.npy"
            $0.test = dir + "/g.npy"
            $0.binarization = .dynamic
            $0.imageShape = ImageShape(height: 2, width: 2)
        }
        let r = try DatasetInspector.inspect(dir + "/out.h5")
        #expect(r.splits[0].holds == "intensities")
        #expect(abs(r.splits[0].fractionOfOnes - 0.4) < 1e-12)
        #expect(r.splits[1].holds == "binary" && r.binarization == "dynamic" && r.problems.isEmpty)
    }

    @Test("a flipped byte in the last chunk fails the read (Fletcher32); a missing split or other values than 0/1 are problems")
    func problemsAndCorruption() throws {
        let dir = try makeScratchFolder("inspect-bad")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A distinctive 0/1 pattern at the end of /test, so its bytes can be found in the file.
        let marker = randomBits(64, seed: 81)
        let test = randomBits(1_500 * 4 - 64, seed: 82) + marker
        try BinaryDatasetWriter.write(to: dir + "/d.h5", splits: [
            .init(name: .train, rows: 3, width: 4, values: [UInt8](repeating: 1, count: 12)),
            .init(name: .valid, rows: 1, width: 4, values: [0, 1, 2, 1]),
            .init(name: .test, rows: 1_500, width: 4, values: test),
        ], imageHeight: 2, imageWidth: 2, source: "test")
        let r = try DatasetInspector.inspect(dir + "/d.h5")
        #expect(r.problems == ["/valid holds 1 values that are not 0/1"])
        #expect(r.splits[1].nonBinaryValues == 1)

        var bytes = try DataFixtures.read(dir + "/d.h5")
        let at = try #require(occurrences(of: marker, in: bytes).first)
        bytes[at + 10] ^= 1
        try DataFixtures.write(dir + "/flipped.h5", bytes)
        #expect {
            _ = try DatasetInspector.inspect(dir + "/flipped.h5")
        } throws: { error in
            (error as? StorageError)?.kind == .badData && "\(error)".contains("/test") && "\(error)".contains("checksum")
        }

        try BinaryDatasetWriter.write(to: dir + "/two.h5", splits: [.init(name: .train, rows: 1, width: 4, values: [0, 1, 0, 1])],
                                      imageHeight: 2, imageWidth: 2, source: "test")
        let two = try DatasetInspector.inspect(dir + "/two.h5")
        #expect(two.problems == ["/valid is missing", "/test is missing"])

        // An image shape that does not fit the rows is a warning: training does not read it (it
        // used to make inspect call a file unusable that trains, exit 65).
        let splits: [BinaryDatasetWriter.Split] = [.train, .valid, .test].map { .init(name: $0, rows: 1, width: 4, values: [0, 1, 0, 1]) }
        for (h, w, says) in [(3, 2, "3×2 does not match the 4 pixels"), (-2, -2, "-2×-2 is not an image shape")] {
            try BinaryDatasetWriter.write(to: dir + "/shape.h5", splits: splits, imageHeight: h, imageWidth: w, source: "test")
            let shape = try DatasetInspector.inspect(dir + "/shape.h5")
            #expect(shape.problems.isEmpty, "\(shape.problems)")
            #expect(shape.warnings.count == 1 && shape.warnings[0].contains(says) && shape.warnings[0].contains("sample ignores it"), "\(shape.warnings)")
        }
    }
}
