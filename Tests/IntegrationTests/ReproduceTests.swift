import BSVIStorage
import Foundation
import Testing

/// scripts/reproduce --quick end to end on a toy dataset: every phase runs, results.json holds
/// every sweep point, run and test comparison, and the page's numbers are the ones in
/// results.json (nothing on the page is typed by hand).
@Suite("Reproduce script", .serialized)
struct ReproduceTests {
    @Test func quickCampaignWritesThePageFromItsOwnRuns() throws {
        let dir = try makeTemporaryDirectory(prefix: "repro")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeToyDataset(dir + "/toy.h5", train: 400, valid: 40, test: 30)
        let root = repositoryRoot.path
        let out = dir + "/out"
        var env = ["BSVI_DIST_BINARY": try binaryPath()]
        env["PATH"] = ProcessInfo.processInfo.environment["PATH"]
        let r = try runCommand("/usr/bin/env", ["python3", root + "/scripts/reproduce", "--quick", "--no-build", "--data", dir + "/toy.h5",
                                                "--out", out, "--ranks", "2"],
                               timeout: 900, environment: env, directory: root)
        try #require(r.status == 0, "\(r.stdout)\n\(r.stderr)")

        let results = try #require(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/results.json"))) as? [String: Any])
        // The sweep covers every update rule for both methods, each method's best is one of its points.
        let sweep = try #require(results["sweep"] as? [[String: Any]])
        for method in ["svi", "bsvi"] {
            for rule in ["sgd", "momentum", "adam"] {
                let points = sweep.filter { $0["method"] as? String == method && $0["rule"] as? String == rule }
                #expect(points.count >= 2, "sweep of \(method)/\(rule): \(points)")
                #expect(points.allSatisfy { ($0["valid"] as? Double)?.isFinite == true })
            }
        }
        // Each method's chosen (rule, η) was measured: by the sweep at k = 5 or by the η sweep
        // at the chosen k (η and k are tuned alternately), and its k by the k sweep.
        let best = try #require(results["best"] as? [String: [String: Any]])
        let etaAtK = try #require(results["eta_at_k"] as? [[String: Any]])
        let kSweep = try #require(results["k_sweep"] as? [[String: Any]])
        for method in ["svi", "bsvi"] {
            let b = try #require(best[method])
            let measured = sweep.map { $0.merging(["k": 5]) { a, _ in a } } + etaAtK
            #expect(measured.contains { $0["method"] as? String == method && $0["rule"] as? String == b["rule"] as? String
                                        && $0["lr"] as? Double == b["lr"] as? Double && $0["k"] as? Int == b["k"] as? Int },
                    "\(method): \(b) is not a measured point")
            #expect(kSweep.contains { $0["method"] as? String == method && $0["k"] as? Int == b["k"] as? Int })
            // When the alternation converged, the chosen η is the best one measured at the chosen k.
            let atK = etaAtK.filter { $0["method"] as? String == method && $0["k"] as? Int == b["k"] as? Int }
            if results["tuning_converged"] as? Bool == true, let top = atK.max(by: { ($0["valid"] as! Double) < ($1["valid"] as! Double) }) {
                #expect(top["lr"] as? Double == b["lr"] as? Double, "\(method): best η at k = \(b["k"]!) is \(top), chosen \(b)")
            }
        }
        #expect(results["tuning_converged"] is Bool)
        #expect((results["pi_sweep"] as? [Any])?.count == 3)

        // compare: the difference is the difference of the two means, per seed.
        let test = try #require(results["test"] as? [String: Any])
        let compare = try #require(test["compare"] as? [String: Any])
        var differences: [Double] = []
        for seed in ["1", "2"] {
            let c = try #require(compare[seed] as? [String: Any], "no compare for seed \(seed): \(compare.keys)")
            let d = try #require(c["difference"] as? Double), a = try #require(c["a_log_likelihood"] as? Double)
            let b = try #require(c["b_log_likelihood"] as? Double)
            #expect(abs(d - (a - b)) <= 1e-9 * max(1, abs(a)))
            #expect(c["examples"] as? Int == 30)
            differences.append(d)
        }
        let eval = try #require(test["eval"] as? [String: [String: [String: Any]]])
        for name in ["svi-equal-compute", "iwae", "vae"] {
            #expect(eval[name]?.values.allSatisfy { ($0["log_likelihood"] as? Double)?.isFinite == true } == true, "\(name): \(String(describing: eval[name]))")
        }

        // The page: every placeholder filled, the per-seed rows and the paired mean are results.json's numbers.
        let page = try String(contentsOfFile: out + "/results.md", encoding: .utf8)
        #expect(!page.contains("{") && !page.contains("}"), "unfilled placeholder in the page")
        for (i, seed) in ["1", "2"].enumerated() {
            let c = compare[seed] as! [String: Any]
            let row = "| \(seed) " + String(format: "| %.2f | %.2f | %+.2f ± %.2f |", c["a_log_likelihood"] as! Double,
                             c["b_log_likelihood"] as! Double, differences[i], c["difference_se"] as! Double)
            #expect(page.contains(row), "no per-seed row \(row)")
        }
        let mean = (differences[0] + differences[1]) / 2
        #expect(page.contains(String(format: "%+.2f ±", mean)), "paired mean \(mean) not on the page")

        // A standard error that bsvi-dist wrote as "nan" (one example: no spread) is printed as
        // nan; the page used to fail on the string.
        var withNaN = results, nanTest = test, nanCompare = compare
        nanCompare["1"] = (compare["1"] as! [String: Any]).merging(["difference_se": "nan"]) { _, new in new }
        nanTest["compare"] = nanCompare
        withNaN["test"] = nanTest
        try FileManager.default.createDirectory(atPath: dir + "/nan", withIntermediateDirectories: true)
        try JSONSerialization.data(withJSONObject: withNaN).write(to: URL(fileURLWithPath: dir + "/nan/results.json"))
        let nanPage = try runCommand("/usr/bin/env", ["python3", root + "/scripts/results-page", dir + "/nan"], environment: env, directory: root)
        #expect(nanPage.status == 0, "\(nanPage.stderr)")
        #expect(try String(contentsOfFile: dir + "/nan/results.md", encoding: .utf8).contains(String(format: "%+.2f ± nan |", differences[0])))

        // Figures: the validation curves and the sweep (matplotlib), and the sample grids:
        // 4 rows of prior samples + 3 rows (data, λ₀, λ_k) of 10 reconstructions, 4×4 tiles.
        for figure in ["validation-curves", "sweep"] {
            let size = try pngSize(out + "/images/\(figure).png")
            #expect(size.width >= 600 && size.height >= 300, "\(figure): \(size)")
        }
        for name in ["svi", "bsvi"] {
            let png = try PNGFile.readGray(out + "/images/samples-\(name).png")
            #expect(png.width == 10 * 5 + 1 && png.height == 7 * 5 + 1)
        }

        // A rerun finds every run (tuning runs are named by all their settings) and trains nothing.
        let before = try String(contentsOfFile: out + "/campaign.log", encoding: .utf8)
        let again = try runCommand("/usr/bin/env", ["python3", root + "/scripts/reproduce", "--quick", "--no-build", "--data", dir + "/toy.h5",
                                                    "--out", out, "--ranks", "2"],
                                   timeout: 900, environment: env, directory: root)
        try #require(again.status == 0, "\(again.stdout)\n\(again.stderr)")
        let rerun = try String(contentsOfFile: out + "/campaign.log", encoding: .utf8).dropFirst(before.count)
        #expect(rerun.contains("reproduce: done"), "\(rerun)")
        #expect(!rerun.contains("] train ") && !rerun.contains("moved to"), "the rerun retrained:\n\(rerun)")
    }

    /// Width and height from a PNG's IHDR chunk (any colour type).
    private func pngSize(_ path: String) throws -> (width: Int, height: Int) {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        try #require(bytes.count > 24 && bytes[0..<8] == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], "\(path) is not a PNG")
        func be32(_ i: Int) -> Int { bytes[i..<i + 4].reduce(0) { $0 << 8 | Int($1) } }
        return (be32(16), be32(20))
    }
}
