import Foundation

/// Computes one method's objective on a batch and accumulates the gradient of its *sum over
/// the batch's examples* (ascent direction) into a gradient vector of the model's layout.
///
/// All four methods share the encoder pass and the decoder workspace: row r of the decoder
/// workspace is example r mod b in block r / b, where a block is one sample (vae, iwae) or
/// one SVI step (svi, bsvi). The SVI steps' forward activations and back-propagated errors
/// stay in their blocks, so the bsvi decoder gradient is one weighted weight-gradient product
/// over all b·(k+1) rows, with no second forward or backward pass. svi needs only λ₀'s and
/// λ_k's samples, so its workspace has two blocks and every step after λ₀ uses block 1: the
/// loop's activations stay in cache instead of streaming through k + 1 fresh blocks (the same
/// numbers either way).
public final class BatchObjective {
    public let model: VAEModel
    public let settings: ObjectiveSettings
    public let batchCapacity: Int
    public let encoder: MLPWorkspace
    public let latents: LatentWorkspace
    /// svi and bsvi: the k SVI steps, every step's sample a block of `latents`; nil for vae and iwae.
    public let refinement: SVIRefinement?
    /// The current proposal λ (b × 2d).
    private let lambda: Matrix
    /// ∂objective/∂λ₀, back-propagated into the encoder.
    private let encoderGradient: Matrix
    private let klPerRow: FloatBuffer
    private let rowWeights: FloatBuffer
    private let storage: [FloatBuffer]
    /// vae with several samples: one sample's ELBO gradient (b × 2d) before it joins the mean,
    /// allocated on first use (as MLPWorkspace's weighted-input scratch).
    private lazy var sampleGradient = FloatBuffer(count: batchCapacity * 2 * model.shape.latentDim)

    public init(model: VAEModel, settings: ObjectiveSettings, batchCapacity: Int) {
        precondition(settings.rowsPerExample >= 1, "\(settings.method) needs at least one sample")
        self.model = model
        self.settings = settings
        self.batchCapacity = batchCapacity
        let d = model.shape.latentDim
        let rows = batchCapacity * settings.rowsPerExample
        encoder = MLPWorkspace(mlp: model.encoder, capacity: batchCapacity)
        // The encoder back-propagates once a step, straight from W (bsvi_sgemm_nt); the decoder
        // holds its Wᵀ only where the SVI loop uses them k > 0 times a step. Either way a step
        // never calls BLAS on the vector paths, so AVX2 and AVX-512 give the same bits whatever
        // OpenBLAS core a machine has, and on those paths the choice does not change the bits.
        latents = LatentWorkspace(model: model, capacity: rows, transposesDecoder: settings.method.refines && settings.k > 0)
        switch settings.method {
        case .vae, .iwae:
            refinement = nil
        case .svi, .bsvi:
            // The objective's k is the number of steps (settings.refinement supplies the rule).
            var kSteps = settings.refinement
            kSteps.steps = settings.k
            refinement = SVIRefinement(settings: kSteps, buffer: latents, batchCapacity: batchCapacity,
                                       keepsEveryStep: settings.keepsEverySVIStep)
        }
        let l = FloatBuffer(count: batchCapacity * 2 * d)
        let e = FloatBuffer(count: batchCapacity * 2 * d)
        lambda = l.matrix(rows: batchCapacity, cols: 2 * d)
        encoderGradient = e.matrix(rows: batchCapacity, cols: 2 * d)
        klPerRow = FloatBuffer(count: rows)
        rowWeights = FloatBuffer(count: rows)
        storage = [l, e]
    }

    /// The method's objective for the examples `x` (b × D, b ≤ capacity) with ids `exampleIDs`;
    /// adds ∇(Σ objective) to `grads` and returns the batch sums. With `overwrite`, sets `grads`
    /// to it instead, whatever `grads` held, with the bits of adding into zeros: the weight-gradient
    /// products write every encoder and decoder entry, and only the π logits' few and the layout's
    /// gaps between tensors are zeroed first (on the kernel paths the training step's 1.7 MB
    /// gradient buffer is then never zeroed).
    @discardableResult
    public func accumulate(x: Matrix, exampleIDs: [Int], noise: NoiseSource, params: FloatBuffer,
                           grads: FloatBuffer, overwrite: Bool = false) -> ObjectiveSums {
        let b = x.rows
        precondition(b <= batchCapacity && exampleIDs.count == b && x.cols == model.shape.inputDim,
                     "batch shape does not match the objective's workspace")
        latents.useParameters(params)
        if overwrite {
            if let pi = model.piLogits { (grads.base + pi.offset).update(repeating: 0, count: pi.count) }
            model.layout.zeroGaps(grads.base)
        }
        encoder.forward(x, rows: 0..<b, params: params)
        let lam = lambda.rows(0..<b)
        lam.copy(from: encoder.output.rows(0..<b))
        var stats: ObjectiveSums
        switch settings.method {
        case .vae, .iwae:
            stats = sampledObjective(x: x, ids: exampleIDs, noise: noise, params: params, grads: grads, overwrite: overwrite)
        case .svi, .bsvi:
            stats = refinedObjective(x: x, ids: exampleIDs, noise: noise, params: params, grads: grads, overwrite: overwrite)
        }
        encoder.outputDelta.rows(0..<b).copy(from: encoderGradient.rows(0..<b))
        encoder.backward(rows: 0..<b, params: params, inputGradient: nil)
        encoder.accumulateWeightGradients(input: x, rows: 0..<b, grads: grads, overwrite: overwrite)
        stats.examples = b
        return stats
    }

