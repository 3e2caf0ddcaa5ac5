import BSVIStorage
import Foundation
import Testing

/// FNV-1a (64-bit) of a byte sequence: a fingerprint of a split's contents, enough to tell
/// whether two files hold the same bytes.
func fnv1a(_ bytes: [UInt8]) -> UInt64 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
    return h
}

/// Every byte of a uint8 [rows, width] split.
func splitBytes(_ path: String, _ split: String) throws -> [UInt8] {
    let f = try HDF5File.open(path)
    let info = try f.datasetInfo("/" + split)
    var bytes = [UInt8](repeating: 0, count: info.count)
    try bytes.withUnsafeMutableBufferPointer {
        try f.readUInt8Rows("/" + split, rows: 0..<info.shape[0], width: info.shape[1], into: $0.baseAddress!)
    }
    return bytes
}

/// Writes an uncompressed IDX3 ubyte image file (MNIST layout: big-endian header, then pixels).
func writeIDXImages(_ path: String, count: Int, height: Int, width: Int, pixel: (Int, Int) -> UInt8) throws {
    var bytes: [UInt8] = [0, 0, 8, 3]
    for v in [count, height, width] { bytes += [UInt8(v >> 24 & 0xff), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }
    bytes.reserveCapacity(16 + count * height * width)
    for i in 0..<count { for p in 0..<(height * width) { bytes.append(pixel(i, p)) } }
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

/// The default dataset must not change: the results in docs/results.md were measured on it.
/// The fingerprints below were taken from files written by the Fashion-MNIST importer as it
/// was before the importers of issue 15 (commit 74007b6), for the same inputs and seeds.
@Suite("Fashion-MNIST preparation is unchanged, bit for bit")
struct FashionMNISTCompatibilityTests {
    /// 60,000 training and 700 test images of 4×4 with every intensity 0…255 present.
    static func writeSyntheticSource(_ dir: String) throws {
        try writeIDXImages(dir + "/train-images-idx3-ubyte", count: 60_000, height: 4, width: 4) { i, p in
            UInt8(truncatingIfNeeded: (i &* 2_654_435_761 ^ p &* 40_503) >> 7)
        }
        try writeIDXImages(dir + "/t10k-images-idx3-ubyte", count: 700, height: 4, width: 4) { i, p in UInt8((i * 16 + p) % 256) }
    }

    static let syntheticFingerprints: [String: UInt64] = [
        "train": 11_826_611_256_684_669_930, "valid": 13_907_085_327_123_692_477, "test": 3_639_658_600_940_247_604,
    ]

    @Test("synthetic IDX files: every split's bytes and the attributes match the old importer's output")
    func syntheticSource() throws {
        let dir = try makeScratchFolder("fmnist-compat")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.writeSyntheticSource(dir)
        let out = dir + "/out.h5"
        try FashionMNISTImporter.prepare(sourceFolder: dir, output: out, seed: 20190411)
        var found: [String: UInt64] = [:]
        for split in ["train", "valid", "test"] { found[split] = fnv1a(try splitBytes(out, split)) }
        #expect(found == Self.syntheticFingerprints, "fingerprints \(found)")
        let f = try HDF5File.open(out)
        #expect(try f.datasetInfo("/train").shape == [50_000, 16])
        #expect(try f.datasetInfo("/valid").shape == [10_000, 16])
        #expect(try f.datasetInfo("/test").shape == [700, 16])
        #expect(try f.scalarInt64Attribute("image_height") == 4 && f.scalarInt64Attribute("image_width") == 4)
        #expect(try f.scalarInt64Attribute("binarization_seed") == 20190411)
        #expect(try f.stringAttribute("source") == "Fashion-MNIST (\(dir)), Bernoulli-binarized")
        for split in ["train", "valid", "test"] { #expect(try f.datasetInfo("/" + split).hasFletcher32) }
    }

    static let realSource = "/usr/share/datasets/fashion-mnist"
    static let realFingerprints: [String: UInt64] = [
        "train": 3_396_771_442_703_312_810, "valid": 5_713_725_450_720_945_884, "test": 6_190_654_881_188_415_695,
    ]

    @Test("Debian's Fashion-MNIST with the default seed gives the dataset docs/results.md was measured on",
          .enabled(if: FileManager.default.fileExists(atPath: realSource + "/train-images-idx3-ubyte.gz")))
    func realSourceDefaultSeed() throws {
        let dir = try makeScratchFolder("fmnist-real")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = dir + "/fashion-mnist.h5"
        try FashionMNISTImporter.prepare(sourceFolder: Self.realSource, output: out, seed: 20190411)
        var found: [String: UInt64] = [:]
        for split in ["train", "valid", "test"] { found[split] = fnv1a(try splitBytes(out, split)) }
        #expect(found == Self.realFingerprints, "fingerprints \(found)")
    }
}
