import BSVI
import BSVIParallel
import BSVIStorage
import Foundation

/// `bsvi-dist bench`: the real training step (TrainingStep) on data of the real shape, timed
/// and split into matrix products, element-wise work, the Adam update, other bookkeeping and allreduce; the
/// useful work rate against the core's FMA peak (a register-only loop at the widest vector
/// width the work uses, `PeakYardstick`, measured in the same run — the hardware, not a library,
/// is the yardstick) and against the step's own ceiling (that peak plus the parameter update's
/// memory floor); OpenBLAS's sgemm rate on its own; and the importance-sampling evaluator's throughput.
public struct BenchmarkReport: Codable {
    public var cpuModel: String
    /// CPUID's family and model numbers (KernelPath.cpuFamily), which tell apart CPUs whose
    /// brand strings a VM shortens alike.
    public var cpuFamily: Int
    public var cpuModelNumber: Int
    /// The kernel path in use: avx512, avx2 or portable.
    public var kernelIsa: String
    /// The OpenBLAS core in use (after the start-up correction).
    public var blasCore: String
    /// Who chose that core: "openblas", "bsvi-dist" or "OPENBLAS_CORETYPE" (the user).
    public var blasCoreChooser: OpenBLASCoreChooser
    public var method: String
    public var k: Int
    public var pi: String
    public var batchSize: Int
    public var ranks: Int
    public var steps: Int
    public var dataSource: String
    public var examplesPerS: Double
    public var msPerStep: Double
    public var gemmMsPerStep: Double
    public var elementwiseMsPerStep: Double
    /// Adam's update of every parameter (compare `updateFloorMs`).
    public var updateMsPerStep: Double
    /// The rest: SVI optimizer steps, buffer weights, transposes, resetting the exchange's sums and
    /// flags and scanning its gradient.
    public var bookkeepingMsPerStep: Double
    public var allreduceMsPerStep: Double
    /// The allreduce's cost to the job, split (LockstepSplit, over every rank's steps): the mean
    /// time a step loses to ranks waiting for the slowest rank's work, and the slowest rank's time
    /// in the allreduce (the exchange itself). On one rank: no wait, and the local no-op's time.
    public var lockstepWaitMsPerStep: Double
    public var exchangeMsPerStep: Double
    public var allreduceBytes: Int
    public var usefulMultiplyAddsPerExample: Int
    public var gflops: Double
    public var gflopsPerRank: Double
    /// Single-precision FMA peak of one core (GFLOP/s) at the widest vector width in use by the
    /// kernels or by OpenBLAS (`fmaPeakIsa`): the higher of `fmaPeakReadings`.
    public var fmaPeakGflops: Double
    /// The peak measured before the timed steps and again after the evaluation.
    public var fmaPeakReadings: [Double]
    public var fmaPeakIsa: String
    /// Useful FLOP/s per rank ÷ FMA peak: ≤ 1 unless the host took the core away during both
    /// peak readings (`bench` then says so).
    public var peakFraction: Double
    /// One parameter update's floor on this core (ms): the larger of `updateTrafficFloorMs` and
    /// `updateDividerFloorMs`. Every rank updates every parameter each step.
    public var updateFloorMs: Double
    /// Adam's memory traffic with none of its arithmetic (`Adam.trafficFloorSeconds`).
    public var updateTrafficFloorMs: Double
    /// Adam's square roots and divisions at the core's rate for them (`Adam.dividerFloorSeconds`).
    public var updateDividerFloorMs: Double
    /// This step's own ceiling as a fraction of the FMA peak: its useful FLOPs per rank at the
    /// peak, plus the update's floor (the one per-step cost no arithmetic hides). A method with
    /// fewer FLOPs per update (vae) has a lower ceiling than one with many (bsvi).
    public var ceilingFraction: Double
    /// peakFraction ÷ ceilingFraction: how close the step comes to its own ceiling.
    public var fractionOfCeiling: Double
    /// OpenBLAS's one-thread sgemm rate on 1024² matrices (GFLOP/s), for comparison only.
    public var blasGflops: Double
    public var evalSamples: Int
    public var evalSamplesPerS: Double
    /// The decoder's products in the evaluation: "highest" (float32), "high" or "medium"
    /// (bfloat16; `bench --matmul-precision`).
    public var evalMatmulPrecision: String
    /// The unit that multiplied the bfloat16 products, "tiles" or "vectors" (`BFloat16Unit`); nil
    /// at highest.
    public var evalBf16Unit: String?
    /// The evaluator's useful work per rank (GFLOP/s: encoder, importance and ELBO samples
    /// through the decoder, refinement steps) and its fraction of the FMA peak; at a bfloat16
    /// precision, of its unit's peak instead, counting each multiply-add as the bfloat16
    /// multiply-adds it takes (3 at high; the encoder's and the refinement's float32 work, under
    /// 1 % of the total, counted alike).
    public var evalGflopsPerRank: Double
    public var evalPeakFraction: Double
    /// The bfloat16 unit's peak (GFLOP/s, one core), measured only when a bfloat16 precision's
    /// evaluation is.
    public var evalBf16PeakGflops: Double?
    /// Projected wall time of K = evalSamples on a 10,000-example split with these ranks.
    public var evalSecondsFor10000Examples: Double
    /// `gemmMsPerStep` by routine and shape (this rank's, rank 0 under mpirun), the most time first.
    public var products: [ProductTiming]
}