    // MARK: vae and iwae: n (or k) samples from q(z; λ₀), all rows in one decoder pass.

    private func sampledObjective(x: Matrix, ids: [Int], noise: NoiseSource, params: FloatBuffer,
                                  grads: FloatBuffer, overwrite: Bool) -> ObjectiveSums {
        let b = x.rows, n = settings.rowsPerExample
        let lam = lambda.rows(0..<b)
        for s in 0..<n { latents.draw(lambda: lam, start: s * b, slot: s, exampleIDs: ids, noise: noise) }
        let all = 0..<(n * b)
        latents.score(rows: all, x: x, lambda: lam, params: params)
        latents.backward(rows: all, params: params, toLatent: true)
        let grad = encoderGradient.rows(0..<b)
        var stats = settings.method == .vae
            ? vaeBoundAndGradient(lambda: lam, samples: n, into: grad)
            : iwaeBoundAndGradient(lambda: lam, samples: n, into: grad)
        stats.elboRefined = stats.elboInitial
        latents.decoder.accumulateWeightGradients(input: latents.z.rows(all), rows: all, grads: grads, rowWeights: rowWeights.base,
                                                  overwrite: overwrite)
        return stats
    }

    /// vae: ELBO = mean_s log p(x|z_s) − KL(q‖p) and its reparameterized gradient with analytic
    /// KL, which is the mean over the n samples of each one's one-sample ELBO gradient (the KL part
    /// is the same in each): the vector pass the SVI steps use, a batch at a time. As a scalar loop
    /// with two expf calls per latent it took 0.9 % of vae's step (docs/benchmarks.md, stop 51).
    private func vaeBoundAndGradient(lambda lam: Matrix, samples n: Int, into grad: Matrix) -> ObjectiveSums {
        let b = lam.rows
        StepProfile.elementwise { Gaussian.klToStandard(lambda: lam, into: klPerRow.base) }
        latents.elboGradient(start: 0, lambda: lam, into: grad)
        if n > 1 {
            let sample = sampleGradient.matrix(rows: b, cols: grad.cols)
            for s in 1..<n {
                latents.elboGradient(start: s * b, lambda: lam, into: sample)
                for j in 0..<grad.count { grad.base[j] += sample.base[j] }
            }
            for j in 0..<grad.count { grad.base[j] /= Float(n) }
        }
        rowWeights.base.update(repeating: 1 / Float(n), count: n * b)
        var stats = ObjectiveSums()
        for i in 0..<b {
            var meanLogLikelihood = 0.0
            for s in 0..<n { meanLogLikelihood += Double(latents.logLikelihood[s * b + i]) / Double(n) }
            let elbo = meanLogLikelihood - Double(klPerRow[i])
            stats.bound += elbo
            stats.elboInitial += elbo
        }
        return stats
    }

    /// iwae: log (1/k) Σ_s w_s and its gradient Σ_s ŵ_s ∇ log w_s.
    private func iwaeBoundAndGradient(lambda lam: Matrix, samples n: Int, into grad: Matrix) -> ObjectiveSums {
        let b = lam.rows, d = model.shape.latentDim
        grad.fill(0)
        var stats = ObjectiveSums()
        for i in 0..<b {
            let lamRow = lam.row(i), g = grad.row(i)
            let kl = Gaussian.klToStandard(mean: lamRow, logVariance: lamRow + d, count: d)
            // Example i's log weights sit b apart in the workspace (one block per sample).
            let lse = logSumExp(latents.logWeight.base + i, count: n, stride: b)
            for s in 0..<n {
                let r = s * b + i
                let wHat = exp(latents.logWeight[r] - lse)
                rowWeights[r] = wHat
                accumulateReparameterized(row: r, lambdaRow: lamRow, weight: wHat, into: g)
            }
            stats.bound += Double(lse) - log(Double(n))
            stats.elboInitial += Double(latents.logLikelihood[i]) - Double(kl)
        }
        return stats
    }

