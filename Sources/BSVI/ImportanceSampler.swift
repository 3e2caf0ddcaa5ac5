import Foundation

/// Which proposal the importance sampler draws from.
public enum Proposal: String, CaseIterable, Codable, Sendable {
    /// q(z; λ₀), the encoder's output.
    case encoder
    /// q(z; λ_k) after SVI refinement with the decoder fixed (still a valid stochastic lower bound).
    case refined
}

/// log p̂(x) = logsumexp_s log w_s − log S with S samples from q(z; λ), processed `chunk`
/// samples at a time (memory independent of S) and accumulated in Float64; plus Monte Carlo
/// ELBOs (analytic KL) at λ₀ and at the refined λ_k (`SVIRefinement` on the evaluation's own
/// refinement noise, `NoiseSource.evaluationRefinement`).
public final class ImportanceSampler {
    /// Samples per decoder pass in `eval`, `compare` and `bench` (in float32 and on the AVX512_BF16
    /// vectors; `evaluationChunk(for:)` gives the AMX tiles theirs). At 120 rows a pass's
    /// activations (two 120 × 200 layers, 190 KB) and the decoder's weights (0.8 MB) sit in a
    /// 2 MiB L2 with room to spare; at 500 they filled it, and the full test split on two ranks
    /// took ≈ 10 % longer (docs/benchmarks.md). On AVX-512 the 120 rows are ten register blocks of
    /// 12 (blocks hold up to 13; chunks of 117 or 130 rows, all blocks of 13, were no faster: stop
    /// 61); on AVX2, twenty of 6.
    /// The chunk never changes a result (ImportanceSamplerTests.chunkIndependence).
    public static let evaluationChunk = 120

    /// The chunk for `precision`'s decoder: `evaluationChunk`, or 128 on AMX tiles, whose blocks
    /// are 32 rows (at 120 the tiles multiply 8 zero rows a pass: 6 % of their work; 7–8 % faster
    /// at 128 in scripts/kernel-bench, docs/benchmarks.md, stop 59). The bits stay the same
    /// (MatmulPrecisionTests.evaluationAgrees).
    public static func evaluationChunk(for precision: MatmulPrecision) -> Int {
        precision.unit == .tiles ? 128 : evaluationChunk
    }

    public let model: VAEModel
    public let samples: Int
    public let chunk: Int
    public let elboSamples: Int
    public let batchCapacity: Int
    public let refinement: RefinementSettings
    public let proposal: Proposal
    public let matmulPrecision: MatmulPrecision
    /// The decoder in bfloat16, for `matmulPrecision` high and medium.
    private let bfloat16Decoder: BFloat16Decoder?
    private let encoder: MLPWorkspace
    private let latents: LatentWorkspace
    private let refiner: SVIRefinement
    private let lambdaInitial: Matrix
    private let lambdaRefined: Matrix
    private let kl: FloatBuffer
    private let storage: [FloatBuffer]

    /// `bfloat16Unit`: where a bfloat16 `matmulPrecision` multiplies; nil for the one it prefers
    /// on this CPU (a test's choice otherwise).
    public init(model: VAEModel, samples: Int, batchCapacity: Int, refinement: RefinementSettings,
                proposal: Proposal = .encoder, chunk: Int = 100, elboSamples: Int = 100,
                matmulPrecision: MatmulPrecision = .highest, bfloat16Unit: BFloat16Unit? = nil) {
        precondition(samples > 0 && chunk > 0 && batchCapacity > 0 && elboSamples > 0)
        self.model = model
        self.samples = samples
        self.chunk = min(chunk, max(samples, elboSamples))
        self.elboSamples = elboSamples
        self.batchCapacity = batchCapacity
        self.refinement = refinement
        self.proposal = proposal
        self.matmulPrecision = matmulPrecision
        bfloat16Decoder = matmulPrecision == .highest ? nil
            : BFloat16Decoder(mlp: model.decoder, precision: matmulPrecision, capacity: self.chunk, unit: bfloat16Unit)
        let d = model.shape.latentDim
        encoder = MLPWorkspace(mlp: model.encoder, capacity: batchCapacity)
        latents = LatentWorkspace(model: model, capacity: self.chunk, transposesDecoder: false)  // forward passes only
        refiner = SVIRefinement(model: model, settings: refinement, batchCapacity: batchCapacity)
        let a = FloatBuffer(count: batchCapacity * 2 * d)
        let r = FloatBuffer(count: batchCapacity * 2 * d)
        lambdaInitial = a.matrix(rows: batchCapacity, cols: 2 * d)
        lambdaRefined = r.matrix(rows: batchCapacity, cols: 2 * d)
        kl = FloatBuffer(count: batchCapacity)
        storage = [a, r]
    }

