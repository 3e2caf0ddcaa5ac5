@testable import BSVITraining
import BSVI
import BSVIStorage
import Foundation
import Testing

/// The trainer's data path on a dynamic-binarization dataset: EpochRows reads a rank's
/// intensities of an epoch and draws each step's binary images from them, keyed by (training
/// seed, epoch, global example id) — DESIGN.md §4 and §5.
@Suite("Dynamic binarization through the trainer's data path")
struct DynamicEpochRowsTests {
    /// A dynamic dataset whose /train is `intensities` (rows × width), written as prepare-data
    /// writes it (uint8 /train, root attribute binarization = "dynamic"), with small binary
    /// /valid and /test.
    final class DynamicFile {
        let folder: String
        var path: String { folder + "/dynamic.h5" }
        let intensities: [UInt8]
        let rows: Int
        let width: Int

        init(rows: Int, width: Int, intensities: [UInt8]) throws {
            precondition(intensities.count == rows * width)
            self.rows = rows
            self.width = width
            self.intensities = intensities
            folder = NSTemporaryDirectory() + "bsvi-dynamic-rows-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            let bits = [UInt8](repeating: 1, count: 2 * width)
            try BinaryDatasetWriter.write(to: path, splits: [
                .init(name: .train, rows: rows, width: width, values: intensities),
                .init(name: .valid, rows: 2, width: width, values: bits),
                .init(name: .test, rows: 2, width: width, values: bits),
            ], imageHeight: 1, imageWidth: width, source: "test")
            let file = try HDF5File.open(path, writable: true)
            try file.setAttribute("binarization", "dynamic")
            try file.close()
        }

        deinit { try? FileManager.default.removeItem(atPath: folder) }

        func open() throws -> BinaryDataset {
            let dataset = try BinaryDataset(path: path)
            try #require(dataset.values(of: .train) == .intensities)
            return dataset
        }

        /// The image DynamicBinarization draws for `example` in `epoch` from its stored row.
        func expectedImage(seed: UInt64, epoch: Int, example: Int) -> [Float] {
            var out = [Float](repeating: .nan, count: width)
            intensities.withUnsafeBufferPointer { i in
                out.withUnsafeMutableBufferPointer {
                    DynamicBinarization.draw(intensities: i.baseAddress! + example * width, width: width, seed: seed, epoch: epoch,
                                             example: example, into: $0.baseAddress!)
                }
            }
            return out
        }
    }

    /// Every image a rank's EpochRows gives in `epoch`, by global example id.
    static func images(_ rows: EpochRows, epoch: Int, seed: UInt64, dataset: BinaryDataset) throws -> [Int: [Float]] {
        try rows.load(epoch: epoch, seed: seed, from: dataset)
        let b = rows.plan.localBatch
        let x = FloatBuffer(count: b * rows.width)
        var ids = [Int](repeating: -1, count: b)
        var images: [Int: [Float]] = [:]
        for t in 0..<rows.plan.stepsPerEpoch {
            rows.fill(step: t, x: x.matrix(rows: b, cols: rows.width), exampleIDs: &ids)
            for (i, id) in ids.enumerated() {
                #expect(images[id] == nil, "example \(id) twice in epoch \(epoch)")
                images[id] = Array(x.array[(i * rows.width)..<((i + 1) * rows.width)])
            }
        }
        return images
    }

