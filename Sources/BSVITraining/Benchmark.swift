import BSVI
import BSVIParallel
import BSVIStorage
import Foundation

/// `bsvi-dist bench`: the real training step (TrainingStep) on data of the real shape, timed
/// and split into matrix products, element-wise work, refinement bookkeeping and allreduce; the
/// useful work rate against the core's FMA peak (a register-only loop at the active kernel
/// path's vector width, measured in the same run — the hardware, not a library, is the
/// yardstick); OpenBLAS's sgemm rate on its own; and the importance-sampling evaluator's throughput.
public struct BenchmarkReport: Codable {
    public var cpuModel: String
    /// The kernel path in use: avx512, avx2 or portable.
    public var kernelIsa: String
    /// The OpenBLAS core in use (after the start-up correction).
    public var blasCore: String
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
    public var bookkeepingMsPerStep: Double
    public var allreduceMsPerStep: Double
    public var allreduceBytes: Int
    public var usefulMultiplyAddsPerExample: Int
    public var gflops: Double
    public var gflopsPerRank: Double
    /// Single-precision FMA peak of one core (GFLOP/s) at the widest vector width in use by the
    /// kernels or by OpenBLAS (`fmaPeakIsa`).
    public var fmaPeakGflops: Double
    public var fmaPeakIsa: String
    /// Useful FLOP/s per rank ÷ FMA peak (≤ 1 by construction).
    public var peakFraction: Double
    /// OpenBLAS's one-thread sgemm rate on 1024² matrices (GFLOP/s), for comparison only.
    public var blasGflops: Double
    public var evalSamples: Int
    public var evalSamplesPerS: Double
    /// The evaluator's useful work per rank (GFLOP/s: encoder, importance and ELBO samples
    /// through the decoder, refinement steps) and its fraction of the FMA peak.
    public var evalGflopsPerRank: Double
    public var evalPeakFraction: Double
    /// Projected wall time of K = evalSamples on a 10,000-example split with these ranks.
    public var evalSecondsFor10000Examples: Double
}