    /// Evaluates the examples `x` (b × D) with ids `exampleIDs`: each example's log p̂(x), the
    /// diagnostics of its importance weights, ELBO(λ₀) and ELBO(λ_k). The encoder and the
    /// refinement take the b examples together (their products then have b rows instead of
    /// one); the samples go through the decoder one example at a time, `chunk` per pass. An
    /// example's values are the same bits in any batch: on the product kernels a row's numbers do
    /// not depend on the other rows of a product; OpenBLAS (the portable path) may round other
    /// row counts differently, so there every example goes alone.
    public func evaluate(x: Matrix, exampleIDs: [Int], seed: UInt64, params: FloatBuffer) -> [ExampleEvaluation] {
        let b = x.rows
        precondition(b <= batchCapacity && exampleIDs.count == b)
        guard KernelPath.activeHasProducts || b == 1 else {
            return (0..<b).flatMap { evaluate(x: x.rows($0..<($0 + 1)), exampleIDs: [exampleIDs[$0]], seed: seed, params: params) }
        }
        bfloat16Decoder?.pack(params)  // once for the three passes below
        encoder.forward(x, rows: 0..<b, params: params)
        let lam0 = lambdaInitial.rows(0..<b), lamK = lambdaRefined.rows(0..<b)
        lam0.copy(from: encoder.output.rows(0..<b))
        lamK.copy(from: lam0)
        refiner.run(lamK, x: x, ids: exampleIDs, noise: .evaluationRefinement(seed: seed), params: params)

        let sampleNoise = NoiseSource(seed: seed, purpose: .evaluationNoise, context: 0)
        let elboNoise = NoiseSource(seed: seed, purpose: .evaluationNoise, context: 1)
        let estimates = estimatesOfPackedDecoder(x: x, ids: exampleIDs, lambda: proposal == .encoder ? lam0 : lamK,
                                                 noise: sampleNoise, params: params)
        let elboInitial = elbosOfPackedDecoder(x: x, ids: exampleIDs, lambda: lam0, noise: elboNoise, params: params)
        let elboRefined = elbosOfPackedDecoder(x: x, ids: exampleIDs, lambda: lamK, noise: elboNoise, params: params)
        return (0..<b).map { ExampleEvaluation(estimate: estimates[$0], elboInitial: elboInitial[$0], elboRefined: elboRefined[$0]) }
    }

    /// Per-example log p̂(x) with `samples` draws from q(z; lambda), chunk by chunk.
    public func importanceSampledLogLikelihood(x: Matrix, ids: [Int], lambda: Matrix, noise: NoiseSource,
                                               params: FloatBuffer) -> [Double] {
        importanceSampledEstimates(x: x, ids: ids, lambda: lambda, noise: noise, params: params).map(\.logLikelihood)
    }

    /// Per-example log p̂(x) and weight diagnostics with `samples` draws from q(z; lambda), chunk
    /// by chunk; one streaming accumulator per example, no per-sample memory beyond a chunk.
    public func importanceSampledEstimates(x: Matrix, ids: [Int], lambda: Matrix, noise: NoiseSource,
                                           params: FloatBuffer) -> [ImportanceEstimate] {
        bfloat16Decoder?.pack(params)
        return estimatesOfPackedDecoder(x: x, ids: ids, lambda: lambda, noise: noise, params: params)
    }

    /// `importanceSampledEstimates` with the bfloat16 decoder (if any) already packed from `params`.
    private func estimatesOfPackedDecoder(x: Matrix, ids: [Int], lambda: Matrix, noise: NoiseSource,
                                          params: FloatBuffer) -> [ImportanceEstimate] {
        (0..<x.rows).map { i in
            var acc = LogSumExpAccumulator()
            scoreSamples(samples, example: i, x: x, ids: ids, lambda: lambda, noise: noise, params: params) { rows in
                for r in rows { acc.add(Double(latents.logWeight[r])) }
            }
            return ImportanceEstimate(acc, samples: samples)
        }
    }

    /// Draws and scores `count` samples of example i from q(z; lambda row i), `chunk` per decoder
    /// pass: sample s of a pass in workspace row s, noise slot `start + s`. `body` reads each
    /// pass's rows before the next overwrites them.
    private func scoreSamples(_ count: Int, example i: Int, x: Matrix, ids: [Int], lambda: Matrix, noise: NoiseSource,
                              params: FloatBuffer, _ body: (Range<Int>) -> Void) {
        let xi = x.rows(i..<(i + 1)), lambdaI = lambda.rows(i..<(i + 1)), id = [ids[i]]
        var start = 0
        while start < count {
            let n = min(chunk, count - start)
            for s in 0..<n { latents.draw(lambda: lambdaI, start: s, slot: start + s, exampleIDs: id, noise: noise) }
            latents.scoreLogWeights(rows: 0..<n, x: xi, lambda: lambdaI, params: params, bfloat16Decoder: bfloat16Decoder)
            body(0..<n)
            start += n
        }
    }

    /// Σ over examples of the ELBO (see `monteCarloELBOs`).
    public func monteCarloELBO(x: Matrix, ids: [Int], lambda: Matrix, noise: NoiseSource, params: FloatBuffer) -> Double {
        monteCarloELBOs(x: x, ids: ids, lambda: lambda, noise: noise, params: params).reduce(0, +)
    }

    /// Each example's ELBO with analytic KL, E_q[log p(x|z)] by `elboSamples` draws.
    public func monteCarloELBOs(x: Matrix, ids: [Int], lambda: Matrix, noise: NoiseSource, params: FloatBuffer) -> [Double] {
        bfloat16Decoder?.pack(params)
        return elbosOfPackedDecoder(x: x, ids: ids, lambda: lambda, noise: noise, params: params)
    }

    /// `monteCarloELBOs` with the bfloat16 decoder (if any) already packed from `params`.
    private func elbosOfPackedDecoder(x: Matrix, ids: [Int], lambda: Matrix, noise: NoiseSource, params: FloatBuffer) -> [Double] {
        let b = x.rows
        Gaussian.klToStandard(lambda: lambda, into: kl.base)
        return (0..<b).map { i in
            var total = 0.0
            scoreSamples(elboSamples, example: i, x: x, ids: ids, lambda: lambda, noise: noise, params: params) { rows in
                for r in rows { total += Double(latents.logLikelihood[r]) }
            }
            return total / Double(elboSamples) - Double(kl[i])
        }
    }
}
