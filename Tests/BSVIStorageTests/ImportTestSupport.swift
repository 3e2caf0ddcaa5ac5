import BSVI
import BSVIStorage
import DataFixtures
import Foundation
import Testing

/// Runs `prepare-data`'s importer on a request built by `configure`, writing `dir`/out.h5.
@discardableResult
func runImport(_ dir: String, seed: UInt64 = 5, _ configure: (inout DataImportRequest) -> Void) throws -> ImportSummary {
    var request = DataImportRequest(seed: seed)
    request.output = dir + "/out.h5"
    request.force = true
    configure(&request)
    return try DatasetImporter.run(request)
}

/// The bytes of a split of `dir`/out.h5.
func stored(_ dir: String, _ split: DataSplit, file: String = "out.h5") throws -> [UInt8] {
    try splitBytes(dir + "/" + file, split.rawValue)
}

func rootAttribute(_ dir: String, _ name: String) throws -> String {
    try HDF5File.open(dir + "/out.h5").stringAttribute(name)
}

func intAttribute(_ dir: String, _ name: String) throws -> Int64 {
    try HDF5File.open(dir + "/out.h5").scalarInt64Attribute(name)
}

/// The StorageError an import throws (the test fails if it does not throw one).
func importError(_ dir: String, _ configure: (inout DataImportRequest) -> Void,
                 sourceLocation: SourceLocation = #_sourceLocation) -> StorageError? {
    do {
        try runImport(dir, configure)
        Issue.record("the import succeeded; expected an error", sourceLocation: sourceLocation)
    } catch let e as StorageError {
        return e
    } catch {
        Issue.record("expected a StorageError, got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

/// Expects `error` to be of `kind` and its text to mention every string of `mentions`.
func expectError(_ error: StorageError?, _ kind: FailureKind, mentions: [String], sourceLocation: SourceLocation = #_sourceLocation) {
    guard let error else { return }
    #expect(error.kind == kind, "kind \(String(describing: error.kind)), expected \(kind): \(error)", sourceLocation: sourceLocation)
    for m in mentions {
        #expect(error.description.contains(m), "the message should mention '\(m)': \(error)", sourceLocation: sourceLocation)
    }
    #expect(error.fix != nil, "the message should say what to do: \(error)", sourceLocation: sourceLocation)
}

/// The Bernoulli binarization `prepare-data` documents: pixel c of row r of a split is 1 when
/// uniform number c of the stream keyed by (seed, split index, r) is below the intensity.
func expectedBernoulli(_ intensities: [Double], width: Int, seed: UInt64, split: DataSplit) -> [UInt8] {
    let splitKey = UInt64(DataSplit.allCases.firstIndex(of: split)!)
    return intensities.enumerated().map { i, p in
        RandomStream(seed: seed, purpose: .binarization, splitKey, UInt64(i / width)).uniform(UInt64(i % width)) < p ? 1 : 0
    }
}

/// Random 0/1 bytes.
func randomBits(_ count: Int, seed: UInt64) -> [UInt8] { DataFixtures.pseudoRandomBytes(count, seed: seed, below: 2) }
