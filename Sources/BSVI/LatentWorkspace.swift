import Foundation

/// Decoder-side state for up to `capacity` latent rows: noise ε, samples z = μ + σ ⊙ ε, the
/// decoder activations and errors, ∂log p(x|z)/∂z, and per-row log p(x|z) and log w.
/// Rows are grouped in blocks of one row per example, so workspace row r belongs to
/// example r mod b of a batch of b.
public final class LatentWorkspace {
    public let decoder: MLPWorkspace
    /// The decoder's Wᵀ for `backward`; see `useParameters`.
    public let decoderTransposed: TransposedKernels
    public let latentDim: Int
    public let capacity: Int
    public let epsilon: Matrix
    public let z: Matrix
    public let dz: Matrix
    public let logLikelihood: FloatBuffer
    public let logWeight: FloatBuffer
    private let storage: [FloatBuffer]

    public init(model: VAEModel, capacity: Int) {
        decoder = MLPWorkspace(mlp: model.decoder, capacity: capacity)
        decoderTransposed = TransposedKernels(mlp: model.decoder)
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
        storage = [e, zb, g]
    }

    /// Draws slot `slot` of each example's noise into rows `start ..< start + b` and sets
    /// z = μ + exp(ℓ/2) ⊙ ε for the proposal rows of `lambda` (b × 2d: μ then ℓ).
    public func draw(lambda: Matrix, start: Int, slot: Int, exampleIDs: [Int], noise: NoiseSource) {
        StepProfile.elementwise {
            let d = latentDim
            let countersPerDraw = UInt64(RandomStream.countersNeeded(forNormals: d))
            for i in 0..<lambda.rows {
                let r = start + i
                let eps = epsilon.row(r), zr = z.row(r), lam = lambda.row(i)
                noise.stream(example: exampleIDs[i]).fillNormals(eps, count: d, counterOffset: UInt64(slot) * countersPerDraw)
                var c = 0
                while c < d {
                    let n = min(VectorMath.width, d - c)
                    let sigma = VectorMath.exp(VectorMath.load(lam + d + c, count: n) * 0.5)
                    let zv = VectorMath.load(lam + c, count: n) + sigma * VectorMath.load(eps + c, count: n)
                    VectorMath.store(zv, zr + c, count: n)
                    c += VectorMath.width
                }
            }
        }
    }

    /// Decoder forward over `rows` and one fused likelihood pass: fills log p(x|z), log w, and
    /// leaves x − sigmoid(logits) as the output error. `lambda` row (r − rows.lowerBound) mod b
    /// is the proposal row r was drawn from; x row likewise.
    public func score(rows: Range<Int>, x: Matrix, lambda: Matrix, params: FloatBuffer) {
        scoreRows(rows, x: x, lambda: lambda, params: params) { xRow, out in
            Bernoulli.logLikelihoodAndError(x: xRow, logitsToError: out, count: self.decoder.mlp.outputSize)
        }
    }

    /// Decoder forward and log w only (no gradients): the importance-sampling evaluator's pass.
    public func scoreLogWeights(rows: Range<Int>, x: Matrix, lambda: Matrix, params: FloatBuffer) {
        scoreRows(rows, x: x, lambda: lambda, params: params) { xRow, out in
            Bernoulli.logLikelihood(x: xRow, logits: out, count: self.decoder.mlp.outputSize)
        }
    }

    /// The decoder pass plus, per row, log p(x|z) from `likelihood` and
    /// log w = log p(x|z) + log N(z; 0, I) − log q(z; λ).
    @inline(__always)
    private func scoreRows(_ rows: Range<Int>, x: Matrix, lambda: Matrix, params: FloatBuffer,
                           likelihood: (UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Float) {
        decoder.forward(z.rows(rows), rows: rows, params: params)
        let b = x.rows, d = latentDim
        let out = decoder.output
        StepProfile.elementwise {
            for r in rows {
                let i = (r - rows.lowerBound) % b
                let lp = likelihood(x.row(i), out.row(r))
                logLikelihood[r] = lp
                logWeight[r] = lp + Gaussian.logStandardDensity(z.row(r), count: d)
                    - Gaussian.logDensityOfReparameterized(epsilon: epsilon.row(r), logVariance: lambda.row(i) + d, count: d)
            }
        }
    }

    /// Back-propagates the output errors of `rows` through the decoder; with `toLatent`, also
    /// fills dz = ∂log p(x|z)/∂z for those rows.
    public func backward(rows: Range<Int>, params: FloatBuffer, toLatent: Bool) {
        decoder.backward(rows: rows, params: params, inputGradient: toLatent ? dz.rows(rows) : nil,
                         transposed: decoderTransposed)
    }

    /// Takes the decoder's transposed kernels from `params`. Call on entry to every batch
    /// (the parameters may have changed since the last one); until then `backward` with
    /// another buffer falls back to BLAS, so a missed call costs speed, never correctness
    /// — except when the *same* buffer was changed in place, hence "every batch".
    public func useParameters(_ params: FloatBuffer) { decoderTransposed.update(from: params) }

    /// The reparameterized one-sample gradient of ELBO(λ) = E_q[log p(x|z)] − KL(q‖p) with
    /// analytic KL, for the b rows starting at `start`, into `gradient` (b × 2d):
    /// ∂/∂μ = dz − μ,  ∂/∂ℓ = ½ dz ⊙ ε ⊙ exp(ℓ/2) − ½ (exp ℓ − 1).
    public func elboGradient(start: Int, lambda: Matrix, into gradient: Matrix) {
        StepProfile.elementwise { elboGradientUnprofiled(start: start, lambda: lambda, into: gradient) }
    }

    private func elboGradientUnprofiled(start: Int, lambda: Matrix, into gradient: Matrix) {
        let d = latentDim
        for i in 0..<lambda.rows {
            let r = start + i
            let lam = lambda.row(i), g = gradient.row(i), dzr = dz.row(r), eps = epsilon.row(r)
            var c = 0
            while c < d {
                let n = min(VectorMath.width, d - c)
                let mu = VectorMath.load(lam + c, count: n), dzv = VectorMath.load(dzr + c, count: n)
                let sigma = VectorMath.exp(VectorMath.load(lam + d + c, count: n) * 0.5)
                VectorMath.store(dzv - mu, g + c, count: n)
                let gEll = 0.5 * dzv * VectorMath.load(eps + c, count: n) * sigma - 0.5 * (sigma * sigma - 1)
                VectorMath.store(gEll, g + d + c, count: n)
                c += VectorMath.width
            }
        }
    }
}