    @Test("over 10,000 epochs the mean of every pixel EpochRows gives is intensity/255 (within 5 standard errors); 0 and 255 never vary")
    func meanOfDrawsMatchesIntensities() throws {
        // 8 rows of 32 pixels hold every intensity 0…255 once, in an order that is not the row
        // order (167 is odd, so i ↦ 167·i mod 256 is a permutation): a row mixed up with
        // another would show up as the wrong mean.
        let file = try DynamicFile(rows: 8, width: 32, intensities: (0..<256).map { UInt8($0 * 167 % 256) })
        let dataset = try file.open()
        // Batch 4 of 8 rows: every row is used once in every epoch (no partial batch dropped).
        let rows = EpochRows(plan: ShardPlan(totalRows: 8, worldSize: 1, rank: 0, globalBatch: 4), width: 32,
                             values: dataset.values(of: .train))
        let epochs = 10_000
        var ones = [Int](repeating: 0, count: file.intensities.count)
        var notBinary = 0, incompleteEpochs = 0
        for epoch in 0..<epochs {
            let images = try Self.images(rows, epoch: epoch, seed: 21, dataset: dataset)
            if images.count != 8 { incompleteEpochs += 1 }
            for (example, image) in images {
                for d in 0..<32 {
                    if image[d] == 1 { ones[example * 32 + d] += 1 } else if image[d] != 0 { notBinary += 1 }
                }
            }
        }
        #expect(rows.loads == epochs && incompleteEpochs == 0)
        #expect(notBinary == 0, "\(notBinary) pixels were neither 0 nor 1")
        // Each mean is a binomial proportion over E = 10,000 independent epochs: standard error
        // √(p(1−p)/E) ≤ 0.005. A 5σ bound fails by chance with probability 5.7e-7 per pixel,
        // 1.5e-4 for all 256. One image kept for every epoch (no fresh draw) would give means of
        // exactly 0 or 1, min(p, 1−p) ≥ 1/255 = 0.0039 from p, beyond the bound (≤ 0.0032 at
        // p = 1/255, larger p further out) for every intensity strictly between 0 and 255.
        for (i, intensity) in file.intensities.enumerated() {
            let p = Double(intensity) / 255
            let mean = Double(ones[i]) / Double(epochs)
            let bound = 5 * (p * (1 - p) / Double(epochs)).squareRoot()
            #expect(abs(mean - p) <= bound, "row \(i / 32), pixel \(i % 32), intensity \(intensity): mean \(mean) (bound \(bound))")
            if intensity == 0 || intensity == 255 { #expect(ones[i] == (intensity == 255 ? epochs : 0)) }
        }
    }

    @Test("on P = 1, 2, 3 and 4 ranks every example of an epoch is the image DynamicBinarization draws for (seed, epoch, example id); a resumed run's EpochRows draws the same",
          arguments: [1, 2, 3, 4])
    func drawsDoNotDependOnRanks(ranks: Int) throws {
        // 30 rows, batch 7: 4 steps an epoch with 2 rows left out; slices of 4,3 / 3,2,2 / 2,2,2,1.
        let n = 30, width = 20, seed: UInt64 = 8
        let file = try DynamicFile(rows: n, width: width, intensities: (0..<(n * width)).map { UInt8(($0 * 97 + 13) % 256) })
        let dataset = try file.open()
        for epoch in 0..<3 {
            var union: [Int: [Float]] = [:]
            for rank in 0..<ranks {
                let plan = ShardPlan(totalRows: n, worldSize: ranks, rank: rank, globalBatch: 7)
                let rows = EpochRows(plan: plan, width: width, values: .intensities)
                // Walk the epochs before this one first, as an uninterrupted run does …
                for earlier in 0..<epoch { try rows.load(epoch: earlier, seed: seed, from: dataset) }
                let walked = try Self.images(rows, epoch: epoch, seed: seed, dataset: dataset)
                // … and start at this epoch, as a run resumed here does.
                let resumed = try Self.images(EpochRows(plan: plan, width: width, values: .intensities), epoch: epoch, seed: seed,
                                              dataset: dataset)
                #expect(walked == resumed, "rank \(rank) of \(ranks), epoch \(epoch)")
                for (id, image) in walked {
                    #expect(union[id] == nil, "example \(id) on two ranks")
                    union[id] = image
                }
            }
            let used = Set(ShardPlan.epochPermutation(totalRows: n, seed: seed, epoch: epoch).prefix(4 * 7))
            #expect(Set(union.keys) == used, "epoch \(epoch): the ranks together use the epoch's 28 rows")
            for (id, image) in union {
                #expect(image == file.expectedImage(seed: seed, epoch: epoch, example: id), "P=\(ranks), epoch \(epoch), example \(id)")
            }
        }
        // The draw is keyed by the epoch: every example that appears in epochs 0 and 1 changes.
        #expect(file.expectedImage(seed: seed, epoch: 0, example: 3) != file.expectedImage(seed: seed, epoch: 1, example: 3))
    }

    @Test("a static dataset's rows are still the stored bits, and its EpochRows reads them as binary")
    func staticRowsUnchanged() throws {
        let n = 12, width = 8
        let bits = (0..<(n * width)).map { UInt8(($0 * 7 + $0 / width) % 3 == 0 ? 1 : 0) }
        let folder = NSTemporaryDirectory() + "bsvi-static-rows-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try BinaryDatasetWriter.write(to: folder + "/s.h5", splits: [.init(name: .train, rows: n, width: width, values: bits)],
                                      imageHeight: 2, imageWidth: 4, source: "test")
        let dataset = try BinaryDataset(path: folder + "/s.h5")
        #expect(dataset.values(of: .train) == .binary)
        let rows = EpochRows(plan: ShardPlan(totalRows: n, worldSize: 1, rank: 0, globalBatch: 4), width: width,
                             values: dataset.values(of: .train))
        for epoch in 0..<2 {
            for (id, image) in try Self.images(rows, epoch: epoch, seed: 3, dataset: dataset) {
                #expect(image == bits[(id * width)..<((id + 1) * width)].map(Float.init), "epoch \(epoch), example \(id)")
            }
        }
    }
}
