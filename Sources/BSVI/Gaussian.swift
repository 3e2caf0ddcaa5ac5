import Foundation

/// Diagonal Gaussians parameterized by mean μ and log-variance ℓ = log σ².
public enum Gaussian {
    public static let logTwoPi: Float = 1.8378770664093453

    /// log N(z; 0, I).
    public static func logStandardDensity(_ z: UnsafePointer<Float>, count: Int) -> Float {
        var s: Float = 0
        for i in 0..<count { s += z[i] * z[i] }
        return -0.5 * (s + Float(count) * logTwoPi)
    }

    /// log N(z; μ, diag(exp ℓ)) for z = μ + exp(ℓ/2)·ε, written through ε so that it stays exact
    /// when σ is tiny: −½ Σ (log 2π + ℓ + ε²).
    public static func logDensityOfReparameterized(epsilon: UnsafePointer<Float>, logVariance: UnsafePointer<Float>,
                                                   count: Int) -> Float {
        var s: Float = 0
        for i in 0..<count { s += logVariance[i] + epsilon[i] * epsilon[i] }
        return -0.5 * (s + Float(count) * logTwoPi)
    }

    /// log N(z; μ, diag(exp ℓ)) for an arbitrary z.
    public static func logDensity(_ z: UnsafePointer<Float>, mean: UnsafePointer<Float>,
                                  logVariance: UnsafePointer<Float>, count: Int) -> Float {
        var s: Float = 0
        for i in 0..<count {
            let d = z[i] - mean[i]
            s += logVariance[i] + d * d * exp(-logVariance[i])
        }
        return -0.5 * (s + Float(count) * logTwoPi)
    }

    /// KL(N(μ, exp ℓ) ‖ N(0, I)) = ½ Σ (exp ℓ + μ² − 1 − ℓ).
    public static func klToStandard(mean: UnsafePointer<Float>, logVariance: UnsafePointer<Float>, count: Int) -> Float {
        var acc = FloatVector(repeating: 0)
        var i = 0
        while i < count {
            let n = min(VectorMath.width, count - i)
            let ell = VectorMath.load(logVariance + i, count: n), mu = VectorMath.load(mean + i, count: n)
            // Padding lanes hold ℓ = μ = 0, whose term e⁰ + 0 − 1 − 0 is exactly 0.
            acc += VectorMath.exp(ell) + mu * mu - 1 - ell
            i += VectorMath.width
        }
        return 0.5 * acc.sum()
    }
}
