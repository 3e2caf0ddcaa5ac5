import Foundation

/// One example's importance-sampled estimate with the diagnostics of its normalised weights
/// w_s / Σw (all from one streaming pass over the K log weights, see LogSumExpAccumulator).
public struct ImportanceEstimate: Equatable, Sendable {
    /// log p̂(x) = logsumexp_s log w_s − log K.
    public var logLikelihood: Double
    /// The effective sample size (Σw)² / Σw² divided by K: 1 when the weights are equal, 1/K
    /// when one weight holds all the mass (the estimate then rests on a single sample).
    public var essFraction: Double
    /// max_s w_s / Σw: near 1 means one sample decides the estimate.
    public var maxWeight: Double

    public init(logLikelihood: Double, essFraction: Double, maxWeight: Double) {
        self.logLikelihood = logLikelihood
        self.essFraction = essFraction
        self.maxWeight = maxWeight
    }

    /// The estimate of one example's accumulated log weights (`samples` = K of them).
    public init(_ weights: LogSumExpAccumulator, samples: Int) {
        self.init(logLikelihood: weights.value - log(Double(samples)),
                  essFraction: weights.effectiveSampleSize / Double(samples),
                  maxWeight: weights.largestNormalizedWeight)
    }
}

/// Everything the evaluator computes for one example.
public struct ExampleEvaluation: Equatable, Sendable {
    /// log p̂(x) and its weight diagnostics, from the evaluation's proposal (λ₀ or λ_k).
    public var estimate: ImportanceEstimate
    /// ELBO(λ₀), analytic KL, Monte Carlo E_q[log p(x|z)].
    public var elboInitial: Double
    /// ELBO(λ_k) after the evaluation's SVI refinement.
    public var elboRefined: Double

    public init(estimate: ImportanceEstimate, elboInitial: Double, elboRefined: Double) {
        self.estimate = estimate
        self.elboInitial = elboInitial
        self.elboRefined = elboRefined
    }
}

extension Array where Element == ExampleEvaluation {
    /// The evaluations as sums over examples (in order).
    public var sums: ObjectiveSums {
        var s = ObjectiveSums()
        for e in self {
            s.add(ObjectiveSums(examples: 1, bound: e.estimate.logLikelihood, elboInitial: e.elboInitial, elboRefined: e.elboRefined))
        }
        return s
    }
}
