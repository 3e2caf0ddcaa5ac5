import BSVI
import BSVIStorage
import BSVITraining
import Foundation
import Testing

/// A tiny model trained on the toy data (latent size `latent`, `epochs` epochs from `seed`).
func trainTinyCheckpoint(data: String, runDir: String, seed: Int, epochs: Int = 2, latent: Int = 2, activation: String = "tanh") throws -> String {
    let r = try bsvi(["train", "--data", data, "--run-dir", runDir, "--batch-size", "16", "--epochs", "\(epochs)", "--seed", "\(seed)",
                      "--hidden", "8", "--latent", "\(latent)", "--activation", activation, "--eval-samples", "20", "--no-final-eval",
                      "--method", "svi", "--k", "2"])
    #expect(r.status == 0, "\(r.stderr)")
    return runDir + "/final.h5"
}

/// Each example's values computed in this process, as eval computes them (one example at a
/// time, the checkpoint's refinement, noise keyed by seed and row).
func directEvaluation(checkpoint: String, data: String, split: DataSplit = .test, samples: Int, seed: UInt64) throws -> [ExampleEvaluation] {
    let c = try CheckpointFile.read(checkpoint)
    let refinement = RunConfiguration.evaluationRefinement(checkpointConfig: c.training?.configJSON)
    let sampler = ImportanceSampler(model: c.model, samples: samples, batchCapacity: 1, refinement: refinement, chunk: 500)
    let dataset = try BinaryDataset(path: data)
    let (n, width) = try dataset.shape(of: split)
    let params = FloatBuffer(c.parameters)
    // The matrix is a view: its buffer must outlive every use.
    let xBuffer = FloatBuffer(count: width)
    let x = xBuffer.matrix(rows: 1, cols: width)
    return try withExtendedLifetime(xBuffer) {
        try (0..<n).map { row in
            try dataset.readRows(split, rows: row..<(row + 1), into: x)
            return sampler.evaluate(x: x, exampleIDs: [row], seed: seed, params: params)[0]
        }
    }
}

/// Sample standard deviation / √n and numpy's default percentile, written out here rather than
/// taken from SampleStatistics, so the command is checked against the definitions.
enum Definitions {
    static func mean(_ x: [Double]) -> Double { x.reduce(0, +) / Double(x.count) }
    static func standardError(_ x: [Double]) -> Double {
        let m = mean(x)
        return (x.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(x.count - 1)).squareRoot() / Double(x.count).squareRoot()
    }
    static func percentile(_ x: [Double], _ p: Double) -> Double {
        let s = x.sorted(), h = Double(s.count - 1) * p / 100, lo = Int(h)
        return lo + 1 < s.count ? s[lo] + (h - Double(lo)) * (s[lo + 1] - s[lo]) : s[lo]
    }
}

func expectClose(_ a: Double?, _ b: Double, _ what: String, relative: Double = 1e-9) {
    guard let a else { Issue.record("\(what) missing"); return }
    #expect(abs(a - b) <= relative * max(1, abs(b)), "\(what): \(a) vs \(b)")
}

@Suite("eval statistics and compare, single process", .serialized)
struct EvaluationStatisticsTests {
    static let samples = 60
    static let seed: UInt64 = 3

