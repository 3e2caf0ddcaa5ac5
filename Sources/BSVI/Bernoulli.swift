import Foundation

/// The Bernoulli likelihood of binary pixels given decoder logits a:
/// log p(x|z) = Σ_d [x_d a_d − softplus(a_d)], and its gradient ∂/∂a_d = x_d − sigmoid(a_d).
/// Both are computed in one vectorized pass: e = e^−|a| gives softplus(a) = max(a,0) + log1p(e)
/// and sigmoid(a) = (a ≥ 0 ? 1 : e) / (1 + e), finite for every finite logit.
public enum Bernoulli {
    /// log p(x | logits) for one row, for evaluation (no gradient). Uses
    /// Σ_d log1p(e_d) = log Π_d (1 + e_d) per vector lane: one logarithm per lane and 64 vectors
    /// instead of one per pixel. A lane's product has at most 64 factors in [1, 2] before it is
    /// folded into the sum, so it stays below 2⁶⁴ for rows of any length; the rounding error is
    /// below 1e-6 nats per pixel.
    public static func logLikelihood(x: UnsafePointer<Float>, logits: UnsafePointer<Float>, count: Int) -> Float {
        let factorsPerLog = 64
        var linear = FloatVector(repeating: 0)
        var logProducts = FloatVector(repeating: 0)
        var product = FloatVector(repeating: 1)
        var factors = 0
        var i = 0
        while i + VectorMath.width <= count {
            let a = VectorMath.load(logits + i), xv = VectorMath.load(x + i)
            // x·a − softplus(a) = x·a − max(a, 0) − log1p(e^−|a|)
            linear += xv * a - a.replacing(with: 0, where: a .< 0)
            product *= 1 + VectorMath.exp(-VectorMath.abs(a))
            factors += 1
            if factors == factorsPerLog {
                logProducts += VectorMath.log(product)
                product = FloatVector(repeating: 1)
                factors = 0
            }
            i += VectorMath.width
        }
        var total = (linear - logProducts - VectorMath.log(product)).sum()
        while i < count {
            total += x[i] * logits[i] - softplus(logits[i])
            i += 1
        }
        return total
    }

    /// One fused pass over a row: returns log p(x|a) and overwrites the logits with x − sigmoid(a),
    /// the back-propagated error of the log-likelihood (the output layer is linear).
    @inline(__always)
    public static func logLikelihoodAndError(x: UnsafePointer<Float>, logitsToError a: UnsafeMutablePointer<Float>,
                                             count: Int) -> Float {
        var acc = FloatVector(repeating: 0)
        var i = 0
        while i + VectorMath.width <= count {
            let logit = VectorMath.load(a + i), xv = VectorMath.load(x + i)
            let (sp, e) = VectorMath.softplus(logit)
            acc += xv * logit - sp
            let numerator = e.replacing(with: 1, where: logit .>= 0)
            VectorMath.store(xv - numerator / (1 + e), a + i)
            i += VectorMath.width
        }
        var total = acc.sum()
        while i < count {
            let logit = a[i]
            total += x[i] * logit - softplus(logit)
            a[i] = x[i] - sigmoid(logit)
            i += 1
        }
        return total
    }
}
