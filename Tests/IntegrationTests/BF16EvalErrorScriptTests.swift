import Foundation
import Testing

/// scripts/bf16-eval-error.py, which measures what bfloat16 decoder products would do to log p̂
/// (docs/benchmarks.md, the Zen 4's evaluation target): its float32 estimate is the evaluator's
/// estimator, and its bfloat16 rounding changes the products.
@Suite("scripts/bf16-eval-error.py", .enabled(if: CheckpointRun.h5pyAvailable))
struct BF16EvalErrorScriptTests {
    static let script = repositoryRoot.appendingPathComponent("scripts/bf16-eval-error.py").path

    static func run(_ arguments: [String]) throws -> CommandResult {
        try runCommand(try #require(CheckpointRun.python3Path), [script] + arguments, timeout: 300)
    }

    @Test("its float32 log p̂ is bsvi-dist eval's (independent noise), float32 agrees with float64, bfloat16 moves every example a little",
          arguments: ["tanh", "relu", "softplus"])
    func estimatesMatchTheEvaluator(activation: String) throws {
        let dir = try makeTemporaryDirectory(prefix: "bf16")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = dir + "/toy.h5"
        try writeToyDataset(data)
        let checkpoint = try trainTinyCheckpoint(data: data, runDir: dir + "/run", seed: 3, epochs: 10, activation: activation)
        let samples = 40_000
        let eval = try bsvi(["eval", checkpoint, "--data", data, "--samples", "\(samples)", "--json"])
        #expect(eval.status == 0, "\(eval.stderr)")
        let evaluated = try #require(try parseJSONLine(eval.stdout)["log_likelihood"] as? Double)

        var means: [Double] = [], monteCarloRMS: [Double] = []
        for seed in [1, 2] {
            let r = try Self.run([checkpoint, "--data", data, "--samples", "\(samples)", "--seed", "\(seed)", "--json"])
            #expect(r.status == 0, "\(r.stderr)")
            let j = try parseJSONLine(r.stdout)
            #expect(j["examples"] as? Int == 20)  // the toy test split, all of it (fewer than --examples' 200)
            let mean = try #require(j["mean_log_likelihood"] as? [String: Double])
            let f32 = try #require(mean["f32"]), f64 = try #require(mean["f64"]), bf16 = try #require(mean["bf16"])
            means.append(f32)
            // The delta method's Monte Carlo SD of an example's estimate, sqrt(1/ESS − 1/K)
            // (root mean square 0.006–0.043 nats here).
            let mc = try #require(j["monte_carlo_sd"] as? [String: Double])
            #expect(try #require(mc["median"]) > 0 && mc["rms"]! < 1, "\(mc)")
            monteCarloRMS.append(mc["rms"]!)
            // float32 products against float64: rounding only (the noise is shared).
            #expect(abs(f32 - f64) < 1e-4, "f32 \(f32) against f64 \(f64)")
            // bfloat16 keeps 8 significant bits of each factor: the estimates move, by far less than a nat.
            let moved = try #require(j["bf16_minus_f32"] as? [String: Double])
            #expect(try #require(moved["sd"]) > 1e-6 && abs(bf16 - f32) < 0.1, "\(moved)")
        }
        // Two seeds of the script and the evaluator estimate the same mean, each with its own
        // noise. Ten epochs bring the toy model's q close enough to its posterior that at
        // K = 40,000 the three agree within 0.015 (relu: −10.5167, −10.5139, −10.5159), 0.016
        // (tanh) and 0.029 (softplus). Every run draws the same numbers (fixed seeds), so 0.1 is
        // a margin, not luck; a wrong estimator (σ for σ², a missing log K: 10.6 nats) moves the
        // mean much further.
        #expect(abs(means[0] - means[1]) < 0.1, "script seeds: \(means)")
        for m in means { #expect(abs(m - evaluated) < 0.1, "script \(m) against bsvi-dist eval \(evaluated)") }
        // …and the delta method accounts for the seeds' spread: the two means differ by at most
        // five standard errors of their difference, √2 · rms / √20 with the larger rms (0.003–0.015
        // against 0.011–0.067 here).
        let n = 20.0
        #expect(abs(means[0] - means[1]) <= 5 * (2.0 / n).squareRoot() * monteCarloRMS.max()!, "\(means), rms \(monteCarloRMS)")
    }

    @Test("a missing checkpoint, a missing split and a bad count are refused with the file and the fix")
    func refusals() throws {
        let dir = try makeTemporaryDirectory(prefix: "bf16-bad")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let missing = try Self.run([dir + "/none.h5"])
        #expect(missing.status == 66 && missing.stderr.contains(dir + "/none.h5") && missing.stderr.contains("pass a checkpoint"), "\(missing.stderr)")
        let data = dir + "/toy.h5"
        try writeToyDataset(data)
        let checkpoint = try trainTinyCheckpoint(data: data, runDir: dir + "/run", seed: 3)
        let split = try Self.run([checkpoint, "--data", data, "--split", "nope"])
        #expect(split.status == 66 && split.stderr.contains("no split 'nope'"), "\(split.stderr)")
        let count = try Self.run([checkpoint, "--samples", "0"])
        #expect(count.status == 64 && count.stderr.contains("--samples"), "\(count.stderr)")
    }
}