    @Test("eval --per-example: each example's values are the in-process sampler's; the JSON is their mean, SE, percentile")
    func evalPerExample() throws {
        let dir = try makeTemporaryDirectory(prefix: "evalstats")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = dir + "/toy.h5"
        try writeToyDataset(data)
        let checkpoint = try trainTinyCheckpoint(data: data, runDir: dir + "/run", seed: 5)
        let r = try bsvi(["eval", checkpoint, "--data", data, "--samples", "\(Self.samples)", "--seed", "\(Self.seed)", "--json",
                          "--per-example", dir + "/examples.h5"])
        #expect(r.status == 0, "\(r.stderr)")
        let j = try parseJSONLine(r.stdout)
        let (file, named) = try PerExampleFile.read(dir + "/examples.h5")
        #expect(named == checkpoint && file.split == .test && file.samples == Self.samples && file.seed == Self.seed)
        #expect(file.examples == 20 && j["examples"] as? Int == 20)

        let direct = try directEvaluation(checkpoint: checkpoint, data: data, samples: Self.samples, seed: Self.seed)
        for (row, d) in direct.enumerated() {
            expectClose(file.logLikelihood[row], d.estimate.logLikelihood, "row \(row) log p̂")
            expectClose(file.elbo[row], d.elboInitial, "row \(row) ELBO(λ₀)")
            expectClose(file.elboRefined[row], d.elboRefined, "row \(row) ELBO(λ_k)")
            expectClose(file.essFraction[row], d.estimate.essFraction, "row \(row) ESS/K")
            expectClose(file.maxWeight[row], d.estimate.maxWeight, "row \(row) max weight")
        }
        // The weights must actually vary for the diagnostics to be tested.
        #expect(file.essFraction.allSatisfy { $0 > 1 / Double(Self.samples) && $0 <= 1 })
        #expect(file.essFraction.contains { $0 < 0.99 })

        expectClose(j["log_likelihood"] as? Double, Definitions.mean(file.logLikelihood), "log_likelihood", relative: 1e-12)
        expectClose(j["log_likelihood_se"] as? Double, Definitions.standardError(file.logLikelihood), "log_likelihood_se", relative: 1e-12)
        expectClose(j["elbo_se"] as? Double, Definitions.standardError(file.elbo), "elbo_se", relative: 1e-12)
        expectClose(j["elbo_refined_se"] as? Double, Definitions.standardError(file.elboRefined), "elbo_refined_se", relative: 1e-12)
        expectClose(j["ess_fraction_mean"] as? Double, Definitions.mean(file.essFraction), "ess_fraction_mean", relative: 1e-12)
        expectClose(j["ess_fraction_p05"] as? Double, Definitions.percentile(file.essFraction, 5), "ess_fraction_p05", relative: 1e-12)
        expectClose(j["max_weight_mean"] as? Double, Definitions.mean(file.maxWeight), "max_weight_mean", relative: 1e-12)
        #expect((j["log_likelihood_se"] as? Double ?? 0) > 0)

        // The text report shows the same numbers with their standard errors.
        let text = try bsvi(["eval", checkpoint, "--data", data, "--samples", "\(Self.samples)", "--seed", "\(Self.seed)"])
        #expect(text.status == 0, "\(text.stderr)")
        let ll = try #require(j["log_likelihood"] as? Double), se = try #require(j["log_likelihood_se"] as? Double)
        #expect(text.stdout.contains(String(format: "%.4f ± %.4f nats per example", ll, se)), "\(text.stdout)")
        #expect(text.stdout.contains("ESS/K mean"))
    }

    @Test("eval --gaps: the text names ELBO(λ*) wherever the value is ELBO(λ*), and its gaps add up as in the JSON")
    func gapsText() throws {
        let dir = try makeTemporaryDirectory(prefix: "gapstext")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = dir + "/toy.h5"
        try writeToyDataset(data)
        let checkpoint = try trainTinyCheckpoint(data: data, runDir: dir + "/run", seed: 5)
        let flags = ["eval", checkpoint, "--data", data, "--samples", "50", "--limit", "4", "--gaps", "--gap-steps", "20"]
        let text = try bsvi(flags)
        #expect(text.status == 0, "\(text.stderr)")
        // The amortization gap with --gaps is ELBO(λ*) − ELBO(λ₀); it used to be labelled ELBO(λ_k).
        #expect(text.stdout.contains("amortization gap ELBO(λ*) − ELBO(λ₀) = "), "\(text.stdout)")
        #expect(!text.stdout.contains("λ_k"), "\(text.stdout)")
        let json = try parseJSONLine(try bsvi(flags + ["--json"]).stdout)
        let gap = try #require(json["amortization_gap"] as? Double)
        #expect(text.stdout.contains(String(numbers: "amortization gap ELBO(λ*) − ELBO(λ₀) = %.4f", gap)), "\(text.stdout)")
    }

