@testable import BSVIStorage
import Foundation
import Testing

/// The few numbers ranks compare to know they read the same dataset file (DatasetAgreement).
@Suite("Dataset fingerprint")
struct DatasetFingerprintTests {
    static func write(_ path: String, train: Int = 30, test: Int? = 5, width: Int = 16, source: String = "toy",
                      extra: [String: Int64] = [:]) throws {
        var splits: [BinaryDatasetWriter.Split] = [.init(name: .train, rows: train, width: width, values: .init(repeating: 1, count: train * width))]
        if let test { splits.append(.init(name: .test, rows: test, width: width, values: .init(repeating: 0, count: test * width))) }
        try BinaryDatasetWriter.write(to: path, splits: splits, imageHeight: 4, imageWidth: width / 4, source: source,
                                      extraIntAttributes: extra)
    }

    @Test("records each split's rows and width, an absent split as absent, and what /train holds")
    func recordsShapes() throws {
        let dir = try makeScratchFolder("fingerprint")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.write(dir + "/a.h5", train: 30, test: 5)
        let f = DatasetFingerprint(of: try BinaryDataset(path: dir + "/a.h5"))
        #expect(f.train == .init(rows: 30, width: 16))
        #expect(f.valid == .absent)
        #expect(f.test == .init(rows: 5, width: 16))
        #expect(f.trainValues == .binary)
        #expect(DatasetFingerprint(words: f.words) == f, "the words an allgather carries give the fingerprint back")
        #expect(f.words.count == DatasetFingerprint.wordCount)
    }

    @Test("the same content gives the same fingerprint in every file and process; another source or binarization does not")
    func attributesIdentifyTheContent() throws {
        let dir = try makeScratchFolder("fingerprint")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.write(dir + "/a.h5")
        try Self.write(dir + "/copy.h5")
        try Self.write(dir + "/other.h5", source: "other")
        try Self.write(dir + "/seeded.h5", extra: ["binarization_seed": 5])
        func fingerprint(_ name: String) throws -> DatasetFingerprint { DatasetFingerprint(of: try BinaryDataset(path: dir + "/" + name)) }
        let a = try fingerprint("a.h5")
        #expect(try fingerprint("copy.h5") == a)
        #expect(try fingerprint("other.h5").attributesHash != a.attributesHash)
        #expect(try fingerprint("seeded.h5").attributesHash != a.attributesHash)
        #expect(try fingerprint("other.h5").train == a.train)
        // What a checkpoint records leaves `source` (the input path prepare-data was given) out:
        // the same data prepared from another folder is the same data; a binarization is not.
        func trained(_ name: String) throws -> DatasetFingerprint {
            DatasetFingerprint.ofTrainingData(try BinaryDataset(path: dir + "/" + name))
        }
        #expect(try trained("other.h5") == trained("a.h5"))
        #expect(try trained("seeded.h5").attributesHash != trained("a.h5").attributesHash)
        #expect(!DatasetFingerprint.trainingAttributes.contains("source") && DatasetFingerprint.trainingAttributes.count == 5)
    }

    @Test("the attribute hash is FNV-1a, not Swift's per-process seeded Hasher (ranks are separate processes)")
    func hashIsFixed() {
        // 64-bit FNV-1a of the bytes "source=s:toy\0", computed independently.
        #expect(DatasetFingerprint.hash(["source=s:toy"]) == 0x9be9_8030_92c3_c356)
    }

    @Test("differences name each differing value and the reference's; equal fingerprints have none")
    func differences() {
        let reference = DatasetFingerprint(train: .init(rows: 200, width: 16), valid: .absent, test: .init(rows: 20, width: 16),
                                           trainValues: .binary, attributesHash: 1)
        #expect(reference.differences(from: reference, referenceName: "rank 0").isEmpty)
        var other = reference
        other.train.rows = 300
        other.valid = .init(rows: 10, width: 16)
        other.trainValues = .intensities
        other.attributesHash = 2
        #expect(other.differences(from: reference, referenceName: "rank 0") == [
            "/train 300 rows × 16 (rank 0: 200 rows × 16)",
            "/valid 10 rows × 16 (rank 0: absent or unusable)",
            "/train holds intensities values (rank 0: binary)",
            "its attributes (source, binarization, binarization_seed, binarization_threshold, image_height, image_width) differ: "
                + "hash 0000000000000002 (rank 0: 0000000000000001)",
        ])
    }
}
