import BSVIStorage
import Foundation
import Testing

/// scripts/reproduce --quick end to end on a toy dataset: every row of the comparison is
/// produced and every picture decodes with the expected size.
@Suite("Reproduce script", .serialized)
struct ReproduceTests {
    @Test func quickReproduceProducesEveryRowAndPicture() throws {
        let dir = try makeTemporaryDirectory(prefix: "repro")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeToyDataset(dir + "/toy.h5", train: 400, valid: 40, test: 30)
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        let out = dir + "/out"
        var env = ["BSVI_DIST_BINARY": try binaryPath()]
        env["PATH"] = ProcessInfo.processInfo.environment["PATH"]
        let r = try runCommand("/bin/bash", [root + "/scripts/reproduce", "--quick", "--no-build", "--data", dir + "/toy.h5",
                                             "--out", out, "--image-size", "4x4", "--ranks", "2"],
                               timeout: 600, environment: env, directory: root)
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        let table = try String(contentsOfFile: out + "/table.md", encoding: .utf8)
        for run in ["vae", "iwae", "svi", "bsvi-uniform", "bsvi-last", "bsvi-learned", "sweep-bsvi-uniform-lr0.05"] {
            let row = try #require(table.split(separator: "\n").first { $0.hasPrefix("| \(run) |") }, "no row for \(run):\n\(table)")
            let cells = row.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            // Every non-sweep row has a finite test log-likelihood; every row a validation one.
            if !run.hasPrefix("sweep") { #expect(Double(cells[5]) != nil, "\(row)") }
            #expect(Double(cells[9]) != nil, "\(row)")
        }
        // bsvi with π = last optimizes svi's objective on the same samples: identical results.
        func cells(_ run: String) -> [String] {
            table.split(separator: "\n").first { $0.hasPrefix("| \(run) |") }!.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
        }
        #expect(cells("bsvi-last")[5...9] == cells("svi")[5...9])
        // Sample grids: 4 rows of prior samples + 3 rows (data, λ₀, λ_k) of 10 reconstructions, 4×4 tiles.
        for name in ["svi", "bsvi-uniform", "bsvi-last", "bsvi-learned"] {
            let png = try PNGFile.readGray(out + "/samples-\(name).png")
            #expect(png.width == 10 * 5 + 1 && png.height == 7 * 5 + 1)
        }
        let curves = try PNGFile.readGray(out + "/curves.png")
        #expect(curves.width == 1200 && curves.height == 450)
    }
}
