import BSVI
import BSVIStorage
import DataFixtures
import Foundation
import Testing

@Suite("Datasets with dynamic binarization: reading intensities")
struct DynamicDatasetTests {
    func prepareDynamic(_ dir: String) throws -> [UInt8] {
        let gray = DataFixtures.pseudoRandomBytes(12 * 4, seed: 71)
        try DataFixtures.write(dir + "/g.npy", DataFixtures.npy(gray.map(Double.init), shape: [12, 2, 2], type: .uint8))
        try runImport(dir) {
            $0.train = dir + "/g.npy"
            $0.test = dir + "/g.npy"
            $0.validFromTrain = 2
            $0.binarization = .dynamic
        }
        return gray
    }

    @Test("readIntensityRows returns /train's stored intensities for any row range; DynamicBinarization.draw makes them binary")
    func readsIntensities() throws {
        let dir = try makeScratchFolder("dyn-read")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let gray = try prepareDynamic(dir)
        let ds = try BinaryDataset(path: dir + "/out.h5")
        #expect(ds.isDynamic && ds.binarization == "dynamic")
        var rows = [UInt8](repeating: 0, count: 3 * 4)
        try rows.withUnsafeMutableBufferPointer { try ds.readIntensityRows(.train, rows: 4..<7, into: $0.baseAddress!) }
        #expect(rows == Array(gray[16..<28]))
        // The evaluation splits are binary and read as before.
        let valid = try ds.readAll(.valid)
        #expect(valid.array.allSatisfy { $0 == 0 || $0 == 1 })
        // The draw the trainer will make from them: deterministic, and 0/1.
        let x = FloatBuffer(count: 3 * 4)
        rows.withUnsafeBufferPointer {
            DynamicBinarization.draw(batch: [4, 5, 6], from: $0.baseAddress!, firstRow: 4, seed: 1, epoch: 0, into: x.matrix(rows: 3, cols: 4))
        }
        #expect(x.array.allSatisfy { $0 == 0 || $0 == 1 })
    }

    @Test("readRows on a dynamic /train says it is a dynamic-binarization dataset; intensities of binary splits are refused")
    func refusals() throws {
        let dir = try makeScratchFolder("dyn-refuse")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try prepareDynamic(dir)
        let ds = try BinaryDataset(path: dir + "/out.h5")
        #expect {
            _ = try ds.readAll(.train)
        } throws: { error in
            let text = "\(error)"
            return text.contains("out.h5") && text.contains("/train") && text.contains("dynamic binarization") && text.contains("--binarize")
        }
        var row = [UInt8](repeating: 0, count: 4)
        #expect {
            try row.withUnsafeMutableBufferPointer { try ds.readIntensityRows(.valid, rows: 0..<1, into: $0.baseAddress!) }
        } throws: { error in "\(error)".contains("/valid") && "\(error)".contains("binary values, not intensities") }
    }
}
