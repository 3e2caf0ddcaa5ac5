import CKernels
import Foundation

/// Per-example gradient ascent on the variational parameters λ = (μ, ℓ) of a batch, each row
/// following its own gradient with its own optimizer state (sgd, heavy-ball momentum or Adam)
/// and an optional per-example gradient-norm clip: the update rule of one step of the loop in
/// `SVIRefinement`.
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

    /// λ ← λ + update(g) for every row; `step` counts from 1 (Adam's bias correction), and the
    /// step size is the settings' times `stepScale`. Clipping rescales `gradient` in place.
    public func apply(gradient: Matrix, to lambda: Matrix, step: Int, stepScale: Float = 1) {
        precondition(gradient.rows == lambda.rows && lambda.cols == width && gradient.cols == width
                     && lambda.rows * width <= first.count, "refinement shapes")
        let beta = settings.momentum, beta2: Float = 0.999
        let correction1 = 1 - pow(beta, Float(step)), correction2 = 1 - pow(beta2, Float(step))
        let rule: bsvi_refine_rule
        switch settings.rule {
        case .sgd: rule = BSVI_REFINE_SGD
        case .momentum: rule = BSVI_REFINE_MOMENTUM
        case .adam: rule = BSVI_REFINE_ADAM
        }
        StepProfile.elementwise {
            bsvi_refine_step(rule, Int32(lambda.rows), Int32(width), lambda.base, Int32(lambda.cols), gradient.base,
                             Int32(gradient.cols), first.base, second.base, settings.learningRate * stepScale, beta, beta2, 1e-8,
                             correction1, correction2, settings.clipNorm)
        }
    }
}
