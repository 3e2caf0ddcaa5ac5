import BSVIParallel
import BSVIStorage
import BSVITraining
import Foundation
import Testing

/// Ranks compare their dataset fingerprints before anything depends on the file; the
/// comparison and its message (the exchange itself runs under mpirun in DataAgreementTests).
@Suite("Dataset agreement across ranks")
struct DatasetAgreementTests {
    static let reference = DatasetFingerprint(train: .init(rows: 200, width: 16), valid: .init(rows: 20, width: 16),
                                              test: .init(rows: 20, width: 16), trainValues: .binary, attributesHash: 7)

    static func with(trainRows: Int) -> DatasetFingerprint {
        var f = reference
        f.train.rows = trainRows
        return f
    }

    @Test("ranks that all see rank 0's fingerprint agree: no disagreeing rank, no problem")
    func agreement() {
        let agreement = DatasetAgreement(fingerprints: Array(repeating: Self.reference, count: 4))
        #expect(agreement.disagreeingRanks.isEmpty)
        #expect(agreement.problem(hosts: [:]) == nil)
        #expect(DatasetAgreement(fingerprints: [Self.reference]).problem(hosts: [:]) == nil)
    }

    @Test("a rank that differs is named with its host, its values and rank 0's")
    func oneRankDiffers() throws {
        // 205 rows: the same 20 steps of batch 10 as 200, so no hang would show it, only wrong shuffles.
        let agreement = DatasetAgreement(fingerprints: [Self.reference, Self.reference, Self.with(trainRows: 205)])
        #expect(agreement.disagreeingRanks == [2])
        #expect(agreement.namedRanks == [0, 2])
        let problem = try #require(agreement.problem(hosts: [0: "nodeA", 2: "nodeB"]))
        #expect(problem == "the ranks see different files at this path: 1 of 3 ranks differ from rank 0 (host nodeA): "
                    + "rank 2 (host nodeB) sees /train 205 rows × 16 (rank 0: 200 rows × 16)")
        let error = TrainingError.data(file: "data.h5", problem: problem, fix: DatasetAgreement.fix)
        #expect("\(error)".hasPrefix("data.h5: the ranks see different files"))
        #expect("\(error)".hasSuffix("(give every rank the same dataset file (copies must be identical))"))
        #expect(error.exitStatus == .badData)
    }

    @Test("a rank given another --data than rank 0 (an MPMD launch) is named with its path; the same path is not repeated")
    func otherPathNamed() throws {
        let agreement = DatasetAgreement(fingerprints: [Self.reference, Self.reference, Self.with(trainRows: 205)])
        let problem = try #require(agreement.problem(hosts: [0: "nodeA", 2: "nodeB"], paths: [0: "a.h5", 2: "b.h5"]))
        #expect(problem == "the ranks see different files: 1 of 3 ranks differ from rank 0 (host nodeA): "
                    + "rank 2 (host nodeB, --data b.h5) sees /train 205 rows × 16 (rank 0: 200 rows × 16)")
        let samePath = try #require(agreement.problem(hosts: [:], paths: [0: "a.h5", 2: "a.h5"]))
        #expect(samePath.hasPrefix("the ranks see different files at this path: 1 of 3 ranks differ from rank 0: rank 2 sees /train 205"))
    }

    @Test("with many differing ranks the message names the first four and counts the rest")
    func manyRanksDiffer() throws {
        let agreement = DatasetAgreement(fingerprints: [Self.reference] + (1...7).map { Self.with(trainRows: 300 + $0) })
        #expect(agreement.disagreeingRanks == Array(1...7))
        #expect(agreement.namedRanks == [0, 1, 2, 3, 4])
        let problem = try #require(agreement.problem(hosts: [:]))
        #expect(problem.contains("7 of 8 ranks differ from rank 0:"))
        #expect(problem.contains("rank 4 sees /train 304 rows × 16") && !problem.contains("rank 5"))
        #expect(problem.hasSuffix("; and 3 more rank(s)"))
    }

    @Test("rank 0 is the reference even when most ranks disagree with it")
    func rankZeroIsTheReference() {
        let other = Self.with(trainRows: 300)
        #expect(DatasetAgreement(fingerprints: [other, Self.reference, Self.reference]).disagreeingRanks == [1, 2])
    }

    @Test("one process always agrees with itself (the local communicator's exchange)")
    func localRunAgrees() throws {
        let dir = NSTemporaryDirectory() + "bsvi-agreement-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try BinaryDatasetWriter.write(to: dir + "/d.h5", splits: [.init(name: .train, rows: 4, width: 4, values: .init(repeating: 1, count: 16))],
                                      imageHeight: 2, imageWidth: 2, source: "t")
        try LocalCommunicator().requireSameDataset(try BinaryDataset(path: dir + "/d.h5"))
    }
}
