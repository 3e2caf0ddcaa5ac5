/// The training methods of DESIGN.md §2.
public enum TrainingMethod: String, CaseIterable, Codable, Sendable {
    case vae, iwae, svi, bsvi

    /// svi and bsvi: each example's λ is refined by k SVI steps, each a pass back through the decoder.
    public var refines: Bool { self == .svi || self == .bsvi }
}

/// The BSVI buffer's mixture weights π over λ₀…λ_k.
public enum PiMode: String, CaseIterable, Codable, Sendable {
    case uniform, last, learned
}

/// The per-example update rule of SVI refinement.
public enum RefinementRule: String, CaseIterable, Codable, Sendable {
    case sgd, momentum, adam
}

/// How each example's variational parameters are refined (decoder fixed).
public struct RefinementSettings: Sendable, Equatable, Codable {
    public var steps: Int
    public var learningRate: Float
    public var rule: RefinementRule
    /// Heavy-ball coefficient for `momentum`; β₁ for `adam`.
    public var momentum: Float
    /// Per-example gradient-norm clip; 0 disables it.
    public var clipNorm: Float
    /// What the refinement returns: λ_k, the last of k steps at the constant step size (training,
    /// ELBO(λ_k), the refined proposal), or its best estimate of the optimum λ* (`eval --gaps`):
    /// a last iterate keeps jittering around the optimum at a scale set by the step size, which
    /// understates the best Gaussian's ELBO. A setting of the evaluation, never stored with a
    /// run's configuration.
    public var target: RefinementTarget = .lastIterate

    private enum CodingKeys: String, CodingKey { case steps, learningRate, rule, momentum, clipNorm }

    public init(steps: Int, learningRate: Float, rule: RefinementRule, momentum: Float = 0.9, clipNorm: Float = 0) {
        self.steps = steps
        self.learningRate = learningRate
        self.rule = rule
        self.momentum = momentum
        self.clipNorm = clipNorm
    }
}

/// What an SVI refinement returns (`RefinementSettings.target`).
public enum RefinementTarget: Sendable, Equatable {
    /// λ_k after k steps of the rule at its constant step size.
    case lastIterate
    /// An estimate of the best Gaussian λ* = argmax ELBO(λ): step j (from 0) of k takes the step
    /// size η/√(1 + 20j/k), falling to about η/4.6, and λ* is the mean of the iterates of the last
    /// three quarters of the steps (Polyak–Ruppert), which cancels most of the remaining jitter.
    /// Chosen among constant, linear, cosine, exponential and step decays, each with and without
    /// averaging, on a 2-d toy model (against the quadrature optimum) and the default
    /// Fashion-MNIST checkpoint (against a 64-sample run): with Adam, η = 0.1 and k = 1000 it
    /// comes within 0.03 nats of the best ELBO there, where the last of constant steps fell
    /// short by 2.4 (docs/evaluation.md).
    case optimum

    /// The step size's multiplier at step j (from 1) of k.
    func stepScale(step j: Int, of k: Int) -> Float {
        switch self {
        case .lastIterate: return 1
        case .optimum: return 1 / (1 + 20 * Float(j - 1) / Float(k)).squareRoot()
        }
    }

    /// The first iterate (λ_j, j from 1) `optimum` averages, of k steps: λ_{⌊k/4⌋+1} … λ_k.
    static func firstAveraged(of k: Int) -> Int { k / 4 + 1 }
}

/// Everything that defines a method's per-batch objective.
public struct ObjectiveSettings: Sendable, Equatable, Codable {
    public var method: TrainingMethod
    /// iwae: importance samples; svi/bsvi: refinement steps; vae: unused.
    public var k: Int
    /// vae: Monte Carlo samples of the ELBO.
    public var vaeSamples: Int
    public var pi: PiMode
    public var refinement: RefinementSettings

    public init(method: TrainingMethod, k: Int, vaeSamples: Int = 1, pi: PiMode = .uniform,
                refinement: RefinementSettings) {
        self.method = method
        self.k = k
        self.vaeSamples = vaeSamples
        self.pi = pi
        self.refinement = refinement
    }

    /// Number of decoder rows per example held in the workspace (svi: λ₀'s and λ_k's samples,
    /// bsvi: every step's; see SVIRefinement.Mode).
    public var rowsPerExample: Int {
        switch method {
        case .vae: return vaeSamples
        case .iwae: return k
        case .svi, .bsvi: return SVIRefinement.trainingBlocks(steps: k, keepsEveryStep: keepsEverySVIStep)
        }
    }

    /// Whether training keeps every SVI step's sample (bsvi's buffer) or only λ₀'s and λ_k's (svi).
    public var keepsEverySVIStep: Bool { method == .bsvi }

    /// Size of the learned π logits vector (0 unless bsvi with learned π).
    public var piCount: Int { method == .bsvi && pi == .learned ? k + 1 : 0 }
}

extension ObjectiveSettings {
    /// Minimal multiply-adds per example of one training step with activation reuse
    /// (docs/benchmarks.md): with E = encoder multiply-adds per row, G = decoder multiply-adds
    /// per row, and E₁ = those of the encoder's first layer,
    ///   encoder: E (forward) + E (weight gradients) + E − E₁ (back-propagation below the output)
    ///   vae (n samples), iwae (k): n·3G — forward, backward to z, weight gradients
    ///   svi:  k·2G (forward + backward to z per step) + G (forward at λ_k) + B_k + G (weight gradients)
    ///   bsvi: k·2G + G + B_k + (k+1)·G (weight gradients over the whole buffer)
    /// where B_k = G − G₁ is the back-propagation at λ_k down to the first hidden layer, which its
    /// hidden-layer weight gradients need (G₁: the decoder's first layer; B_0 = G, since step 0
    /// also goes back to z for the encoder's gradient).
    public func usefulMultiplyAddsPerExample(model: VAEModel) -> Int {
        let e = model.encoder.multiplyAddsPerRow, g = model.decoder.multiplyAddsPerRow
        let e1 = model.encoder.sizes[0] * model.encoder.sizes[1]
        let g1 = model.decoder.sizes[0] * model.decoder.sizes[1]
        let encoder = 3 * e - e1
        let lastBackward = k == 0 ? g : g - g1
        switch method {
        case .vae: return encoder + vaeSamples * 3 * g
        case .iwae: return encoder + k * 3 * g
        case .svi: return encoder + k * 2 * g + g + lastBackward + g
        case .bsvi: return encoder + k * 2 * g + g + lastBackward + (k + 1) * g
        }
    }
}
