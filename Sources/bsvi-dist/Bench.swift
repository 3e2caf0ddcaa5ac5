import ArgumentParser
import BSVI
import BSVIParallel
import BSVITraining
import Foundation

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmark the real training step and the evaluator; under mpirun, includes the allreduce.")

    @OptionGroup(title: "Model") var model: ModelOptions
    @OptionGroup(title: "Objective") var objective: ObjectiveOptions
    @OptionGroup(title: "Optimizer") var optimizer: OptimizerOptions
    @Option(help: "Timed steps.") var steps: Int = 50
    @Option(help: "Untimed warm-up steps.") var warmup: Int = 5
    @Option(help: "Importance samples per example for the evaluation benchmark.") var evalSamples: Int = 5000
    @Option(help: "Examples per rank for the evaluation benchmark (0: skip).") var evalExamples: Int = 4
    @Option(help: "The evaluator's decoder products, as eval's --matmul-precision: highest (float32), or high or medium (bfloat16: high on AMX tiles, medium on AMX tiles or AVX512_BF16 vectors; the avx512 kernel path). At high or medium the evaluation's % of peak is of that unit's own peak.")
    var matmulPrecision: MatmulPrecision = .highest
    @Option(help: "Dataset for real rows (random binary rows if the file is missing).") var data: String = RunConfiguration.defaultDataPath
    @Option(help: "Write every rank's per-step work and allreduce times (ms) to this CSV file (step,rank,work_ms,allreduce_ms); replaced if it exists.")
    var stepTimes: String?
    @Flag(help: "Also list the step's matrix products by routine and shape: calls, time and % of the FMA peak inside the step (always in --json, as \"products\").")
    var products = false
    @Option(help: "Interleave these methods' steps in one process (comma separated, at least two, e.g. bsvi,svi,vae, or bsvi,bsvi for an A/A check; replaces --method) and compare how close each comes to its own ceiling with the first's, round by round, under the same state of the host. --warmup applies; --steps, the evaluation (--eval-*, --matmul-precision), --products and --step-times do not.")
    var methods: String?
    @Option(help: "--methods: rounds, each one block of every method; the order is rotated every round, forward then backward, so that every method comes first and before every other equally often.") var rounds: Int = 20
    @Option(help: "--methods: a block's timed steps for the method with the most multiply-adds a step; the others run about as many multiply-adds (after one untimed step each block).")
    var blockSteps: Int = 5
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        var config = RunConfiguration()
        config.files.dataPath = data
        var configs: [RunConfiguration] = []  // --methods: one per method
        do {
            config.model = try model.section()
            config.optimizer = optimizer.section
            if let methods {
                // Each method with its own defaults and every flag given, each checked as --method would be.
                configs = try Self.methodList(methods).map { m in
                    var c = config
                    c.objective = objective.section(for: m)
                    try c.validate()
                    return c
                }
            } else {
                config.objective = objective.section
                try config.validate()
            }
            guard steps >= 1, warmup >= 0, evalSamples >= 1, evalExamples >= 0 else {
                throw ValidationError("--steps ≥ 1, --warmup ≥ 0, --eval-samples ≥ 1, --eval-examples ≥ 0")
            }
            if let path = stepTimes, path.isEmpty {
                throw ValidationError("--step-times needs a file name, e.g. --step-times step-times.csv")
            }
            if methods != nil {
                guard rounds >= 1, blockSteps >= 1 else { throw ValidationError("--rounds ≥ 1 and --block-steps ≥ 1") }
                guard stepTimes == nil, !products else {
                    throw ValidationError("--methods times blocks of steps, not every step or product: leave out --step-times and --products, or use --method")
                }
            }
        } catch { failBeforeStart(error) }
        if !configs.isEmpty {
            compareMethods(configs)
            return
        }
        let comm = makeCommunicator()
        runCollectively(comm) {
            // Both fail now, not after the timed steps: a precision this CPU cannot run, and a
            // file that could not be created.
            try matmulPrecision.checkAvailable(comm: comm)
            if let path = stepTimes { try comm.rootDecides { try OutputFile.checkCanCreate(path, flag: "--step-times", inputs: [config.files.dataPath]) } }
            let r = try Benchmark.run(config: config, steps: steps, warmup: warmup, evalSamples: evalSamples,
                                      evalExamples: evalExamples, evalMatmulPrecision: matmulPrecision, stepTimesFile: stepTimes,
                                      comm: comm)
            guard comm.isRoot else { return }
            if json {
                print(String(decoding: try JSONEncoder.snakeCase.encode(r), as: UTF8.self))
                return
            }
            // Under mpirun, what the allreduce costs the job: lockstep waiting and the exchange itself.
            let lockstep = r.ranks == 1 ? "" : String(format: "\n  lockstep          %.2f ms/step waiting for the slowest rank + %.2f exchange (all ranks' mean; the split above is rank 0's)",
                                                      r.lockstepWaitMsPerStep, r.exchangeMsPerStep)
            let yardstick = r.evalBf16PeakGflops.map { String(
                format: " at --matmul-precision %@, %.0f%% of the %@' bfloat16 peak (%.0f GFLOP/s; %d bfloat16 multiply-adds a multiply-add)",
                r.evalMatmulPrecision, 100 * r.evalPeakFraction, matmulPrecision.unit?.displayName ?? "",
                $0, matmulPrecision.bfloat16ProductsPerMultiplyAdd!) }
                ?? String(format: ", %.0f%% of peak", 100 * r.evalPeakFraction)
            let evaluation = evalExamples == 0 ? "not measured (--eval-examples 0)" : String(
                format: "%.0f importance samples/s (K=%d) → %.0f s for 10,000 examples; decoder %.1f GFLOP/s per rank%@",
                r.evalSamplesPerS, r.evalSamples, r.evalSecondsFor10000Examples, r.evalGflopsPerRank, yardstick)
            print(String(numbers: """
                %@ k=%d%@ batch %d on %d rank(s), %d steps (data: %@)
                  machine           %@; kernels %@; OpenBLAS core %@ (%@)
                  examples/s        %.0f
                  ms/step           %.2f   = gemm %.2f + element-wise %.2f + update %.2f + other bookkeeping %.2f + allreduce %.2f (%d bytes)%@
                  useful work       %.2f M multiply-adds/example → %.1f GFLOP/s (%.1f per rank)
                  FMA peak          %.1f GFLOP/s per core (%@ register loop) → %.0f%% of peak
                  own ceiling       %.0f%% of peak (the update's floor %.2f ms/step: memory traffic %.2f, square roots and divisions %.2f) → %.0f%% of the ceiling
                  OpenBLAS sgemm    %.1f GFLOP/s (1024², one thread; not the yardstick)
                  evaluation        %@
                """, r.method, r.k, r.method == "bsvi" ? " π=\(r.pi)" : "", r.batchSize, r.ranks, r.steps, r.dataSource,
                KernelPath.cpuDescription, r.kernelIsa, r.blasCore, r.blasCoreChooser.note,
                r.examplesPerS, r.msPerStep, r.gemmMsPerStep, r.elementwiseMsPerStep, r.updateMsPerStep,
                r.bookkeepingMsPerStep, r.allreduceMsPerStep, r.allreduceBytes, lockstep,
                Double(r.usefulMultiplyAddsPerExample) / 1e6, r.gflops, r.gflopsPerRank,
                r.fmaPeakGflops, r.fmaPeakIsa, 100 * r.peakFraction,
                100 * r.ceilingFraction, r.updateFloorMs, r.updateTrafficFloorMs, r.updateDividerFloorMs, 100 * r.fractionOfCeiling,
                r.blasGflops, evaluation))
            if let path = stepTimes {
                print("  step times        every rank's work and allreduce ms per step in \(path)")
            }
            if products { print(productTable(r)) }
            // (A bfloat16 precision's evaluation is set against its unit's peak, not these readings.)
            let fmaFractions = [r.peakFraction] + (r.evalBf16PeakGflops == nil ? [r.evalPeakFraction] : [])
            if (fmaFractions + (products ? r.products.map(\.peakFraction) : [])).max()! > 1 {
                print(String(format: "  note              a fraction above 100%% means the host took the core away during both peak readings (%@ GFLOP/s); run again",
                             r.fmaPeakReadings.map { String(format: "%.1f", $0) }.joined(separator: " and ")))
            }
        }
    }
}

