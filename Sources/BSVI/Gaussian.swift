import CKernels
import Foundation

/// Diagonal Gaussians parameterized by mean μ and log-variance ℓ = log σ².
public enum Gaussian {
    /// KL(N(μ, exp ℓ) ‖ N(0, I)) = ½ Σ (exp ℓ + μ² − 1 − ℓ) for each proposal row of `lambda`
    /// (rows × 2d: μ then ℓ), into `out`.
    public static func klToStandard(lambda: Matrix, into out: UnsafeMutablePointer<Float>) {
        precondition(lambda.cols % 2 == 0, "proposal rows hold μ and ℓ")
        bsvi_kl_to_standard(Int32(lambda.rows), Int32(lambda.cols / 2), lambda.base, Int32(lambda.cols), out)
    }

    /// The KL of one proposal row (μ then ℓ, d each).
    public static func klToStandard(mean: UnsafePointer<Float>, logVariance: UnsafePointer<Float>, count: Int) -> Float {
        precondition(logVariance == mean + count, "μ and ℓ must be adjacent, as in a proposal row")
        var kl: Float = 0
        bsvi_kl_to_standard(1, Int32(count), mean, Int32(2 * count), &kl)
        return kl
    }
}
