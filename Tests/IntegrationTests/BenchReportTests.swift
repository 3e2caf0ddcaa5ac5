import Foundation
import Testing

/// `bench --json`: the step against the FMA peak and against its own ceiling (that peak plus the
/// parameter update's memory floor), each derived from the fields it reports.
@Suite("bench report")
struct BenchReportTests {
    @Test("the own ceiling is the step's FLOPs at the FMA peak plus the update's floor; the step stays under it; the time split adds up",
          arguments: ["vae", "bsvi"])
    func ceilingFollowsFromTheReport(method: String) throws {
        let r = try bsvi(["bench", "--method", method, "--k", "3", "--steps", "3", "--warmup", "1", "--eval-examples", "0",
                          "--json", "--hidden", "16", "--latent", "4"])
        #expect(r.status == 0, "\(r.stderr)")
        let report = try parseJSONLine(r.stdout)
        func number(_ key: String) throws -> Double { try #require(report[key] as? Double, "\(key) in \(r.stdout)") }
        let floorMs = try number("update_floor_ms"), peak = try number("fma_peak_gflops")
        let ceiling = try number("ceiling_fraction"), peakFraction = try number("peak_fraction")
        let batch = try #require(report["batch_size"] as? Int), ranks = try #require(report["ranks"] as? Int)
        let multiplyAdds = try #require(report["useful_multiply_adds_per_example"] as? Int)
        #expect(floorMs > 0)
        let atPeakMs = Double(batch * multiplyAdds * 2) / Double(ranks) / (peak * 1e9) * 1e3
        #expect(abs(ceiling - atPeakMs / (atPeakMs + floorMs)) <= 1e-9 * ceiling)
        #expect(ceiling > 0 && ceiling < 1)
        #expect(peakFraction > 0 && peakFraction <= ceiling)
        #expect(abs(try number("fraction_of_ceiling") - peakFraction / ceiling) <= 1e-9)
        // The time split: the update is timed, and the timers are disjoint — the rest (bookkeeping)
        // would otherwise come out negative, be clamped to 0 and the parts would exceed the step.
        let parts = try ["gemm_ms_per_step", "elementwise_ms_per_step", "update_ms_per_step", "bookkeeping_ms_per_step",
                         "allreduce_ms_per_step"].map(number)
        #expect(parts.allSatisfy { $0 >= 0 } && parts[2] > 0)
        #expect(abs(parts.reduce(0, +) - (try number("ms_per_step"))) <= 1e-6 * (try number("ms_per_step")))
        // The yardstick is the higher of its two readings (before the steps, after the evaluation).
        let readings = try #require(report["fma_peak_readings"] as? [Double], "\(r.stdout)")
        #expect(readings.count == 2 && readings.allSatisfy { $0 > 0 } && peak == readings.max())
        #expect(["openblas", "bsvi-dist", "OPENBLAS_CORETYPE"].contains(report["blas_core_chooser"] as? String ?? ""), "\(r.stdout)")
    }

    /// scripts/scaling-benchmark --decompose: the three factors are each round's own ratios of
    /// the four runs it prints, so their product is the round's speedup; a factor computed from
    /// the wrong run (or a half-batch run that did not happen) breaks the identity.
    @Test("scripts/scaling-benchmark --decompose splits each round's speedup into half batch × concurrency × coupling; bad options exit 64",
          .enabled(if: ProcessInfo.processInfo.activeProcessorCount >= 2, "needs two cores"))
    func scalingDecomposition() throws {
        let script = repositoryRoot.appendingPathComponent("scripts/scaling-benchmark").path
        let environment = ["BSVI_DIST_BINARY": try binaryPath(), "BENCH_STEPS": "2"]
        let r = try runCommand(script, ["--repeats", "1", "--decompose", "--method", "vae", "--hidden", "16", "--latent", "4",
                                        "--batch-size", "9", "--data", "/nonexistent/bench.h5"], environment: environment)
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n").map(String.init)
        let round = try #require(lines.first { $0.hasPrefix("pair 1:") }, "\(r.stdout)")
        func number(after label: String) throws -> Double {
            let at = try #require(round.range(of: label), "'\(label)' in \(round)")
            return try #require(Double(round[at.upperBound...].prefix { $0.isNumber || $0 == "." }), "\(round)")
        }
        let one = try number(after: "1 rank "), two = try number(after: "2 ranks "), speedup = try number(after: "speedup ")
        let alone = try number(after: "half batch alone "), half = try number(after: " (×")
        let pair = try number(after: "both halves at once "), concurrency = try number(after: "concurrency ×")
        let coupling = try number(after: "coupling ×")
        #expect(one > 0 && two > 0 && alone > 0 && pair > 0, "\(round)")
        // Rates are printed rounded to whole examples/s and ratios to 3 decimals.
        #expect(abs(speedup - two / one) <= 1e-3 + 1 / one)
        #expect(abs(half - alone / one) <= 1e-3 + 1 / one)
        #expect(abs(concurrency - pair / (2 * alone)) <= 1e-3 + 1 / alone)
        #expect(abs(coupling - two / pair) <= 1e-3 + 1 / pair)
        #expect(abs(2 * half * concurrency * coupling - speedup) <= 0.01, "\(round)")
        let summary = try #require(lines.first { $0.hasPrefix("median factors:") }, "\(r.stdout)")
        #expect(summary.hasSuffix(String(format: "= %.3f", speedup)), "\(summary)")

        let weak = try runCommand(script, ["--decompose", "--weak"], environment: environment)
        #expect(weak.status == 64 && weak.stderr.contains("drop --weak") && weak.stdout.isEmpty, "\(weak.stderr)")
        let tiny = try runCommand(script, ["--decompose", "--batch-size", "1"], environment: environment)
        #expect(tiny.status == 64 && tiny.stderr.contains("global --batch-size of at least 2"), "\(tiny.stderr)")
    }
}
