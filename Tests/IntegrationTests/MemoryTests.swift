import BSVIStorage
import Foundation
import Testing

/// Bounded memory (issue 6, Load): evaluation memory does not grow with K, training memory
/// does not grow across epochs.
@Suite("Memory", .serialized)
struct MemoryTests {
    /// 784-pixel rows, so that holding all K samples of an example at once (K × 784 floats,
    /// 62 MiB at K = 20,000) would show in the resident size.
    func writeWideDataset(_ path: String) throws {
        var v: [UInt8] = []
        for i in 0..<(120 * 784) { v.append(UInt8((i * 7 + i / 784) % 3 == 0 ? 1 : 0)) }
        try BinaryDatasetWriter.write(to: path, splits: [.init(name: .train, rows: 100, width: 784, values: Array(v[0..<(100 * 784)])),
                                                         .init(name: .test, rows: 20, width: 784, values: Array(v[(100 * 784)...]))],
                                      imageHeight: 28, imageWidth: 28, source: "test")
    }

    @Test func evaluationMemoryDoesNotGrowWithK() throws {
        let dir = try makeTemporaryDirectory(prefix: "memk")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeWideDataset(dir + "/wide.h5")
        let t = try bsvi(["train", "--data", dir + "/wide.h5", "--run-dir", dir + "/run", "--batch-size", "10", "--max-steps", "2",
                          "--hidden", "16", "--latent", "4", "--no-final-eval"])
        try #require(t.status == 0, "\(t.stderr)")
        func peak(_ k: Int) throws -> Double {
            let r = try bsvi(["eval", dir + "/run/final.h5", "--data", dir + "/wide.h5", "--limit", "2", "--samples", "\(k)", "--json"])
            try #require(r.status == 0, "\(r.stderr)")
            return try #require(try parseJSONLine(r.stdout)["peak_resident_mib"] as? Double)
        }
        let small = try peak(200), large = try peak(20_000)
        #expect(small > 0 && large < small + 8, "peak resident size grew from \(small) MiB (K=200) to \(large) MiB (K=20000)")
    }

    @Test func trainingMemoryDoesNotGrowAcrossEpochs() throws {
        let dir = try makeTemporaryDirectory(prefix: "memepochs")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeToyDataset(dir + "/toy.h5", train: 400)
        let r = try bsvi(["train", "--data", dir + "/toy.h5", "--run-dir", dir + "/run", "--batch-size", "8", "--epochs", "30",
                          "--no-final-eval", "--eval-every", "5", "--eval-samples", "20"] + Array(tinyModel.prefix(4)))
        try #require(r.status == 0, "\(r.stderr)")
        let lines = try String(contentsOfFile: dir + "/run/metrics.csv", encoding: .utf8).split(separator: "\n")
        let column = try #require(lines.first?.split(separator: ",").firstIndex(of: "resident_mib"))
        let rows = lines.filter { $0.hasPrefix("train,") }.map { $0.split(separator: ",", omittingEmptySubsequences: false) }
        let resident = rows.compactMap { Double($0[column]) }
        try #require(resident.count == 30)
        // After the first epochs have warmed every workspace, 1,500 more steps (and 5 evaluations,
        // 30 checkpoints) add nothing that stays.
        #expect(resident[29] <= resident[2] + 2, "resident MiB by epoch: \(resident)")
    }
}
