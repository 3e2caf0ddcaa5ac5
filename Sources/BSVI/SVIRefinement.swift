/// The SVI refinement of DESIGN.md §2, written once for training (svi, bsvi), evaluation
/// (ELBO(λ_k), the refined proposal, the --gaps diagnostics) and sampling: from the encoder's
/// λ₀, k steps λ_{j+1} = λ_j + update(g_j) of each example's own λ with the decoder fixed, where
/// g_j is the one-sample reparameterized gradient of ELBO(λ_j) on noise slot j and `SVIRefiner`
/// applies the update rule (sgd, momentum or Adam; optional clip).
///
/// The uses differ only in what they keep of the samples (`Mode`). A caller that needs more
/// than λ_k — training's KL per step, the encoder's gradient, the buffer's rows — reads it from
/// each `Step` as the run passes.
public final class SVIRefinement {
    public enum Mode {
        /// Training: samples z_0 … z_k at λ_0 … λ_k, z_j in block j (workspace rows j·b ..< (j+1)·b)
        /// where it stays with its log w and decoder errors — the bsvi buffer and the rows of the
        /// decoder's weight gradients. The final λ_k is sampled too (not moved), and the ELBO
        /// gradient at λ₀ is computed even when k = 0: it is the encoder's.
        case buffer
        /// svi training: as `buffer`, but only λ₀'s and λ_k's samples are kept, in blocks 0 and 1
        /// of a workspace of two blocks; the steps after λ₀ all use block 1, so the loop's working
        /// set stays in cache, and those before λ_k compute no log p(x|z) or log w (nothing reads
        /// them; the gradient needs the error only).
        case endpoints
        /// Evaluation and sampling: only the final λ_k is wanted; every step reuses rows 0 ..< b
        /// of a workspace of the refinement's own, and λ_k is not sampled.
        case lambdaOnly
    }

    /// What a caller sees of λ_j as the run passes it (before λ_j moves).
    public struct Step {
        public let index: Int
        /// The workspace rows of z_j ~ q(z; λ_j): its ε, z, log p(x|z), log w and decoder errors
        /// (in `endpoints` mode, log p(x|z) and log w at λ₀ and λ_k only).
        public let rows: Range<Int>
        /// λ_j (b × 2d). Read it in the hook; the run moves it afterwards.
        public let lambda: Matrix
        /// The one-sample ∇ELBO(λ_j) (b × 2d), nil where it is not needed (the final λ_k, k > 0).
        /// The update clips it in place after the hook.
        public let elboGradient: Matrix?
    }

    public let settings: RefinementSettings
    public let mode: Mode
    /// The decoder-side state of the samples (see `Mode` for the rows).
    public let latents: LatentWorkspace
    public let batchCapacity: Int
    private let updateRule: SVIRefiner
    private let gradient: Matrix
    private let gradientStorage: FloatBuffer

    /// Training: fills the caller's workspace (capacity ≥ b · `trainingBlocks`) block by block.
    /// The caller owns the workspace and calls `latents.useParameters` on entry to every batch.
    public convenience init(settings: RefinementSettings, buffer latents: LatentWorkspace, batchCapacity: Int,
                            keepsEveryStep: Bool = true) {
        precondition(latents.capacity >= batchCapacity * Self.trainingBlocks(steps: settings.steps, keepsEveryStep: keepsEveryStep),
                     "the workspace is smaller than the refinement's blocks")
        self.init(settings: settings, mode: keepsEveryStep ? .buffer : .endpoints, latents: latents, batchCapacity: batchCapacity)
    }

    /// Workspace blocks of a training refinement of k steps: one past the block of λ_k, the last
    /// step's and the highest (k + 1 for `buffer`; 2 for `endpoints`, 1 when k = 0, where λ₀'s and
    /// λ_k's sample are the same).
    public static func trainingBlocks(steps k: Int, keepsEveryStep: Bool) -> Int {
        block(ofStep: k, in: keepsEveryStep ? .buffer : .endpoints) + 1
    }

    /// Evaluation and sampling: a workspace of b rows of its own, whose decoder transposes the
    /// run refreshes from `params` on every call.
    public convenience init(model: VAEModel, settings: RefinementSettings, batchCapacity: Int) {
        self.init(settings: settings, mode: .lambdaOnly, latents: LatentWorkspace(model: model, capacity: batchCapacity),
                  batchCapacity: batchCapacity)
    }

