/// The training methods of DESIGN.md §2.
public enum TrainingMethod: String, CaseIterable, Codable, Sendable {
    case vae, iwae, svi, bsvi
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

    public init(steps: Int, learningRate: Float, rule: RefinementRule, momentum: Float = 0.9, clipNorm: Float = 0) {
        self.steps = steps
        self.learningRate = learningRate
        self.rule = rule
        self.momentum = momentum
        self.clipNorm = clipNorm
    }
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

    /// Number of decoder rows per example held in the workspace.
    public var rowsPerExample: Int {
        switch method {
        case .vae: return vaeSamples
        case .iwae: return k
        case .svi, .bsvi: return k + 1
        }
    }

    /// Size of the learned π logits vector (0 unless bsvi with learned π).
    public var piCount: Int { method == .bsvi && pi == .learned ? k + 1 : 0 }
}
