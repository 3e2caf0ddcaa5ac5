import BSVI
import Foundation
import Testing

/// `bench --json`: the step against the FMA peak and against its own ceiling (that peak plus the
/// parameter update's floor), each derived from the fields it reports.
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
        // The update's floor is the larger of its two: Adam's memory traffic, and its square root
        // and division per parameter at the core's rate for them.
        let trafficMs = try number("update_traffic_floor_ms"), dividerMs = try number("update_divider_floor_ms")
        #expect(trafficMs > 0 && dividerMs > 0 && floorMs == max(trafficMs, dividerMs))
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
        // One rank waits for nobody: its allreduce (the local no-op) is all exchange.
        #expect(try number("lockstep_wait_ms_per_step") == 0)
        #expect(abs(try number("exchange_ms_per_step") - (try number("allreduce_ms_per_step"))) <= 1e-9)
        #expect(["openblas", "bsvi-dist", "OPENBLAS_CORETYPE"].contains(report["blas_core_chooser"] as? String ?? ""), "\(r.stdout)")

        // The products by routine and shape: together they are the step's gemm time and its useful
        // multiply-adds (the BLAS path's bias-gradient gemv is timed as a product but is not useful
        // work), and each one's rate follows from its own time.
        let products = try #require(report["products"] as? [[String: Any]], "\(r.stdout)")
        #expect(!products.isEmpty)
        var milliseconds = 0.0, usefulMultiplyAdds = 0.0
        for p in products {
            let routine = try #require(p["routine"] as? String), calls = try #require(p["calls_per_step"] as? Double)
            let shape = try ["m", "k", "n"].map { try #require(p[$0] as? Int, "\($0) in \(p)") }
            let microseconds = try #require(p["microseconds_per_call"] as? Double), gflops = try #require(p["gflops"] as? Double)
            let multiplyAdds = Double(shape.reduce(1, *))
            #expect(calls > 0 && microseconds > 0 && shape.allSatisfy { $0 > 0 }, "\(p)")
            #expect(abs(gflops - 2 * multiplyAdds / (microseconds * 1e3)) <= 1e-9 * gflops, "\(p)")
            #expect(abs(try #require(p["peak_fraction"] as? Double) - gflops / peak) <= 1e-12, "\(p)")
            milliseconds += calls * microseconds * 1e-3
            if routine != "blas_bias_gradient" { usefulMultiplyAdds += calls * multiplyAdds }
        }
        #expect(Set(products.map { "\($0["routine"]!) \($0["m"]!) \($0["k"]!) \($0["n"]!)" }).count == products.count,
                "one entry per routine and shape: \(products)")
        if method == "vae" {
            // One shape under two routines stays two entries: the encoder's first layer (nn) and the
            // decoder's δ·W₁ᵀ back to the 16 hidden units (nt) are both batch × 784 × 16, once a step
            // (cblas_sgemm's on the portable path).
            let portable = report["kernel_isa"] as? String == "portable"
            for routine in portable ? ["blas_nn", "blas_nt"] : ["nn", "nt"] {
                let entry = products.first {
                    $0["routine"] as? String == routine && $0["m"] as? Int == batch && $0["k"] as? Int == 784 && $0["n"] as? Int == 16
                }
                #expect(entry?["calls_per_step"] as? Double == 1, "\(routine) \(batch) × 784 × 16 in \(products)")
            }
        }
        #expect(abs(milliseconds - (try number("gemm_ms_per_step"))) <= 1e-9 * milliseconds)
        let time = products.map { ($0["calls_per_step"] as! Double) * ($0["microseconds_per_call"] as! Double) }
        #expect(zip(time, time.dropFirst()).allSatisfy { $0 >= $1 * (1 - 1e-12) }, "the most time first: \(time)")
        #expect(usefulMultiplyAdds == Double(batch * multiplyAdds / ranks), "\(products)")
    }

    @Test("--products lists the step's products by routine and shape in the text report; without it, no list")
    func productTable() throws {
        func bench(_ extra: [String]) throws -> (lines: [Substring], stdout: String) {
            let r = try bsvi(["bench", "--method", "bsvi", "--k", "2", "--steps", "2", "--warmup", "0", "--eval-examples", "0",
                              "--hidden", "16", "--latent", "4"] + extra)
            #expect(r.status == 0, "\(r.stderr)")
            return (r.stdout.split(separator: "\n"), r.stdout)
        }
        let plain = try bench([])
        #expect(!plain.stdout.contains("by routine and shape") && !plain.lines.isEmpty, "\(plain.stdout)")
        let listed = try bench(["--products"])
        let header = try #require(listed.lines.firstIndex { $0.hasPrefix("    routine") }, "\(listed.stdout)")
        #expect(listed.lines[header - 1].contains("by routine and shape"), "\(listed.stdout)")
        let rows = listed.lines[(header + 1)...].prefix { $0.hasPrefix("    ") }.map { $0.split(separator: " ").filter { $0 != "×" } }
        // routine, m, k, n, calls/step, µs/call, GFLOP/s, % of peak
        #expect(!rows.isEmpty && rows.allSatisfy { $0.count == 8 && $0[7].hasSuffix("%") }, "\(listed.stdout)")
        let routines = Set(rows.map { String($0[0]) })
        #expect(routines.isSuperset(of: ["nn", "nt", "tn"]) || routines.contains("blas_nn"), "\(routines)")
    }

    @Test("under mpirun the exchange splits into waiting for the slowest rank and the exchange itself, together within the step; --step-times holds every rank's steps they come from")
    func lockstepSplitUnderMPI() throws {
        let dir = try makeTemporaryDirectory(prefix: "bench")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let csvPath = dir + "/step-times.csv", steps = 20
        // The default model, so each step's work (milliseconds) dwarfs how far apart the ranks leave an allreduce.
        let r = try mpirunBSVI(ranks: 2, ["bench", "--method", "vae", "--steps", "\(steps)", "--warmup", "1", "--eval-examples", "0", "--json",
                                          "--step-times", csvPath])
        #expect(r.status == 0, "\(r.stderr)")
        let report = try parseJSONLine(r.stdout)
        func number(_ key: String) throws -> Double { try #require(report[key] as? Double, "\(key) in \(r.stdout)") }
        let wait = try number("lockstep_wait_ms_per_step"), exchange = try number("exchange_ms_per_step")
        #expect(wait >= 0 && exchange > 0, "\(r.stdout)")
        // Together they are the ranks' mean time in the allreduce, which leaves the step its work.
        #expect(wait + exchange < (try number("ms_per_step")), "\(r.stdout)")

        // The file: step,rank,work_ms,allreduce_ms for every timed step and rank; the split, worked
        // out from it by its definition, is the report's.
        let lines = try String(contentsOfFile: csvPath, encoding: .utf8).split(separator: "\n")
        #expect(lines.first == "step,rank,work_ms,allreduce_ms" && lines.count == 1 + 2 * steps, "\(lines.prefix(3))")
        let rows = lines.dropFirst().map { $0.split(separator: ",").compactMap { Double($0) } }
        #expect(rows.allSatisfy { $0.count == 4 && $0[2] > 0 && $0[3] > 0 })
        var fileWait = 0.0, fileExchange = 0.0
        for step in 1...steps {
            let ranks = rows.filter { $0[0] == Double(step) }
            #expect(ranks.map { $0[1] } == [0, 1], "step \(step)")
            guard step > 1 else { continue }  // the split leaves out the first step (the barrier's skew)
            let slowest = try #require(ranks.max { $0[2] < $1[2] })
            fileWait += slowest[2] - ranks.reduce(0) { $0 + $1[2] } / 2
            fileExchange += slowest[3]
        }
        let counted = Double(steps - 1)
        #expect(abs(fileWait / counted - wait) <= 1e-9 * max(wait, 1) && abs(fileExchange / counted - exchange) <= 1e-9)
    }

    @Test("the text report gives the evaluation's rate only when it was measured (--eval-examples 0 skips it)", arguments: [0, 1])
    func evaluationLine(examples: Int) throws {
        let r = try bsvi(["bench", "--method", "vae", "--steps", "2", "--warmup", "0", "--eval-examples", "\(examples)",
                          "--eval-samples", "10", "--hidden", "16", "--latent", "4"])
        #expect(r.status == 0, "\(r.stderr)")
        let line = try #require(r.stdout.split(separator: "\n").first { $0.contains("evaluation  ") }, "\(r.stdout)")
        #expect(line.contains("not measured (--eval-examples 0)") == (examples == 0), "\(line)")
        #expect(line.contains("importance samples/s (K=10)") == (examples > 0), "\(line)")
    }

    @Test("bench --matmul-precision: a bfloat16 precision's evaluation is recorded with its unit and set against that unit's peak, float32's against the FMA peak; refused (64) before the steps where it cannot run")
    func matmulPrecision() throws {
        let base = ["bench", "--method", "vae", "--steps", "2", "--warmup", "0", "--eval-examples", "1", "--eval-samples", "50",
                    "--hidden", "16", "--latent", "4"]
        let float32 = try bsvi(base + ["--json"])
        #expect(float32.status == 0, "\(float32.stderr)")
        let f = try parseJSONLine(float32.stdout)
        #expect(f["eval_matmul_precision"] as? String == "highest" && f["eval_bf16_peak_gflops"] == nil && f["eval_bf16_unit"] == nil, "\(float32.stdout)")
        let fRate = try #require(f["eval_gflops_per_rank"] as? Double), fPeak = try #require(f["fma_peak_gflops"] as? Double)
        let fFraction = try #require(f["eval_peak_fraction"] as? Double)
        #expect(fRate > 0 && abs(fFraction - fRate / fPeak) <= 1e-9 * fFraction, "\(float32.stdout)")
        for (precision, bfloat16Products) in [(MatmulPrecision.high, 3.0), (.medium, 1.0)] {
            if let reason = precision.unavailableReason {
                let dir = try makeTemporaryDirectory(prefix: "bench-precision")
                defer { try? FileManager.default.removeItem(atPath: dir) }
                let r = try bsvi(base + ["--matmul-precision", precision.rawValue, "--step-times", dir + "/steps.csv"])
                #expect(r.status == 64 && r.stdout.isEmpty && r.stderr.components(separatedBy: reason).count == 2, "\(r.status) \(r.stderr)")
                #expect(!FileManager.default.fileExists(atPath: dir + "/steps.csv"), "the steps ran before the refusal")
                continue
            }
            let r = try bsvi(base + ["--matmul-precision", precision.rawValue, "--json"])
            #expect(r.status == 0, "\(r.stderr)")
            let j = try parseJSONLine(r.stdout)
            #expect(j["eval_matmul_precision"] as? String == precision.rawValue, "\(r.stdout)")
            #expect(j["eval_bf16_unit"] as? String == precision.unit?.rawValue, "\(r.stdout)")
            let rate = try #require(j["eval_gflops_per_rank"] as? Double), unitPeak = try #require(j["eval_bf16_peak_gflops"] as? Double)
            let fraction = try #require(j["eval_peak_fraction"] as? Double)
            #expect(rate > 0 && unitPeak > 0 && abs(fraction - rate * bfloat16Products / unitPeak) <= 1e-9 * fraction, "\(r.stdout)")
        }
        if let unit = MatmulPrecision.medium.unit, MatmulPrecision.medium.unavailableReason == nil {
            let text = try bsvi(base + ["--matmul-precision", "medium"])
            #expect(text.status == 0, "\(text.stderr)")
            let line = try #require(text.stdout.split(separator: "\n").first { $0.contains("evaluation  ") }, "\(text.stdout)")
            let yardstick = unit == .tiles ? "of the AMX tiles' bfloat16 peak" : "of the AVX512_BF16 vectors' bfloat16 peak"
            #expect(line.contains("at --matmul-precision medium") && line.contains(yardstick), "\(line)")
        }
        if KernelPath.avx2.isSupported {
            let dir = try makeTemporaryDirectory(prefix: "bench-precision")
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let refused = try runCommand(try binaryPath(), base + ["--matmul-precision", "high", "--step-times", dir + "/steps.csv"],
                                         environment: ["BSVI_KERNELS": "avx2"])
            #expect(refused.status == 64 && refused.stderr.contains("BSVI_KERNELS chose avx2") && refused.stdout.isEmpty, "\(refused.stderr)")
            #expect(!FileManager.default.fileExists(atPath: dir + "/steps.csv"), "the steps ran before the refusal")
        }
    }

    @Test("a --data file that is there but cannot be read is an error, not a reason to bench on random rows")
    func unreadableData() throws {
        let dir = try makeTemporaryDirectory(prefix: "bench-data")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data("not HDF5\n".utf8).write(to: URL(fileURLWithPath: dir + "/text.h5"))
        let r = try bsvi(["bench", "--method", "vae", "--steps", "1", "--eval-examples", "0", "--hidden", "16", "--latent", "4",
                          "--data", dir + "/text.h5", "--json"])
        #expect(r.status == 65 && r.stderr.contains(dir + "/text.h5") && !r.stdout.contains("random binary rows"), "\(r.status): \(r.stdout) \(r.stderr)")
    }

    @Test("--step-times into a missing folder is refused before any step, with the file and the flag named (exit 73)")
    func stepTimesFolderChecked() throws {
        let missing = "/nonexistent-folder/step-times.csv"
        let r = try bsvi(["bench", "--method", "vae", "--steps", "2", "--eval-examples", "0", "--hidden", "16", "--latent", "4",
                          "--step-times", missing])
        #expect(r.status == 73 && r.stdout.isEmpty, "\(r.status) \(r.stdout)")
        #expect(r.stderr.contains(missing) && r.stderr.contains("--step-times") && r.stderr.contains("create it"), "\(r.stderr)")
    }
}