/// The matrix products of one routine and shape inside the timed steps: what `bench --products`
/// lists, to tell which product runs how far from the FMA peak in the step itself (with the
/// caches as the step leaves them, unlike a product timed alone).
public struct ProductTiming: Codable {
    public var routine: ProductRoutine
    /// An m×k by k×n product (m·k·n multiply-adds a call); a weight gradient's k is its rows.
    public var m: Int, k: Int, n: Int
    public var callsPerStep: Double
    public var microsecondsPerCall: Double
    public var gflops: Double
    /// gflops ÷ the FMA peak.
    public var peakFraction: Double

    init(_ tally: ProductTally, steps: Int, fmaPeakGflops: Double) {
        let s = tally.shape
        routine = s.routine
        (m, k, n) = (s.m, s.k, s.n)
        callsPerStep = Double(tally.calls) / Double(steps)
        microsecondsPerCall = Double(tally.nanoseconds) * 1e-3 / Double(tally.calls)
        gflops = tally.nanoseconds > 0 ? 2 * Double(s.multiplyAdds * tally.calls) / Double(tally.nanoseconds) : 0
        peakFraction = gflops / fmaPeakGflops
    }
}

public enum Benchmark {
    /// OpenBLAS: best of several large square sgemms on one core, in GFLOP/s.
    public static func measureBLASRate(size n: Int = 1024, repeats: Int = 8) -> Double {
        let a = FloatBuffer(count: n * n), b = FloatBuffer(count: n * n), c = FloatBuffer(count: n * n)
        for i in 0..<(n * n) { a[i] = Float(i % 7) * 0.1; b[i] = Float(i % 5) * 0.1 }
        let am = a.matrix(rows: n, cols: n), bm = b.matrix(rows: n, cols: n), cm = c.matrix(rows: n, cols: n)
        return 2 * Double(n * n * n) / shortestSeconds(ofPasses: repeats) { gemm(am, bm, into: cm) } / 1e9
    }

