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
        // The draw the trainer makes from them: deterministic, and 0/1.
        let x = FloatBuffer(count: 3 * 4)
        rows.withUnsafeBufferPointer {
            DynamicBinarization.draw(batch: [4, 5, 6], from: $0.baseAddress!, firstRow: 4, seed: 1, epoch: 0, into: x.matrix(rows: 3, cols: 4))
        }
        #expect(x.array.allSatisfy { $0 == 0 || $0 == 1 })
    }

    @Test("the chunk-wise read of scattered rows returns their stored intensities, each chunk once, as readRows does for binary rows")
    func scatteredIntensities() throws {
        let dir = try makeScratchFolder("dyn-scattered")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let chunk = BinaryDatasetWriter.chunkRows
        let n = 2 * chunk + chunk / 2, width = 4
        let gray = DataFixtures.pseudoRandomBytes((n + 2) * width, seed: 72)
        try DataFixtures.write(dir + "/g.npy", DataFixtures.npy(gray.map(Double.init), shape: [n + 2, width], type: .uint8))
        try runImport(dir) {
            $0.train = dir + "/g.npy"
            $0.test = dir + "/g.npy"
            $0.validFromTrain = 2
            $0.binarization = .dynamic
            $0.imageShape = ImageShape(height: 2, width: 2)
        }
        let ds = try BinaryDataset(path: dir + "/out.h5")
        #expect(ds.values(of: .train) == .intensities && ds.values(of: .valid) == .binary && ds.values(of: .test) == .binary)
        // Rows in chunks 0 and 2 (the last, partial one), none in chunk 1.
        let rows = [0, 3, chunk - 1, 2 * chunk, 2 * chunk + 17, n - 1]
        var out = [UInt8](repeating: 0, count: rows.count * width)
        let stats = try out.withUnsafeMutableBufferPointer { try ds.readIntensityRows(.train, ascending: rows, into: $0.baseAddress!) }
        #expect(out == rows.flatMap { gray[($0 * width)..<(($0 + 1) * width)] })
        #expect(out.contains { $0 > 1 }, "the fixture should hold intensities, not bits")
        #expect(stats.rows == rows.count && stats.blocks == 2 && stats.bytesRead == (chunk + n - 2 * chunk) * width)
    }

    @Test("the start-up check accepts a dynamic /train's intensities; the same bytes in a file without binarization = dynamic are refused")
    func validateAcceptsIntensitiesOnlyWhenDynamic() throws {
        let dir = try makeScratchFolder("dyn-validate")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let gray = try prepareDynamic(dir)
        let ds = try BinaryDataset(path: dir + "/out.h5")
        let (n, width) = try ds.shape(of: .train)
        try ds.validateRows(.train, rows: 0..<n)
        try ds.validateRows(.valid, rows: 0..<(try ds.shape(of: .valid).rows))
        // A static file (no binarization attribute) holding the same intensities in /train.
        try BinaryDatasetWriter.write(to: dir + "/static.h5", splits: [.init(name: .train, rows: n, width: width,
                                                                             values: Array(gray.prefix(n * width)))],
                                      imageHeight: 2, imageWidth: 2, source: "test")
        let plain = try BinaryDataset(path: dir + "/static.h5")
        #expect(plain.values(of: .train) == .binary)
        #expect {
            try plain.validateRows(.train, rows: 0..<n)
        } throws: { error in "\(error)".contains("static.h5") && "\(error)".contains("values are not 0/1") }
    }

    @Test("a binary read of a dynamic /train is refused before reading, naming the file, the split and what to use; intensities of binary splits are refused")
    func refusals() throws {
        let dir = try makeScratchFolder("dyn-refuse")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try prepareDynamic(dir)
        let ds = try BinaryDataset(path: dir + "/out.h5")
        func expectRefused(_ read: () throws -> Void) {
            #expect {
                try read()
            } throws: { error in
                let text = "\(error)"
                return (error as? StorageError)?.kind == .badData && text.contains("out.h5") && text.contains("/train")
                    && text.contains("intensities 0–255 for dynamic binarization") && text.contains("/valid or /test")
            }
        }
        expectRefused { _ = try ds.readAll(.train) }
        // Rows 0 and 1 of the fixture might happen to be 0/1; the refusal does not depend on the values.
        var bytes = [UInt8](repeating: 0, count: 2 * 4)
        expectRefused { try bytes.withUnsafeMutableBufferPointer { _ = try ds.readRows(.train, ascending: [0, 1], into: $0.baseAddress!) } }
        var row = [UInt8](repeating: 0, count: 4)
        #expect {
            try row.withUnsafeMutableBufferPointer { try ds.readIntensityRows(.valid, rows: 0..<1, into: $0.baseAddress!) }
        } throws: { error in "\(error)".contains("/valid") && "\(error)".contains("binary values, not intensities") }
        #expect {
            try row.withUnsafeMutableBufferPointer { _ = try ds.readIntensityRows(.test, ascending: [0], into: $0.baseAddress!) }
        } throws: { error in "\(error)".contains("/test") && "\(error)".contains("binary values, not intensities") }
    }
}