    @Test("eval and compare name the data they read, warn when a checkpoint was trained on another file that is here, and give no error bar for one example")
    func dataProvenance() throws {
        let dir = try makeTemporaryDirectory(prefix: "evaldata")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = dir + "/toy.h5", other = dir + "/other.h5"
        try writeToyDataset(data)
        try writeToyDataset(other, train: 80, seed: 11, source: "other")
        let checkpoint = try trainTinyCheckpoint(data: data, runDir: dir + "/run", seed: 5, epochs: 1)
        let samples = ["--samples", "8", "--limit", "4", "--json"]
        let same = try bsvi(["eval", checkpoint, "--data", data] + samples)
        #expect(same.status == 0 && !same.stderr.contains("warning"), "\(same.stderr)")
        #expect(try parseJSONLine(same.stdout)["data"] as? String == data)
        let elsewhere = try bsvi(["eval", checkpoint, "--data", other] + samples + ["--per-example", dir + "/other-examples.h5"])
        #expect(elsewhere.status == 0, "\(elsewhere.stderr)")
        #expect(elsewhere.stderr.contains("was trained on other data than --data \(other): /train 80 rows × 16 (trained on: 96 rows × 16)")
                    && elsewhere.stderr.contains("pass --data \(data)"),
                "\(elsewhere.stderr)")
        // Other images of the same shape and binarization (MNIST for Fashion-MNIST): only /train's
        // rows tell, and the warning names their digests.
        let sameShape = dir + "/same-shape.h5"
        try writeToyDataset(sameShape, seed: 12)
        let rowsDiffer = try bsvi(["eval", checkpoint, "--data", sameShape] + samples)
        #expect(rowsDiffer.status == 0
                    && rowsDiffer.stderr.contains("was trained on other data than --data \(sameShape): /train holds other rows of the same shape (digest ")
                    && rowsDiffer.stderr.contains("pass --data \(data)"), "\(rowsDiffer.stderr)")
        // A --data that is not there (the default is relative to where eval runs) names the flag
        // and the data the checkpoint trained on.
        let missing = try bsvi(["eval", checkpoint, "--data", dir + "/nope.h5"] + samples)
        #expect(missing.status == 66 && missing.stderr.contains("nope.h5: file not found (pass --data FILE; the checkpoint was trained on --data \(data))"),
                "\(missing.stderr)")
        // A copy of the training data elsewhere is the same data: no warning.
        try FileManager.default.copyItem(atPath: data, toPath: dir + "/copy.h5")
        let copy = try bsvi(["eval", checkpoint, "--data", dir + "/copy.h5"] + samples)
        #expect(copy.status == 0 && !copy.stderr.contains("warning"), "\(copy.stderr)")
        #expect(try parseJSONLine(elsewhere.stdout)["data"] as? String == other)
        #expect(try HDF5File.open(dir + "/other-examples.h5").stringAttribute("data") == other)
        let pair = try bsvi(["compare", checkpoint, checkpoint, "--data", other] + samples)
        #expect(pair.status == 0 && pair.stderr.components(separatedBy: "warning: ").count == 3, "\(pair.stderr)")
        #expect(try parseJSONLine(pair.stdout)["data"] as? String == other)

        // One example: no spread can be estimated, so no standard error (numpy's std(ddof=1) is nan).
        let one = try bsvi(["eval", checkpoint, "--data", data, "--samples", "8", "--limit", "1", "--json"])
        let j = try parseJSONLine(one.stdout)
        #expect(j["log_likelihood_se"] as? String == "nan" && j["elbo_se"] as? String == "nan", "\(one.stdout)")
        #expect(j["log_likelihood"] is Double)
        let text = try bsvi(["eval", checkpoint, "--data", data, "--samples", "8", "--limit", "1"])
        #expect(text.status == 0 && text.stdout.contains("± nan nats per example") && !text.stdout.contains("-nan"), "\(text.stdout)")
    }

    /// compare's JSON and file against the paired statistics of the direct per-example values.
    func checkComparison(_ j: [String: Any], file: String, a: [ExampleEvaluation], b: [ExampleEvaluation]) throws {
        let la = a.map(\.estimate.logLikelihood), lb = b.map(\.estimate.logLikelihood)
        let d = zip(la, lb).map { $0 - $1 }
        #expect(j["examples"] as? Int == la.count && j["samples"] as? Int == Self.samples)
        expectClose(j["difference"] as? Double, Definitions.mean(d), "difference")
        expectClose(j["difference_se"] as? Double, Definitions.standardError(d), "difference_se")
        expectClose(j["a_better_fraction"] as? Double, Double(d.filter { $0 > 0 }.count) / Double(d.count), "a_better_fraction", relative: 0)
        expectClose(j["a_log_likelihood"] as? Double, Definitions.mean(la), "a_log_likelihood")
        expectClose(j["b_log_likelihood"] as? Double, Definitions.mean(lb), "b_log_likelihood")
        expectClose(j["a_log_likelihood_se"] as? Double, Definitions.standardError(la), "a_log_likelihood_se")
        expectClose(j["b_log_likelihood_se"] as? Double, Definitions.standardError(lb), "b_log_likelihood_se")
        expectClose(j["a_ess_fraction_mean"] as? Double, Definitions.mean(a.map(\.estimate.essFraction)), "a_ess_fraction_mean")
        expectClose(j["b_ess_fraction_mean"] as? Double, Definitions.mean(b.map(\.estimate.essFraction)), "b_ess_fraction_mean")
        let f = try HDF5File.open(file)
        for (row, value) in try f.readDoubles("/difference").enumerated() { expectClose(value, d[row], "row \(row) difference") }
        for (row, value) in try f.readDoubles("/a/log_likelihood").enumerated() { expectClose(value, la[row], "row \(row) A") }
        for (row, value) in try f.readDoubles("/b/elbo").enumerated() { expectClose(value, b[row].elboInitial, "row \(row) B ELBO") }
    }

    @Test("compare: difference, paired SE, fraction and both means equal the direct per-example computation")
    func compareMatchesDirect() throws {
        let dir = try makeTemporaryDirectory(prefix: "compare")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = dir + "/toy.h5"
        try writeToyDataset(data)
        let a = try trainTinyCheckpoint(data: data, runDir: dir + "/a", seed: 5, epochs: 3)
        let b = try trainTinyCheckpoint(data: data, runDir: dir + "/b", seed: 6, epochs: 1)
        let r = try bsvi(["compare", a, b, "--data", data, "--samples", "\(Self.samples)", "--seed", "\(Self.seed)", "--json",
                          "--per-example", dir + "/pair.h5"])
        #expect(r.status == 0, "\(r.stderr)")
        let j = try parseJSONLine(r.stdout)
        #expect(j["common_random_numbers"] as? Bool == true)
        #expect(j["a_checkpoint"] as? String == a && j["b_checkpoint"] as? String == b)
        let directA = try directEvaluation(checkpoint: a, data: data, samples: Self.samples, seed: Self.seed)
        let directB = try directEvaluation(checkpoint: b, data: data, samples: Self.samples, seed: Self.seed)
        try checkComparison(j, file: dir + "/pair.h5", a: directA, b: directB)

        // A checkpoint against itself: every example's difference is exactly 0 (same ε for both).
        let same = try parseJSONLine(try bsvi(["compare", a, a, "--data", data, "--samples", "\(Self.samples)", "--json"]).stdout)
        #expect(same["difference"] as? Double == 0 && same["difference_se"] as? Double == 0 && same["a_better_fraction"] as? Double == 0)

        let text = try bsvi(["compare", a, b, "--data", data, "--samples", "\(Self.samples)", "--seed", "\(Self.seed)"])
        #expect(text.status == 0 && text.stdout.contains("A − B =") && text.stdout.contains("common random numbers"), "\(text.stdout)")
    }

    @Test("compare with different latent sizes warns that ε cannot be shared and still pairs by example")
    func compareDifferentLatentSizes() throws {
        let dir = try makeTemporaryDirectory(prefix: "compare-latent")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = dir + "/toy.h5"
        try writeToyDataset(data)
        let a = try trainTinyCheckpoint(data: data, runDir: dir + "/a", seed: 5, latent: 2)
        let b = try trainTinyCheckpoint(data: data, runDir: dir + "/b", seed: 5, latent: 3)
        let r = try bsvi(["compare", a, b, "--data", data, "--samples", "\(Self.samples)", "--seed", "\(Self.seed)", "--json",
                          "--per-example", dir + "/pair.h5"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("latent sizes differ (A: 2, B: 3)"), "\(r.stderr)")
        let j = try parseJSONLine(r.stdout)
        #expect(j["common_random_numbers"] as? Bool == false)
        #expect(try HDF5File.open(dir + "/pair.h5").scalarInt64Attribute("common_random_numbers") == 0)
        try checkComparison(j, file: dir + "/pair.h5",
                            a: try directEvaluation(checkpoint: a, data: data, samples: Self.samples, seed: Self.seed),
                            b: try directEvaluation(checkpoint: b, data: data, samples: Self.samples, seed: Self.seed))
    }

    @Test("eval --matmul-precision high: within 1e-3 nats of float32 per example, recorded in the JSON and the per-example file, the same bits on 1 and 2 ranks; refused (64) where it cannot run")
    func matmulPrecision() throws {
        let dir = try makeTemporaryDirectory(prefix: "evalprecision")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = dir + "/toy.h5"
        try writeToyDataset(data)
        let checkpoint = try trainTinyCheckpoint(data: data, runDir: dir + "/run", seed: 5)
        let base = ["eval", checkpoint, "--data", data, "--samples", "\(Self.samples)", "--seed", "\(Self.seed)", "--json"]
        if let reason = MatmulPrecision.high.unavailableReason {
            // Without tiles (or off the avx512 path) the command says what this process would.
            for r in [try bsvi(base + ["--matmul-precision", "high"]), try mpirunBSVI(ranks: 2, base + ["--matmul-precision", "high"])] {
                #expect(r.status == 64 && r.stdout.isEmpty, "\(r.stderr)")
                #expect(r.stderr.components(separatedBy: reason).count == 2, "said once: \(r.stderr)")
            }
            return
        }
        let float32 = try bsvi(base + ["--per-example", dir + "/float32.h5"])
        let high = try bsvi(base + ["--matmul-precision", "high", "--per-example", dir + "/high.h5"])
        let twoRanks = try mpirunBSVI(ranks: 2, base + ["--matmul-precision", "high", "--per-example", dir + "/high2.h5"])
        for r in [float32, high, twoRanks] { #expect(r.status == 0, "\(r.stderr)") }
        #expect(try parseJSONLine(float32.stdout)["matmul_precision"] as? String == "highest")
        #expect(try parseJSONLine(high.stdout)["matmul_precision"] as? String == "high")
        let (a, _) = try PerExampleFile.read(dir + "/float32.h5"), (b, _) = try PerExampleFile.read(dir + "/high.h5")
        let (b2, _) = try PerExampleFile.read(dir + "/high2.h5")
        #expect(a.matmulPrecision == .highest && b.matmulPrecision == .high && b2.matmulPrecision == .high)
        for row in a.rows {
            #expect(abs(a.logLikelihood[row] - b.logLikelihood[row]) <= 1e-3, "row \(row): \(a.logLikelihood[row]) vs \(b.logLikelihood[row])")
            #expect(abs(a.elboRefined[row] - b.elboRefined[row]) <= 1e-3, "row \(row) ELBO(λ_k)")
        }
        #expect(a.logLikelihood != b.logLikelihood, "float32 bits at high precision: were the tiles used?")
        #expect(b2.logLikelihood == b.logLikelihood && b2.elbo == b.elbo && b2.elboRefined == b.elboRefined, "2 ranks differ from 1")
        let compared = try bsvi(["compare", checkpoint, checkpoint] + base.dropFirst(2) + ["--matmul-precision", "high"])
        #expect(compared.status == 0, "\(compared.stderr)")
        let comparedPrecision = try parseJSONLine(compared.stdout)["matmul_precision"] as? String
        #expect(comparedPrecision == "high")
        for command in [Array(base.dropLast()), ["compare", checkpoint, checkpoint] + base.dropFirst(2).dropLast()] {
            let text = try bsvi(command + ["--matmul-precision", "medium"])
            #expect(text.status == 0 && text.stdout.contains("decoder products at --matmul-precision medium"), "\(text.stdout)\(text.stderr)")
        }
        if KernelPath.avx2.isSupported {
            let refused = try runCommand(try binaryPath(), base + ["--matmul-precision", "high"], environment: ["BSVI_KERNELS": "avx2"])
            #expect(refused.status == 64 && refused.stderr.contains("BSVI_KERNELS chose avx2") && refused.stdout.isEmpty, "\(refused.stderr)")
        }
    }

    @Test("bad requests: per-example with two splits (64), an unwritable per-example folder (73, before evaluating, also /sys as root), mismatched inputs (65)")
    func badRequests() throws {
        let dir = try makeTemporaryDirectory(prefix: "compare-bad")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = dir + "/toy.h5"
        try writeToyDataset(data)
        try writeToyDataset(dir + "/wide.h5", width: 32)
        let a = try trainTinyCheckpoint(data: data, runDir: dir + "/a", seed: 5, epochs: 1)
        let twoSplits = try bsvi(["eval", a, "--data", data, "--split", "test", "--split", "valid", "--per-example", dir + "/x.h5"])
        #expect(twoSplits.status == 64 && twoSplits.stderr.contains("--per-example"), "\(twoSplits.stderr)")
        for command in [["eval", a], ["compare", a, a]] {
            let r = try bsvi(command + ["--data", data, "--per-example", dir + "/missing/x.h5"])
            #expect(r.status == 73 && r.stderr.contains(dir + "/missing"), "\(command): \(r.stderr)")
            // Progress lines start with the first example: none means the check came first.
            #expect(!r.stdout.contains("evaluating"), "the folder was checked only after evaluating: \(r.stdout)")
        }
        // The permission bits let root write to sysfs; only creating a file there tells.
        let sysfs = try bsvi(["eval", a, "--data", data, "--per-example", "/sys/bsvi-dist-test.h5"])
        #expect(sysfs.status == 73 && sysfs.stderr.contains("folder /sys is not writable"), "\(sysfs.stderr)")
        #expect(!sysfs.stdout.contains("evaluating"), "the folder was checked only after evaluating: \(sysfs.stdout)")
        let wideRun = try bsvi(["train", "--data", dir + "/wide.h5", "--run-dir", dir + "/w", "--batch-size", "16", "--epochs", "1",
                                "--no-final-eval"] + tinyModel)
        #expect(wideRun.status == 0, "\(wideRun.stderr)")
        let mismatch = try bsvi(["compare", a, dir + "/w/final.h5", "--data", data])
        #expect(mismatch.status == 65 && mismatch.stderr.contains("input_dim 32"), "\(mismatch.stderr)")
        let notACheckpoint = try bsvi(["compare", a, data, "--data", data])
        #expect(notACheckpoint.status == 65, "\(notACheckpoint.stderr)")
    }
}