    /// With `stepTimesFile`, rank 0 also writes every rank's per-step times there (RankStepTimes).
    public static func run(config: RunConfiguration, steps: Int, warmup: Int, evalSamples: Int, evalExamples: Int,
                           evalMatmulPrecision: MatmulPrecision = .highest,
                           stepTimesFile: String? = nil, comm: Communicator) throws -> BenchmarkReport {
        let (rows, x, source) = try benchmarkRows(config: config, comm: comm)
        defer { withExtendedLifetime(rows) {} }  // x is a view of rows
        let stepper = BenchStepper(config: config, x: x, comm: comm)
        let model = stepper.model, params = stepper.params
        let t = try timeSteps(stepper, steps: steps, warmup: warmup, comm: comm)
        if let path = stepTimesFile { try comm.rootDecides { try t.stepTimes.write(to: path) } }
        // Not the first timed step of several ranks: each rank's work on it runs from its own exit
        // from the barrier, which the ranks leave at different moments, and the early one's wait
        // for the late one would count as exchange (with 2 timed steps, once more than the step).
        let lockstep = LockstepSplit(comm.size > 1 ? t.stepTimes.droppingFirstStep : t.stepTimes)
        let e = timeEvaluation(config: config, model: model, params: params, x: x, samples: evalSamples,
                               examples: evalExamples, matmulPrecision: evalMatmulPrecision, comm: comm)
        // A bfloat16 precision's yardstick: its unit's own peak, not the FMA loop's.
        let bf16Unit = evalMatmulPrecision.unit
        let bf16Peak = evalExamples > 0 ? bf16Unit?.peakGigaflops(seconds: 0.3) : nil
        // The peak once more, after the evaluation: the core's peak does not change, so a lower of
        // the two readings is the shared host taking the core away (both ranks of a two-rank run
        // once read half the peak at once, which put the evaluation at 138 % of it). The higher
        // reading is the yardstick for the steps and the evaluation alike.
        let fmaPeakReadings = [t.fmaPeak, t.yardstick.gigaflops()]
        let fmaPeak = fmaPeakReadings.max()!
        let perStep = 1 / Double(steps)
        let totalMs = t.elapsedNanoseconds * 1e-6 * perStep
        let gemmMs = t.gemmNanoseconds * 1e-6 * perStep
        let elementMs = t.elementwiseNanoseconds * 1e-6 * perStep
        let allreduceMs = t.allreduceNanoseconds * 1e-6 * perStep
        let updateMs = t.updateNanoseconds * 1e-6 * perStep
        let examplesPerS = Double(steps * config.optimizer.batchSize) / t.slowestRankSeconds
        let macs = stepper.multiplyAdds
        let gflops = examplesPerS * Double(macs) * 2 / 1e9
        let evalGflopsPerRank = e.samplesPerS / Double(evalSamples * comm.size) * e.multiplyAddsPerExample * 2 / 1e9
        let gflopsPerRank = gflops / Double(comm.size), peakFraction = gflopsPerRank / fmaPeak
        let stepCeiling = StepCeiling(flopsPerRank: Double(config.optimizer.batchSize * macs * 2) / Double(comm.size), fmaPeakGflops: fmaPeak,
                                      trafficSeconds: t.updateTrafficSeconds, dividerSeconds: t.updateDividerSeconds)
        let updateFloorMs = stepCeiling.updateFloorMs, ceiling = stepCeiling.fraction
        return BenchmarkReport(
            cpuModel: KernelPath.cpuModel, cpuFamily: KernelPath.cpuFamily, cpuModelNumber: KernelPath.cpuModelNumber,
            kernelIsa: KernelPath.active.rawValue, blasCore: OpenBLASCore.current,
            blasCoreChooser: .current,
            method: config.objective.method.rawValue, k: config.objective.k, pi: config.objective.pi.rawValue, batchSize: config.optimizer.batchSize, ranks: comm.size,
            steps: steps, dataSource: source, examplesPerS: examplesPerS, msPerStep: totalMs, gemmMsPerStep: gemmMs,
            elementwiseMsPerStep: elementMs, updateMsPerStep: updateMs,
            bookkeepingMsPerStep: max(0, totalMs - gemmMs - elementMs - updateMs - allreduceMs),
            allreduceMsPerStep: allreduceMs, lockstepWaitMsPerStep: lockstep.waitMs, exchangeMsPerStep: lockstep.exchangeMs,
            allreduceBytes: t.allreduceBytes,
            usefulMultiplyAddsPerExample: macs, gflops: gflops, gflopsPerRank: gflopsPerRank, fmaPeakGflops: fmaPeak, fmaPeakReadings: fmaPeakReadings,
            fmaPeakIsa: t.yardstick.rawValue, peakFraction: peakFraction, updateFloorMs: updateFloorMs,
            updateTrafficFloorMs: t.updateTrafficSeconds * 1e3, updateDividerFloorMs: t.updateDividerSeconds * 1e3,
            ceilingFraction: ceiling, fractionOfCeiling: peakFraction / ceiling, blasGflops: t.blasRate,
            evalSamples: evalSamples, evalSamplesPerS: e.samplesPerS, evalMatmulPrecision: evalMatmulPrecision.rawValue,
            evalBf16Unit: bf16Unit?.rawValue, evalGflopsPerRank: evalGflopsPerRank,
            evalPeakFraction: bf16Peak.map { evalGflopsPerRank * Double(evalMatmulPrecision.bfloat16ProductsPerMultiplyAdd!) / $0 }
                ?? evalGflopsPerRank / fmaPeak,
            evalBf16PeakGflops: bf16Peak,
            evalSecondsFor10000Examples: e.samplesPerS > 0 ? 10_000 * Double(evalSamples) / e.samplesPerS : 0,
            products: t.products.sorted { $0.nanoseconds > $1.nanoseconds }
                .map { ProductTiming($0, steps: steps, fmaPeakGflops: fmaPeak) })
    }

