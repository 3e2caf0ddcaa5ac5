import CKernels
import Foundation

/// Decoder-side state for up to `capacity` latent rows: noise ε, samples z = μ + σ ⊙ ε, the
/// decoder activations and errors, ∂log p(x|z)/∂z, and per-row log p(x|z) and log w.
/// Rows are grouped in blocks of one row per example, so workspace row r belongs to
/// example r mod b of a batch of b.
public final class LatentWorkspace {
    public let decoder: MLPWorkspace
    /// The decoder's Wᵀ for `backward` (see `useParameters`), when the owner back-propagates
    /// several times per parameter update; nil: `backward` reads each W itself.
    public let decoderTransposed: TransposedKernels?
    public let latentDim: Int
    public let capacity: Int
    public let epsilon: Matrix
    public let z: Matrix
    public let dz: Matrix
    public let logLikelihood: FloatBuffer
    public let logWeight: FloatBuffer
    /// The noise stream key of each example of the current draw.
    private var streamKeys: [UInt64]
    private let storage: [FloatBuffer]

    /// `transposesDecoder`: keep the decoder's Wᵀ (one transpose per `useParameters`), worth it
    /// when `backward` runs more than once per call of it (the SVI loop), not for a single pass.
    public init(model: VAEModel, capacity: Int, transposesDecoder: Bool = true) {
        decoder = MLPWorkspace(mlp: model.decoder, capacity: capacity)
        decoderTransposed = transposesDecoder ? TransposedKernels(mlp: model.decoder) : nil
        latentDim = model.shape.latentDim
        self.capacity = capacity
        let e = FloatBuffer(count: capacity * latentDim)
        let zb = FloatBuffer(count: capacity * latentDim)
        let g = FloatBuffer(count: capacity * latentDim)
        epsilon = e.matrix(rows: capacity, cols: latentDim)
        z = zb.matrix(rows: capacity, cols: latentDim)
        dz = g.matrix(rows: capacity, cols: latentDim)
        logLikelihood = FloatBuffer(count: capacity)
        logWeight = FloatBuffer(count: capacity)
        streamKeys = [UInt64](repeating: 0, count: capacity)
        storage = [e, zb, g]
    }

    /// Draws slot `slot` of each example's noise into rows `start ..< start + b` and sets
    /// z = μ + exp(ℓ/2) ⊙ ε for the proposal rows of `lambda` (b × 2d: μ then ℓ).
    public func draw(lambda: Matrix, start: Int, slot: Int, exampleIDs: [Int], noise: NoiseSource) {
        precondition(exampleIDs.count == lambda.rows && start + lambda.rows <= capacity, "draw outside the workspace")
        StepProfile.elementwise {
            let d = latentDim
            let countersPerDraw = UInt64(RandomStream.countersNeeded(forNormals: d))
            for i in 0..<lambda.rows { streamKeys[i] = noise.stream(example: exampleIDs[i]).key }
            bsvi_draw_latents(Int32(lambda.rows), Int32(d), streamKeys, UInt64(slot) * countersPerDraw, lambda.base,
                              Int32(lambda.cols), epsilon.row(start), z.row(start))
        }
    }

    /// Decoder forward over `rows` and one fused likelihood pass: fills log p(x|z), log w, and
    /// leaves x − sigmoid(logits) as the output error. `lambda` row (r − rows.lowerBound) mod b
    /// is the proposal row r was drawn from; x row likewise. Without `weights`, the error only
    /// (log p(x|z) and log w of these rows are left as they were).
    public func score(rows: Range<Int>, x: Matrix, lambda: Matrix, params: FloatBuffer, weights: Bool = true) {
        decoder.forward(z.rows(rows), rows: rows, params: params)
        StepProfile.elementwise {
            Bernoulli.logLikelihoodAndError(x: x, logitsToError: decoder.output.rows(rows),
                                            into: weights ? logLikelihood.base + rows.lowerBound : nil)
            if weights { scoreLogWeights(rows, lambda: lambda) }
        }
    }

    /// Decoder forward and log w only (no gradients): the importance-sampling evaluator's pass.
    /// On the kernel paths the output layer and the likelihood are one pass that never stores the
    /// logits (the same bits as the two passes); `decoder.output` is then left stale.
    public func scoreLogWeights(rows: Range<Int>, x: Matrix, lambda: Matrix, params: FloatBuffer,
                                bfloat16Decoder: BFloat16Decoder? = nil) {
        let out = logLikelihood.base + rows.lowerBound
        if let bfloat16Decoder {
            bfloat16Decoder.logLikelihood(z: z.rows(rows), x: x, into: out)
        } else if KernelPath.activeHasProducts {
            let last = decoder.mlp.layerCount - 1
            let h = decoder.forward(z.rows(rows), rows: rows, params: params, layers: last)
            Bernoulli.outputLayerLogLikelihood(hidden: h, kernel: decoder.mlp.kernel(last, in: params),
                                               bias: params.base + decoder.mlp.biases[last].offset, x: x, into: out)
        } else {
            decoder.forward(z.rows(rows), rows: rows, params: params)
            StepProfile.elementwise { Bernoulli.logLikelihood(x: x, logits: decoder.output.rows(rows), into: out) }
        }
        StepProfile.elementwise { scoreLogWeights(rows, lambda: lambda) }
    }

    /// log w = log p(x|z) + log N(z; 0, I) − log q(z; λ) for `rows`, from their log p(x|z).
    private func scoreLogWeights(_ rows: Range<Int>, lambda: Matrix) {
        bsvi_log_weights(Int32(rows.count), Int32(latentDim), z.row(rows.lowerBound), epsilon.row(rows.lowerBound),
                         lambda.base, Int32(lambda.cols), Int32(lambda.rows), logLikelihood.base + rows.lowerBound,
                         logWeight.base + rows.lowerBound)
    }

    /// Back-propagates the output errors of `rows` through the decoder; with `toLatent`, also
    /// fills dz = ∂log p(x|z)/∂z for those rows.
    public func backward(rows: Range<Int>, params: FloatBuffer, toLatent: Bool) {
        decoder.backward(rows: rows, params: params, inputGradient: toLatent ? dz.rows(rows) : nil,
                         transposed: decoderTransposed)
    }

    /// Takes the decoder's transposed kernels from `params` (nothing without `transposesDecoder`).
    /// Call on entry to every batch (the parameters may have changed since the last one); until
    /// then `backward` with another buffer reads W itself, so a missed call costs speed, never
    /// correctness — except when the *same* buffer was changed in place, hence "every batch".
    public func useParameters(_ params: FloatBuffer) { decoderTransposed?.update(from: params) }

    /// The reparameterized one-sample gradient of ELBO(λ) = E_q[log p(x|z)] − KL(q‖p) with
    /// analytic KL, for the b rows starting at `start`, into `gradient` (b × 2d):
    /// ∂/∂μ = dz − μ,  ∂/∂ℓ = ½ dz ⊙ ε ⊙ exp(ℓ/2) − ½ (exp ℓ − 1).
    public func elboGradient(start: Int, lambda: Matrix, into gradient: Matrix) {
        precondition(gradient.rows == lambda.rows && start + lambda.rows <= capacity, "gradient outside the workspace")
        StepProfile.elementwise {
            bsvi_elbo_gradient(Int32(lambda.rows), Int32(latentDim), lambda.base, Int32(lambda.cols), dz.row(start),
                               epsilon.row(start), gradient.base, Int32(gradient.cols))
        }
    }
}
