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
        /// The quick campaign into `out`, run with `binary` as bsvi-dist; it must succeed.
        func campaign(binary: String? = nil) throws {
            var environment = env
            if let binary { environment["BSVI_DIST_BINARY"] = binary }
            let r = try runCommand("/usr/bin/env", ["python3", root + "/scripts/reproduce", "--quick", "--no-build", "--data", dir + "/toy.h5",
                                                    "--out", out, "--ranks", "2"],
                                   timeout: 900, environment: environment, directory: root)
            try #require(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        }
        try campaign()

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
        try campaign()
        let rerun = try String(contentsOfFile: out + "/campaign.log", encoding: .utf8).dropFirst(before.count)
        #expect(rerun.contains("reproduce: done"), "\(rerun)")
        #expect(!rerun.contains("] train ") && !rerun.contains("moved to"), "the rerun retrained:\n\(rerun)")

        // What a full disk or a crash leaves: a run whose summary.json is missing (final.h5 in
        // place) and result files with no JSON line. The next rerun finishes the run (it used to
        // drop its seed from the page, or fail reading summary.json) and evaluates again (it used
        // to stop with an IndexError).
        let fm = FileManager.default
        let tuning = try #require(try fm.contentsOfDirectory(atPath: out + "/runs").sorted().first { $0.hasPrefix("tune-") })
        try fm.removeItem(atPath: out + "/runs/svi-equal-compute/seed2/summary.json")
        for empty in [out + "/runs/\(tuning)/seed1/valid.json", out + "/test/compare-bsvi-svi-seed1.json"] {
            try Data().write(to: URL(fileURLWithPath: empty))
        }
        let beforeRepair = try String(contentsOfFile: out + "/campaign.log", encoding: .utf8)
        try campaign()
        let repair = try String(contentsOfFile: out + "/campaign.log", encoding: .utf8).dropFirst(beforeRepair.count)
        #expect(repair.contains("train svi-equal-compute seed 2") && repair.contains("test: compare bsvi svi seed 1"), "\(repair)")
        #expect(fm.fileExists(atPath: out + "/runs/svi-equal-compute/seed2/summary.json"))
        let repairedResults = try #require(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/results.json"))) as? [String: Any])
        let repairedCompare = try #require((repairedResults["test"] as? [String: Any])?["compare"] as? [String: [String: Any]])
        #expect(repairedCompare["1"]?["difference"] as? Double == differences[0])
        #expect(try fm.contentsOfDirectory(atPath: out).allSatisfy { !$0.hasPrefix(".") }, "a temp file was left")

        // bsvi's cost per example, and so svi's equal-compute epochs, changed since the runs
        // were made (k retuned, another binary): a stand-in reports 4× bsvi's multiply-adds. The
        // equal-compute runs are continued to the new count, and set aside and trained again when
        // the count falls back; they used to be kept at their old count under the new one's name.
        let standIn = dir + "/bsvi-dist-costlier-bsvi"
        try """
            #!/usr/bin/env bash
            if [[ $1 == bench && " $* " == *" --method bsvi "* ]]; then
              "\(try binaryPath())" "$@" | python3 -c '
            import json, sys
            for line in sys.stdin:
                if line.startswith("{"):
                    d = json.loads(line); d["useful_multiply_adds_per_example"] *= 4; print(json.dumps(d))
                else:
                    print(line, end="")'
              exit ${PIPESTATUS[0]}
            fi
            exec "\(try binaryPath())" "$@"

            """.write(toFile: standIn, atomically: true, encoding: .utf8)
        try fm.setAttributes([.posixPermissions: 0o755], ofItemAtPath: standIn)
        func equalComputeEpochs(_ binary: String) throws -> (asked: Int, trained: [Int]) {
            try campaign(binary: binary)
            let report = try #require(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/results.json"))) as? [String: Any])
            let asked = try #require((report["equal_compute"] as? [String: Any])?["epochs"] as? Int)
            let trained = try ["1", "2"].map { seed in
                try #require(try readJSON(out + "/runs/svi-equal-compute/seed\(seed)/summary.json")["epoch"] as? Int)
            }
            return (asked, trained)
        }
        let original = try #require((results["equal_compute"] as? [String: Any])?["epochs"] as? Int)
        let grown = try equalComputeEpochs(standIn)
        #expect(grown.asked > original && grown.trained == [grown.asked, grown.asked], "\(grown), was \(original)")
        let back = try equalComputeEpochs(try binaryPath())
        #expect(back.asked == original && back.trained == [original, original], "\(back)")

        // A non-finite difference (bsvi-dist writes "nan") is a number the page shows, not a
        // traceback (statistics.stdev raises on NaN).
        var nanDifference = results, nanDifferenceTest = test, nanDifferenceCompare = compare
        nanDifferenceCompare["2"] = (compare["2"] as! [String: Any]).merging(["difference": "nan"]) { _, new in new }
        nanDifferenceTest["compare"] = nanDifferenceCompare
        nanDifference["test"] = nanDifferenceTest
        try fm.createDirectory(atPath: dir + "/nandiff", withIntermediateDirectories: true)
        try JSONSerialization.data(withJSONObject: nanDifference).write(to: URL(fileURLWithPath: dir + "/nandiff/results.json"))
        let nanDiffPage = try runCommand("/usr/bin/env", ["python3", root + "/scripts/results-page", dir + "/nandiff"], environment: env, directory: root)
        #expect(nanDiffPage.status == 0 && !nanDiffPage.stderr.contains("Traceback"), "\(nanDiffPage.stderr)")

        // Refusals with bsvi-dist's statuses, never a traceback.
        try fm.createDirectory(atPath: dir + "/broken", withIntermediateDirectories: true)
        try "{ not json".write(toFile: dir + "/broken/results.json", atomically: true, encoding: .utf8)
        try fm.createDirectory(atPath: dir + "/partial", withIntermediateDirectories: true)
        try #"{"seeds": [1, 2]}"#.write(toFile: dir + "/partial/results.json", atomically: true, encoding: .utf8)
        for (arguments, status, says) in [
            ([root + "/scripts/results-page", dir + "/nowhere"], 66, "results.json not found"),
            ([root + "/scripts/results-page", dir + "/broken"], 65, "cannot be read"),
            ([root + "/scripts/results-page", dir + "/partial"], 65, "lacks what the page needs"),
            ([root + "/scripts/reproduce", "--quick", "--no-build", "--bogus"], 64, "unrecognized arguments"),
            ([root + "/scripts/reproduce", "--quick", "--no-build", "--data", dir + "/nowhere.h5", "--out", dir + "/o"], 66, "no such file"),
        ] {
            let refused = try runCommand("/usr/bin/env", ["python3"] + arguments, environment: env, directory: root)
            #expect(refused.status == Int32(status) && refused.stderr.contains(says) && !refused.stderr.contains("Traceback"),
                    "\(arguments): \(refused.status) \(refused.stderr)")
        }
        #expect(!fm.fileExists(atPath: dir + "/partial/results.md") && !fm.fileExists(atPath: dir + "/o"))
    }

    @Test("campaign_seconds adds each invocation's time, also one that runs past midnight and for more than a day")
    func campaignSeconds() throws {
        let dir = try makeTemporaryDirectory(prefix: "campaignlog")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Invocation 1: 10:00 → 20:00 → 09:00 (next day) → 11:00, 25 h; then a pause; invocation 2:
        // 23:30 → 00:15, 45 min.
        try """
            [10:00:00] reproduce: full campaign, 2 ranks, data d.h5 → out
            [20:00:00] train svi seed 1
            [09:00:00] train svi seed 2
            [11:00:00] reproduce: done
            [23:30:00] reproduce: full campaign, 2 ranks, data d.h5 → out
            [00:15:00] reproduce: done

            """.write(toFile: dir + "/campaign.log", atomically: true, encoding: .utf8)
        let script = repositoryRoot.appendingPathComponent("scripts/reproduce").path
        let r = try runCommand("/usr/bin/env", ["python3", "-c", """
            import importlib.machinery, importlib.util
            loader = importlib.machinery.SourceFileLoader("reproduce", "\(script)")
            module = importlib.util.module_from_spec(importlib.util.spec_from_loader("reproduce", loader))
            loader.exec_module(module)
            print(module.campaign_seconds("\(dir)/campaign.log"))
            """])
        #expect(r.status == 0 && r.stdout == "\(Double(25 * 3600 + 45 * 60))\n", "\(r.stdout)\n\(r.stderr)")
    }

    /// Width and height from a PNG's IHDR chunk (any colour type).
    private func pngSize(_ path: String) throws -> (width: Int, height: Int) {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        try #require(bytes.count > 24 && bytes[0..<8] == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], "\(path) is not a PNG")
        func be32(_ i: Int) -> Int { bytes[i..<i + 4].reduce(0) { $0 << 8 | Int($1) } }
        return (be32(16), be32(20))
    }
}