    /// This rank's share of the batch: real training rows when the dataset exists, else random
    /// binary rows of MNIST's shape; the same rows as a matrix, `x`, which is a view of `rows` (the
    /// caller keeps `rows` alive while it uses `x`); and where they came from.
    static func benchmarkRows(config: RunConfiguration, comm: Communicator) throws -> (rows: FloatBuffer, x: Matrix, source: String) {
        try ShardPlan.checkBatchSplits(config.optimizer.batchSize, across: comm.size)
        let b = ShardPlan.balancedPart(of: config.optimizer.batchSize, parts: comm.size, index: comm.rank).count
        let (rows, source) = try batchRows(config: config, count: b, comm: comm)
        return (rows, rows.matrix(rows: b, cols: rows.count / b), source)
    }

    /// This rank's `count` rows (benchmarkRows), flat.
    private static func batchRows(config: RunConfiguration, count b: Int, comm: Communicator) throws -> (FloatBuffer, String) {
        let path = config.files.dataPath
        // A file that is there but cannot be read is an error, not a reason for random rows.
        if FileManager.default.fileExists(atPath: path) {
            let ds = try BinaryDataset(path: path)
            let (n, _) = try ds.shape(of: .train)
            guard b <= n else {
                throw TrainingError.invalidConfiguration(flag: "--batch-size", problem: "\(path)'s /train has \(n) rows, fewer than a rank's \(b); "
                                                         + "pass a smaller --batch-size or another --data")
            }
            let start = min(comm.rank * b, max(n - b, 0))
            return (try ds.readAll(.train, rows: start..<(start + b)), path)
        }
        let width = 784
        let rows = FloatBuffer(count: b * width)
        let s = RandomStream(seed: config.optimizer.seed, purpose: .sampling, UInt64(comm.rank))
        for i in 0..<(b * width) { rows[i] = s.uniform(UInt64(i)) < 0.3 ? 1 : 0 }
        return (rows, "random binary rows (784 pixels)")
    }

    struct StepTiming {
        var elapsedNanoseconds, gemmNanoseconds, elementwiseNanoseconds, allreduceNanoseconds, updateNanoseconds: Double
        var slowestRankSeconds: Double
        var allreduceBytes: Int
        var stepTimes: RankStepTimes
        var yardstick: PeakYardstick
        var fmaPeak, blasRate, updateTrafficSeconds, updateDividerSeconds: Double
        var products: [ProductTally]
    }

