import Foundation
import Testing

/// Tests on Fashion-MNIST from Debian's dataset-fashion-mnist (installed by scripts/install-deps).
@Suite("Real data", .serialized)
struct RealDataTests {
    static let source = "/usr/share/datasets/fashion-mnist"

    @Test("SVI refinement raises the average ELBO of a fixed decoder on Fashion-MNIST",
          .enabled(if: FileManager.default.fileExists(atPath: source + "/train-images-idx3-ubyte.gz")))
    func refinementRaisesELBO() throws {
        let dir = try makeTemporaryDirectory(prefix: "real")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = dir + "/fm.h5"
        let p = try bsvi(["prepare-data", "--output", data])
        #expect(p.status == 0, "\(p.stderr)")
        // A briefly trained model: the decoder is then fixed during evaluation's refinement.
        let t = try bsvi(["train", "--data", data, "--run-dir", dir + "/run", "--method", "vae", "--max-steps", "150", "--no-final-eval"])
        #expect(t.status == 0, "\(t.stderr)")
        for (rule, lr) in [("sgd", "0.002"), ("adam", "0.02")] {
            let e = try bsvi(["eval", dir + "/run/final.h5", "--data", data, "--split", "valid", "--limit", "200", "--samples", "10",
                              "--refine-steps", "5", "--svi-rule", rule, "--svi-lr", lr, "--json"])
            #expect(e.status == 0, "\(e.stderr)")
            let j = try parseJSONLine(e.stdout)
            let before = try #require(j["elbo"] as? Double), after = try #require(j["elbo_refined"] as? Double)
            #expect(after > before, "\(rule) η=\(lr): ELBO(λ₀) \(before) → ELBO(λ₅) \(after)")
        }
    }
}
