import BSVIStorage
import DataFixtures
import Foundation
import Testing

@Suite("Import: NumPy .npz archives (libzip)")
struct NPZImportTests {
    static let bits: [DataSplit: [UInt8]] = [.train: randomBits(9 * 4, seed: 31), .valid: randomBits(3 * 4, seed: 32),
                                             .test: randomBits(4 * 4, seed: 33)]

    static func npy(_ split: DataSplit) -> [UInt8] {
        DataFixtures.npy(bits[split]!.map(Double.init), shape: [bits[split]!.count / 4, 2, 2], type: .uint8)
    }

    @Test("keys train/valid/test or x_train/x_valid/x_test, stored or deflated members: one file gives all three splits",
          arguments: [("", false), ("", true), ("x_", false), ("x_", true)])
    func standardKeys(prefix: String, compressed: Bool) throws {
        let dir = try makeScratchFolder("npz")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try DataFixtures.writeNPZ(dir + "/d.npz", arrays: DataSplit.allCases.map { (prefix + $0.rawValue, Self.npy($0)) },
                                  compressed: compressed)
        try runImport(dir) { $0.train = dir + "/d.npz" }
        for split in DataSplit.allCases { #expect(try stored(dir, split) == Self.bits[split]!) }
    }

    @Test("FILE:KEY names any array; an archive of one array is that array; an unknown key lists the archive's keys")
    func namedArrays() throws {
        let dir = try makeScratchFolder("npz-keys")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try DataFixtures.writeNPZ(dir + "/d.npz", arrays: [("images", Self.npy(.train)), ("heldout", Self.npy(.test)), ("labels", Self.npy(.valid))],
                                  compressed: true)
        try DataFixtures.writeNPZ(dir + "/one.npz", arrays: [("arr_0", Self.npy(.valid))], compressed: false)
        try runImport(dir) {
            $0.train = dir + "/d.npz:images"
            $0.valid = dir + "/one.npz"
            $0.test = dir + "/d.npz:heldout"
        }
        #expect(try stored(dir, .train) == Self.bits[.train]!)
        #expect(try stored(dir, .test) == Self.bits[.test]!)
        let e = importError(dir) {
            $0.train = dir + "/d.npz:nothing"
            $0.test = dir + "/d.npz:heldout"
        }
        expectError(e, .missingInput, mentions: ["d.npz", "nothing", "images, heldout, labels"])
        let noTrain = importError(dir) { $0.train = dir + "/d.npz" }
        expectError(noTrain, .missingInput, mentions: ["d.npz", "train or x_train", "--train"])
    }

    @Test("a truncated archive, a corrupt deflated member, a corrupt .npy inside: bad data, named")
    func damagedArchives() throws {
        let dir = try makeScratchFolder("npz-bad")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try DataFixtures.writeNPZ(dir + "/good.npz", arrays: DataSplit.allCases.map { ($0.rawValue, Self.npy($0)) }, compressed: true)
        let good = try DataFixtures.read(dir + "/good.npz")
        func check(_ bytes: [UInt8], mentions: [String]) throws {
            try DataFixtures.write(dir + "/bad.npz", bytes)
            let e = importError(dir) { $0.train = dir + "/bad.npz" }
            expectError(e, .badData, mentions: ["bad.npz"] + mentions)
            #expect(!FileManager.default.fileExists(atPath: dir + "/out.h5"))
        }
        try check(Array(good.prefix(good.count - 25)), mentions: ["not a zip archive", "truncated"])
        // The first member's data starts after its 30-byte local header and its name.
        var corrupt = good
        for i in (30 + "train.npy".count)..<(30 + "train.npy".count + 8) { corrupt[i] ^= 0x5a }
        try check(corrupt, mentions: ["train", "corrupt archive member"])
        try DataFixtures.writeNPZ(dir + "/bad.npz", arrays: [("train", Array(Self.npy(.train).dropLast(5))), ("test", Self.npy(.test))],
                                  compressed: false)
        let e = importError(dir) { $0.train = dir + "/bad.npz"; $0.validFromTrain = 2 }
        expectError(e, .badData, mentions: ["bad.npz", "train", "ends early"])
    }
}