    /// `warmup` untimed steps, the yardsticks, then `steps` timed training steps split by kind.
    static func timeSteps(_ stepper: BenchStepper, steps: Int, warmup: Int, comm: Communicator) throws -> StepTiming {
        let step = stepper.trainingStep, model = stepper.model
        for _ in 0..<warmup { stepper.step() }
        // The yardsticks after the warm-up: by then OpenBLAS's idle pool threads (if the
        // environment gave it any) have stopped spinning and no longer share the core.
        let yardstick = PeakYardstick.forWork(kernels: KernelPath.active, blasCore: OpenBLASCore.current)
        let fmaPeak = yardstick.gigaflops()
        let blasRate = measureBLASRate()
        let updateTraffic = Adam.trafficFloorSeconds(parameterCount: model.vectorLength)
        let updateDivider = Adam.dividerFloorSeconds(parameterCount: model.vectorLength)
        comm.barrier()
        StepProfile.reset()
        StepProfile.enabled = true
        let updateBefore = step.updateNanoseconds
        let t0 = DispatchTime.now().uptimeNanoseconds
        // Per step (ms): this rank's work, from leaving the last allreduce to entering this one,
        // and its time in the allreduce; every rank's series are gathered into RankStepTimes.
        var work: [Double] = [], inAllreduce: [Double] = []
        work.reserveCapacity(steps)
        inAllreduce.reserveCapacity(steps)
        var left = t0
        for _ in 0..<steps {
            stepper.step()
            let a = step.lastAllreduce
            work.append(Double(a.start - left) * 1e-6)
            inAllreduce.append(Double(a.end - a.start) * 1e-6)
            left = a.end
        }
        let elapsed = DispatchTime.now().uptimeNanoseconds - t0
        StepProfile.enabled = false
        let stepTimes = RankStepTimes(gathered: comm.startAllgather(RankStepTimes.gatherable(work: work, allreduce: inAllreduce)).wait(),
                                      ranks: comm.size)
        return StepTiming(
            elapsedNanoseconds: Double(elapsed), gemmNanoseconds: Double(StepProfile.gemmNanoseconds),
            elementwiseNanoseconds: Double(StepProfile.elementwiseNanoseconds),
            allreduceNanoseconds: inAllreduce.reduce(0, +) * 1e6,
            updateNanoseconds: Double(step.updateNanoseconds - updateBefore),
            slowestRankSeconds: Double(comm.allgather(elapsed).max()!) * 1e-9, allreduceBytes: step.exchange.buffer.count * 4,
            stepTimes: stepTimes, yardstick: yardstick, fmaPeak: fmaPeak, blasRate: blasRate, updateTrafficSeconds: updateTraffic,
            updateDividerSeconds: updateDivider,
            products: StepProfile.products)
    }

    /// The evaluator as DistributedEvaluation runs it (encoder and refinement for
    /// `DistributedEvaluation.roundRowsPerRank` examples together, each example's K samples in
    /// chunks of `ImportanceSampler.evaluationChunk(for:)`) on `examples` rows per rank: samples per
    /// second over all ranks, and the multiply-adds per example (encoder, K importance samples
    /// and 2 × elboSamples ELBO samples through the decoder, the refinement's steps forward and
    /// back to z). With
    /// `examples` = 0 the evaluation is skipped and reported as 0.
    static func timeEvaluation(config: RunConfiguration, model: VAEModel, params: FloatBuffer, x: Matrix, samples: Int,
                               examples: Int, matmulPrecision: MatmulPrecision, comm: Communicator)
        -> (samplesPerS: Double, multiplyAddsPerExample: Double) {
        let group = DistributedEvaluation.roundRowsPerRank
        let sampler = ImportanceSampler(model: model, samples: samples, batchCapacity: group,
                                        refinement: config.objective.evaluationRefinement, proposal: .encoder,
                                        chunk: ImportanceSampler.evaluationChunk(for: matmulPrecision), matmulPrecision: matmulPrecision)
        comm.barrier()
        let e0 = DispatchTime.now().uptimeNanoseconds
        var done = 0
        while done < examples {  // x's rows in order, starting over at its end
            let start = done % x.rows, n = min(group, examples - done, x.rows - start)
            _ = sampler.evaluate(x: x.rows(start..<(start + n)), exampleIDs: Array(done..<(done + n)),
                                 seed: config.optimizer.seed, params: params)
            done += n
        }
        let elapsed = Double(comm.allgather(DispatchTime.now().uptimeNanoseconds - e0).max()!) * 1e-9
        let g = Double(model.decoder.multiplyAddsPerRow)
        let multiplyAdds = Double(model.encoder.multiplyAddsPerRow)
            + Double(samples + 2 * sampler.elboSamples) * g + Double(2 * sampler.refinement.steps) * g
        return (examples > 0 ? Double(examples * samples * comm.size) / elapsed : 0, multiplyAdds)
    }
}