extension Bench {
    /// `--methods`: at least two method names, comma separated.
    static func methodList(_ text: String) throws -> [TrainingMethod] {
        let names = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        let list = try names.map { name in
            guard let m = TrainingMethod(rawValue: name) else {
                throw ValidationError("--methods: unknown method '\(name)' in '\(text)'; the methods are vae, iwae, svi and bsvi")
            }
            return m
        }
        // A method may come twice: an A/A run, whose rounds should split evenly, checks the comparison itself.
        guard list.count >= 2 else {
            throw ValidationError("--methods needs at least two methods, comma separated (e.g. bsvi,svi,vae), got '\(text)'")
        }
        return list
    }

    /// `--methods`: the interleaved comparison and its report.
    func compareMethods(_ configs: [RunConfiguration]) {
        let comm = makeCommunicator()
        runCollectively(comm) {
            let r = try Benchmark.compareMethods(configs: configs, rounds: rounds, blockSteps: blockSteps, warmup: warmup, comm: comm)
            guard comm.isRoot else { return }
            if json {
                print(String(decoding: try JSONEncoder.snakeCase.encode(r), as: UTF8.self))
                return
            }
            func label(_ e: MethodComparisonReport.Entry, _ c: RunConfiguration) -> String {
                switch c.objective.method {
                case .vae: return "vae"
                case .bsvi: return "bsvi k=\(e.k) π=\(c.objective.pi.rawValue)"
                default: return "\(e.method) k=\(e.k)"
                }
            }
            let labels = zip(r.methods, configs).map(label)
            var lines = [
                String(numbers: "methods interleaved in one process: %@; batch %d on %d rank(s), %d rounds (data: %@)",
                       labels.joined(separator: ", "), r.batchSize, r.ranks, r.rounds, r.dataSource),
                "  machine           \(KernelPath.cpuDescription); kernels \(r.kernelIsa); OpenBLAS core \(r.blasCore)",
                String(numbers: "  FMA peak          %.1f GFLOP/s per core (%@ register loop; the higher of %@)", r.fmaPeakGflops, r.fmaPeakIsa,
                       r.fmaPeakReadings.map { String(format: "%.1f", $0) }.joined(separator: " and ")),
                "  blocks            one untimed step, then " + zip(labels, r.methods).map { "\($1.stepsPerBlock) timed (\($0))" }.joined(separator: ", ")
                    + "; the order rotated every round, forward then backward",
                "  method                     ms/step   examples/s   of peak   own ceiling   of its ceiling   against \(labels[0]), round by round",
            ]
            for (name, e) in zip(labels, r.methods) {
                let against = e.roundsAtLeastAsClose.map {
                    String(numbers: "at least as close in %d of %d rounds, %+.2f points (median)", $0, r.rounds, e.medianDifferencePoints!)
                } ?? ""
                lines.append(String(numbers: "  %@ %9.2f %12.0f %8.1f%% %12.1f%% %15.1f%%   %@", name.padding(toLength: 24, withPad: " ", startingAt: 0),
                                    e.msPerStep, e.examplesPerS, 100 * e.peakFraction, 100 * e.ceilingFraction, 100 * e.fractionOfCeiling, against))
            }
            print(lines.joined(separator: "\n"))
        }
    }
}

/// `bench --products`: the products' share of the step, one line per routine and shape.
func productTable(_ r: BenchmarkReport) -> String {
    var lines = [String(numbers: "  products          gemm %.2f ms/step by routine and shape%@, the most time first:", r.gemmMsPerStep,
                        r.ranks == 1 ? "" : " (rank 0's)"),
                 "    routine                m ×    k ×    n   calls/step    µs/call   GFLOP/s   of peak"]
    for p in r.products {
        lines.append(String(numbers: "    %@ %5d × %4d × %4d   %10.2f %10.1f %9.1f %8.0f%%",
                            p.routine.rawValue.padding(toLength: 20, withPad: " ", startingAt: 0), p.m, p.k, p.n,
                            p.callsPerStep, p.microsecondsPerCall, p.gflops, 100 * p.peakFraction))
    }
    return lines.joined(separator: "\n")
}