public enum Benchmark {
    /// OpenBLAS: best of several large square sgemms on one core, in GFLOP/s.
    public static func measureBLASRate(size n: Int = 1024, repeats: Int = 8) -> Double {
        let a = FloatBuffer(count: n * n), b = FloatBuffer(count: n * n), c = FloatBuffer(count: n * n)
        for i in 0..<(n * n) { a[i] = Float(i % 7) * 0.1; b[i] = Float(i % 5) * 0.1 }
        let am = a.matrix(rows: n, cols: n), bm = b.matrix(rows: n, cols: n), cm = c.matrix(rows: n, cols: n)
        var best = Double.infinity
        for _ in 0..<repeats {
            let t = DispatchTime.now().uptimeNanoseconds
            gemm(am, bm, into: cm)
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t) * 1e-9)
        }
        return 2 * Double(n * n * n) / best / 1e9
    }

    public static func run(config: RunConfiguration, steps: Int, warmup: Int, evalSamples: Int, evalExamples: Int,
                           comm: Communicator) throws -> BenchmarkReport {
        try ShardPlan.checkBatchSplits(config.optimizer.batchSize, across: comm.size)
        let b = ShardPlan.balancedPart(of: config.optimizer.batchSize, parts: comm.size, index: comm.rank).count
        // Real rows when the default dataset exists, else random binary rows of MNIST's shape.
        var width = 784
        var source = "random binary rows (784 pixels)"
        var rowsBuffer: FloatBuffer
        if FileManager.default.fileExists(atPath: config.files.dataPath), let ds = try? BinaryDataset(path: config.files.dataPath) {
            let (n, w) = try ds.shape(of: .train)
            width = w
            let start = min(comm.rank * b, max(n - b, 0))
            rowsBuffer = try ds.readAll(.train, rows: start..<(start + b))
            source = config.files.dataPath
        } else {
            rowsBuffer = FloatBuffer(count: b * width)
            let s = RandomStream(seed: config.optimizer.seed, purpose: .sampling, UInt64(comm.rank))
            for i in 0..<(b * width) { rowsBuffer[i] = s.uniform(UInt64(i)) < 0.3 ? 1 : 0 }
        }
        let x = rowsBuffer.matrix(rows: b, cols: width)
        let ids = (0..<b).map { comm.rank * b + $0 }
        let model = VAEModel(shape: config.model.shape(inputDim: width), piCount: config.objective.settings.piCount)
        let params = model.makeInitialParameters(seed: config.optimizer.seed)
        let adam = Adam(parameterCount: model.parameterCount, learningRate: config.optimizer.learningRate)
        let step = TrainingStep(model: model, settings: config.objective.settings, localBatch: b, globalBatch: config.optimizer.batchSize, adam: adam)

        func oneStep(_ i: Int) {
            _ = step.run(x: x, exampleIDs: ids, noise: NoiseSource(seed: config.optimizer.seed, purpose: .trainingNoise, context: UInt64(i)),
                         params: params, comm: comm, stopRequested: false)
        }
        for i in 0..<warmup { oneStep(i) }
        // The yardsticks after the warm-up: by then OpenBLAS's idle pool threads (if the
        // environment gave it any) have stopped spinning and no longer share the core.
        let yardstick = KernelPath.yardstick(active: KernelPath.active, blasCore: OpenBLASCore.current)
        let fmaPeak = yardstick.fmaPeakGigaflops()
        let blasRate = measureBLASRate()
        comm.barrier()
        StepProfile.reset()
        StepProfile.enabled = true
        let allreduceBefore = step.allreduceNanoseconds
        let t0 = DispatchTime.now().uptimeNanoseconds
        for i in 0..<steps { oneStep(warmup + i) }
        let elapsed = DispatchTime.now().uptimeNanoseconds - t0
        StepProfile.enabled = false
        let maxElapsed = Double(comm.allgather(elapsed).max()!) * 1e-9
        let perStep = 1 / Double(steps)
        let totalMs = Double(elapsed) * 1e-6 * perStep
        let gemmMs = Double(StepProfile.gemmNanoseconds) * 1e-6 * perStep
        let elementMs = Double(StepProfile.elementwiseNanoseconds) * 1e-6 * perStep
        let allreduceMs = Double(step.allreduceNanoseconds - allreduceBefore) * 1e-6 * perStep
        let examplesPerS = Double(steps * config.optimizer.batchSize) / maxElapsed
        let macs = config.objective.settings.usefulMultiplyAddsPerExample(model: model)
        let gflops = examplesPerS * Double(macs) * 2 / 1e9

        // Evaluation: K importance samples per example, as DistributedEvaluation runs it.
        let sampler = ImportanceSampler(model: model, samples: evalSamples, batchCapacity: 1,
                                        refinement: config.objective.evaluationRefinement, proposal: .encoder, chunk: 500)
        comm.barrier()
        let e0 = DispatchTime.now().uptimeNanoseconds
        for i in 0..<evalExamples {
            let xi = x.rows((i % b)..<(i % b + 1))
            _ = sampler.evaluate(x: xi, exampleIDs: [i], seed: config.optimizer.seed, params: params)
        }
        let evalElapsed = Double(comm.allgather(DispatchTime.now().uptimeNanoseconds - e0).max()!) * 1e-9
        // With --eval-examples 0 the evaluation part is skipped and reported as 0.
        let samplesPerS = evalExamples > 0 ? Double(evalExamples * evalSamples * comm.size) / evalElapsed : 0
        // The evaluator's work per example: the encoder, K importance samples and 2 × elboSamples
        // ELBO samples through the decoder, and the refinement's steps (forward and back to z).
        let g = Double(model.decoder.multiplyAddsPerRow)
        let evalMultiplyAdds = Double(model.encoder.multiplyAddsPerRow)
            + Double(evalSamples + 2 * sampler.elboSamples) * g + Double(2 * sampler.refinement.steps) * g
        let evalGflopsPerRank = samplesPerS / Double(evalSamples * comm.size) * evalMultiplyAdds * 2 / 1e9
        return BenchmarkReport(
            cpuModel: KernelPath.cpuModel, kernelIsa: KernelPath.active.rawValue, blasCore: OpenBLASCore.current,
            method: config.objective.method.rawValue, k: config.objective.k, pi: config.objective.pi.rawValue, batchSize: config.optimizer.batchSize, ranks: comm.size,
            steps: steps, dataSource: source, examplesPerS: examplesPerS, msPerStep: totalMs, gemmMsPerStep: gemmMs,
            elementwiseMsPerStep: elementMs, bookkeepingMsPerStep: max(0, totalMs - gemmMs - elementMs - allreduceMs),
            allreduceMsPerStep: allreduceMs, allreduceBytes: step.exchange.buffer.count * 4,
            usefulMultiplyAddsPerExample: macs, gflops: gflops, gflopsPerRank: gflops / Double(comm.size), fmaPeakGflops: fmaPeak, fmaPeakIsa: yardstick.rawValue,
            peakFraction: gflops / Double(comm.size) / fmaPeak, blasGflops: blasRate, evalSamples: evalSamples,
            evalSamplesPerS: samplesPerS, evalGflopsPerRank: evalGflopsPerRank, evalPeakFraction: evalGflopsPerRank / fmaPeak,
            evalSecondsFor10000Examples: samplesPerS > 0 ? 10_000 * Double(evalSamples) / samplesPerS : 0)
    }
}
