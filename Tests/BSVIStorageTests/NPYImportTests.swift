import BSVIStorage
import DataFixtures
import Foundation
import Testing

@Suite("Import: NumPy .npy files")
struct NPYImportTests {
    @Test("0/1 data as uint8, bool, float32, float64 (either byte order), N×D or N×H×W: stored bit for bit",
          arguments: [DataFixtures.NPYType.uint8, .bool, .float32, .float64, .float64BigEndian])
    func binaryEveryType(type: DataFixtures.NPYType) throws {
        let dir = try makeScratchFolder("npy")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let bits = randomBits(12 * 6, seed: 21)
        try DataFixtures.write(dir + "/train.npy", DataFixtures.npy(bits.map(Double.init), shape: [12, 2, 3], type: type))
        try DataFixtures.write(dir + "/test.npy", DataFixtures.npy(bits.map(Double.init), shape: [12, 6], type: type))
        let summary = try runImport(dir) {
            $0.train = dir + "/train.npy"
            $0.test = dir + "/test.npy"
            $0.validFromTrain = 2
        }
        #expect(try stored(dir, .train) + stored(dir, .valid) == bits)
        #expect(try stored(dir, .test) == bits)
        #expect(summary.imageShape == ImageShape(height: 2, width: 3))
        #expect(summary.binarization == .none)
    }

    @Test("grayscale: uint8 is read as 0–255 and floats as 0–1, the same intensities give the same bits")
    func grayscaleScales() throws {
        let dir = try makeScratchFolder("npy-gray")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Intensities k/5: uint8 51k and float64 k/5 are the same number (51k/255 = k/5, both
        // correctly rounded), so they must give the same bits.
        let fifths = DataFixtures.pseudoRandomBytes(30 * 784, seed: 22, below: 6).map { Double($0) / 5 }
        try DataFixtures.write(dir + "/f.npy", DataFixtures.npy(fifths, shape: [30, 784], type: .float64))
        try DataFixtures.write(dir + "/u.npy", DataFixtures.npy(fifths.map { ($0 * 255).rounded() }, shape: [30, 784], type: .uint8))
        try runImport(dir, seed: 3) {
            $0.train = dir + "/f.npy"
            $0.test = dir + "/f.npy"
            $0.validFromTrain = 5
        }
        let fromFloat = try stored(dir, .train)
        #expect(fromFloat == expectedBernoulli(Array(fifths[0..<(25 * 784)]), width: 784, seed: 3, split: .train))
        try runImport(dir, seed: 3) {
            $0.train = dir + "/u.npy"
            $0.test = dir + "/u.npy"
            $0.validFromTrain = 5
        }
        #expect(try stored(dir, .train) == fromFloat)
    }

    @Test("Fortran order, object arrays, int64, a 1-D array, a truncated or overlong file: refused with the fix")
    func refusals() throws {
        let dir = try makeScratchFolder("npy-bad")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let values = [Double](repeating: 1, count: 8)
        try DataFixtures.write(dir + "/ok.npy", DataFixtures.npy(values, shape: [2, 4], type: .uint8))
        func check(_ bytes: [UInt8], mentions: [String]) throws {
            try DataFixtures.write(dir + "/bad.npy", bytes)
            let e = importError(dir) {
                $0.train = dir + "/bad.npy"
                $0.test = dir + "/ok.npy"
                $0.validFromTrain = 1
                $0.imageShape = ImageShape(height: 2, width: 2)
            }
            expectError(e, .badData, mentions: ["bad.npy"] + mentions)
        }
        try check(DataFixtures.npy(values, shape: [2, 4], type: .uint8, fortranOrder: true), mentions: ["Fortran", "ascontiguousarray"])
        try check(DataFixtures.npy([0], shape: [1, 1], type: .object), mentions: ["object array", "dtype=object"])
        try check(DataFixtures.npy(values, shape: [2, 4], type: .int64), mentions: ["'<i8'", "uint8"])
        try check(DataFixtures.npy(values, shape: [8], type: .uint8), mentions: ["(8,)", "N×D"])
        try check(Array(DataFixtures.npy(values, shape: [2, 4], type: .float32).dropLast(3)), mentions: ["ends early", "stops after 1"])
        try check(DataFixtures.npy(values, shape: [2, 4], type: .uint8) + [7], mentions: ["bytes after the 2 rows"])
        try check(Array("not numpy at all".utf8), mentions: ["not a NumPy .npy array"])
        // Shorter than the 8 bytes of the magic and version: judged by what is there.
        try check(Array("hello\n".utf8), mentions: ["not a NumPy .npy array"])
        try check(Array(DataFixtures.npy(values, shape: [2, 4], type: .uint8).prefix(7)), mentions: ["ends early", "needs 8 bytes, found 7"])
        try check(DataFixtures.npy([0, 1.5, 0, 1], shape: [1, 4], type: .float32), mentions: ["row 0, column 1", "1.5", "outside [0, 1]"])
        try check(DataFixtures.npy([0, .nan, 0, 1], shape: [1, 4], type: .float32), mentions: ["NaN"])
    }
}
