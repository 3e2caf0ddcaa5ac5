import Foundation

/// Per-example gradient ascent on the variational parameters λ = (μ, ℓ) of a batch, each row
/// following its own gradient with its own optimizer state (sgd, heavy-ball momentum or Adam)
/// and an optional per-example gradient-norm clip.
public final class SVIRefiner {
    public let settings: RefinementSettings
    private let first: FloatBuffer
    private let second: FloatBuffer
    private let width: Int

    public init(settings: RefinementSettings, batchCapacity: Int, latentDim: Int) {
        self.settings = settings
        width = 2 * latentDim
        first = FloatBuffer(count: batchCapacity * width)
        second = FloatBuffer(count: batchCapacity * width)
    }

    /// Clears the optimizer state before a new refinement run.
    public func reset() {
        first.zero()
        second.zero()
    }

    /// λ ← λ + update(g) for every row; `step` counts from 1 (Adam's bias correction).
    /// Clipping rescales `gradient` in place.
    public func apply(gradient: Matrix, to lambda: Matrix, step: Int) {
        let eta = settings.learningRate, beta = settings.momentum
        let beta2: Float = 0.999, adamEpsilon: Float = 1e-8
        let correction1 = 1 - pow(beta, Float(step)), correction2 = 1 - pow(beta2, Float(step))
        for i in 0..<lambda.rows {
            let g = gradient.row(i), lam = lambda.row(i)
            if settings.clipNorm > 0 {
                var sq: Float = 0
                for c in 0..<width { sq += g[c] * g[c] }
                let norm = sq.squareRoot()
                if norm > settings.clipNorm {
                    let scale = settings.clipNorm / norm
                    for c in 0..<width { g[c] *= scale }
                }
            }
            let m = first.base + i * width, v = second.base + i * width
            switch settings.rule {
            case .sgd:
                for c in 0..<width { lam[c] += eta * g[c] }
            case .momentum:
                for c in 0..<width {
                    m[c] = beta * m[c] + g[c]
                    lam[c] += eta * m[c]
                }
            case .adam:
                for c in 0..<width {
                    m[c] = beta * m[c] + (1 - beta) * g[c]
                    v[c] = beta2 * v[c] + (1 - beta2) * g[c] * g[c]
                    lam[c] += eta * (m[c] / correction1) / ((v[c] / correction2).squareRoot() + adamEpsilon)
                }
            }
        }
    }
}