    /// g += weight · ∇_λ log w(z(λ, ε)) for the row's sample, with log w = log p(x|z) + log p(z) −
    /// log q(z; λ), whose total derivative through z = μ + exp(ℓ/2)ε is (g_z, ½ g_z ε exp(ℓ/2) + ½)
    /// with g_z = ∂log p(x|z)/∂z − z.
    private func accumulateReparameterized(row r: Int, lambdaRow: UnsafeMutablePointer<Float>, weight: Float,
                                           into g: UnsafeMutablePointer<Float>) {
        let d = model.shape.latentDim
        let dzr = latents.dz.row(r), eps = latents.epsilon.row(r), zr = latents.z.row(r)
        for c in 0..<d {
            let gz = dzr[c] - zr[c]
            g[c] += weight * gz
            g[d + c] += weight * (0.5 * gz * eps[c] * exp(0.5 * lambdaRow[d + c]) + 0.5)
        }
    }

    // MARK: svi and bsvi: k SVI steps, block j holding the sample at λ_j.

    private func refinedObjective(x: Matrix, ids: [Int], noise: NoiseSource, params: FloatBuffer,
                                  grads: FloatBuffer, overwrite: Bool) -> ObjectiveSums {
        let b = x.rows, k = settings.k
        // Each step's sample stays in its block. The KLs of λ₀ and λ_k (the sums' two ELBOs; no
        // other step's is read) and, at λ₀, the encoder's gradient are taken as the run passes.
        refinement!.run(lambda.rows(0..<b), x: x, ids: ids, noise: noise, params: params) { step in
            if step.index == 0 || step.index == k {
                StepProfile.elementwise { Gaussian.klToStandard(lambda: step.lambda, into: klPerRow.base + step.rows.lowerBound) }
            }
            if step.index == 0, let gradient = step.elboGradient { encoderGradient.rows(0..<b).copy(from: gradient) }
        }
        var stats = ObjectiveSums()
        let kb = refinement!.block(ofStep: k) * b  // λ_k's first row: k·b for bsvi, b for svi (k > 0)
        let last = kb..<(kb + b)
        for i in 0..<b {
            stats.elboInitial += Double(latents.logLikelihood[i]) - Double(klPerRow[i])
            stats.elboRefined += Double(latents.logLikelihood[kb + i]) - Double(klPerRow[kb + i])
        }
        if settings.method == .svi {
            // θ maximizes the one-sample objective at λ_k: log w_k (its θ-gradient is ∇θ log p(x|z_k)).
            for i in 0..<b { stats.bound += Double(latents.logWeight[kb + i]) }
            latents.decoder.accumulateWeightGradients(input: latents.z.rows(last), rows: last, grads: grads,
                                                      overwrite: overwrite)
            return stats
        }
        // bsvi: log Σ_j π_j w_j per example; θ-gradient Σ_j ŵ_j ∇θ log p(x|z_j).
        let logPi = bufferLogWeights(params: params)
        let pi = logPi.map { exp($0) }
        var terms = [Float](repeating: 0, count: k + 1)
        let alphaGrad = model.piLogits.map { grads.base + $0.offset }
        for i in 0..<b {
            for j in 0...k { terms[j] = logPi[j] + latents.logWeight[j * b + i] }
            let lse = logSumExp(terms)
            stats.bound += Double(lse)
            for j in 0...k {
                let wHat = logPi[j] == -.infinity ? 0 : exp(terms[j] - lse)
                rowWeights[j * b + i] = wHat
                alphaGrad?[j] += wHat - pi[j]
            }
        }
        let all = 0..<((k + 1) * b)
        latents.decoder.accumulateWeightGradients(input: latents.z.rows(all), rows: all, grads: grads, rowWeights: rowWeights.base,
                                                  overwrite: overwrite)
        return stats
    }

    /// log π_j for the buffer: uniform, one-hot on λ_k, or log softmax(α).
    public func bufferLogWeights(params: FloatBuffer) -> [Float] {
        let k = settings.k
        switch settings.pi {
        case .uniform:
            return [Float](repeating: -log(Float(k + 1)), count: k + 1)
        case .last:
            return (0...k).map { $0 == k ? 0 : -.infinity }
        case .learned:
            guard let t = model.piLogits else { preconditionFailure("learned π needs π logits in the model") }
            let alpha = (0..<t.count).map { params[t.offset + $0] }
            let lse = logSumExp(alpha)
            return alpha.map { $0 - lse }
        }
    }
}
