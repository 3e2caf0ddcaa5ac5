import Foundation

/// The Bernoulli likelihood of binary pixels given decoder logits a:
/// log p(x|z) = Σ_d [x_d a_d − softplus(a_d)], and its gradient ∂/∂a_d = x_d − sigmoid(a_d).
/// Both are computed in one vectorized pass: e = e^−|a| gives softplus(a) = max(a,0) + log1p(e)
/// and sigmoid(a) = (a ≥ 0 ? 1 : e) / (1 + e), finite for every finite logit.
public enum Bernoulli {
    /// log p(x | logits) for one row, for evaluation (no gradient). Uses
    /// Σ_d log1p(e_d) = log Π_d (1 + e_d) per vector lane: one logarithm per lane and row instead
    /// of one per pixel. Each lane multiplies at most ⌈D/16⌉ factors in [1, 2], so the product
    /// cannot overflow for D < 2000; the rounding error is below 1e-6 nats per pixel.
    public static func logLikelihood(x: UnsafePointer<Float>, logits: UnsafePointer<Float>, count: Int) -> Float {
        precondition(count < 2000, "product form of the likelihood needs rows shorter than 2000")
        var linear = FloatVector(repeating: 0)
        var product = FloatVector(repeating: 1)
        var i = 0
        while i + VectorMath.width <= count {
            let a = VectorMath.load(logits + i), xv = VectorMath.load(x + i)
            // x·a − softplus(a) = x·a − max(a, 0) − log1p(e^−|a|)
            linear += xv * a - a.replacing(with: 0, where: a .< 0)
            product *= 1 + VectorMath.exp(-VectorMath.abs(a))
            i += VectorMath.width
        }
        var total = (linear - VectorMath.log(product)).sum()
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
