import Foundation

/// The Bernoulli likelihood of binary pixels given decoder logits a:
/// log p(x|z) = Σ_d [x_d a_d − softplus(a_d)], and its gradient ∂/∂a_d = x_d − sigmoid(a_d).
public enum Bernoulli {
    /// log p(x | logits) for one row.
    public static func logLikelihood(x: UnsafePointer<Float>, logits: UnsafePointer<Float>, count: Int) -> Float {
        var total: Float = 0
        for d in 0..<count {
            let a = logits[d]
            total += x[d] * a - softplus(a)
        }
        return total
    }

    /// One fused pass over a row: returns log p(x|a) and overwrites the logits with x − sigmoid(a),
    /// the back-propagated error of the log-likelihood (the output layer is linear).
    @inline(__always)
    public static func logLikelihoodAndError(x: UnsafePointer<Float>, logitsToError a: UnsafeMutablePointer<Float>,
                                             count: Int) -> Float {
        var total: Float = 0
        for d in 0..<count {
            let logit = a[d]
            let e = exp(-abs(logit))
            let sp = max(logit, 0) + log1p(e)
            let s = logit >= 0 ? 1 / (1 + e) : e / (1 + e)
            total += x[d] * logit - sp
            a[d] = x[d] - s
        }
        return total
    }
}