    private init(settings: RefinementSettings, mode: Mode, latents: LatentWorkspace, batchCapacity: Int) {
        self.settings = settings
        self.mode = mode
        self.latents = latents
        self.batchCapacity = batchCapacity
        let width = 2 * latents.latentDim
        updateRule = SVIRefiner(settings: settings, batchCapacity: batchCapacity, latentDim: latents.latentDim)
        gradientStorage = FloatBuffer(count: batchCapacity * width)
        gradient = gradientStorage.matrix(rows: batchCapacity, cols: width)
    }

    /// Refines `lambda` (b × 2d: μ then log σ², one row per example of `x`) in place, calling
    /// `onStep` at each λ_j. Noise slot j of each example's stream in `noise` drives step j.
    public func run(_ lambda: Matrix, x: Matrix, ids: [Int], noise: NoiseSource, params: FloatBuffer,
                    onStep: (Step) -> Void = { _ in }) {
        let b = lambda.rows, k = settings.steps
        precondition(b <= batchCapacity && x.rows == b && ids.count == b && lambda.cols == gradient.cols,
                     "refinement batch does not match its workspace")
        let sampled = mode == .lambdaOnly ? k : k + 1
        guard sampled > 0 else { return }
        let target = settings.target
        precondition(target == .lastIterate || mode == .lambdaOnly, "only an evaluation's refinement estimates the optimum")
        var average = IterateAverage(from: target == .optimum ? RefinementTarget.firstAveraged(of: k) : k + 1)
        if mode == .lambdaOnly { latents.useParameters(params) }
        let g = gradient.rows(0..<b)
        updateRule.reset()
        for j in 0..<sampled {
            let block = block(ofStep: j)
            let rows = (block * b)..<((block + 1) * b)
            latents.draw(lambda: lambda, start: rows.lowerBound, slot: j, exampleIDs: ids, noise: noise)
            latents.score(rows: rows, x: x, lambda: lambda, params: params, weights: mode != .endpoints || j == 0 || j == k)
            // A step from λ_j needs ∂/∂z; so does λ₀ (the encoder's gradient in training). The
            // buffer's last block is still back-propagated: its weight gradients need the errors.
            let needsGradient = j < k || j == 0
            latents.backward(rows: rows, params: params, toLatent: needsGradient)
            if needsGradient { latents.elboGradient(start: rows.lowerBound, lambda: lambda, into: g) }
            onStep(Step(index: j, rows: rows, lambda: lambda, elboGradient: needsGradient ? g : nil))
            if j < k {
                updateRule.apply(gradient: g, to: lambda, step: j + 1, stepScale: target.stepScale(step: j + 1, of: k))
                average.add(lambda, iterate: j + 1)
            }
        }
        average.store(into: lambda)
    }

    /// The workspace block (rows block·b ..< (block + 1)·b) that holds step j's sample; after a
    /// run, `block(ofStep: settings.steps)` holds λ_k's.
    public func block(ofStep j: Int) -> Int { Self.block(ofStep: j, in: mode) }

    private static func block(ofStep j: Int, in mode: Mode) -> Int {
        switch mode {
        case .buffer: return j
        case .endpoints: return j == 0 ? 0 : 1
        case .lambdaOnly: return 0
        }
    }
}

/// The running mean, in Float64, of the iterates λ_j from `first` on (none when `first` is past
/// the last step: the refinement then returns its last iterate).
private struct IterateAverage {
    let first: Int
    var sum: [Double] = []
    var count = 0

    init(from first: Int) { self.first = first }

    mutating func add(_ lambda: Matrix, iterate j: Int) {
        guard j >= first else { return }
        if sum.isEmpty { sum = [Double](repeating: 0, count: lambda.rows * lambda.cols) }
        for r in 0..<lambda.rows {
            for c in 0..<lambda.cols { sum[r * lambda.cols + c] += Double(lambda[r, c]) }
        }
        count += 1
    }

    /// λ ← the mean, when any iterate was averaged.
    func store(into lambda: Matrix) {
        guard count > 0 else { return }
        for r in 0..<lambda.rows {
            for c in 0..<lambda.cols { lambda[r, c] = Float(sum[r * lambda.cols + c] / Double(count)) }
        }
    }
}

extension NoiseSource {
    /// The noise of the refinement in evaluation, --gaps and sampling (training's is its epoch's).
    public static func evaluationRefinement(seed: UInt64) -> NoiseSource {
        NoiseSource(seed: seed, purpose: .evaluationRefinementNoise, context: 0)
    }
}
