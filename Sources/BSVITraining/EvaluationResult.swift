import BSVI
import BSVIStorage

/// A split's (or its first `limit` rows') evaluation summarised over examples: means, their
/// standard errors, and the importance-sampling diagnostics (docs/evaluation.md). Encoded into
/// summary.json with snake_case keys (`log_likelihood_se`, `ess_fraction_p05`, …).
public struct EvaluationResult: Codable, Equatable, Sendable {
    public var split: String
    public var examples: Int
    public var samples: Int
    public var proposal: String
    public var refinementSteps: Int
    /// Mean of log p̂(x) over examples, and its standard error over examples.
    public var logLikelihood: Double
    public var logLikelihoodSE: Double
    /// Mean ELBO(λ₀) and its standard error.
    public var elbo: Double
    public var elboSE: Double
    /// Mean ELBO(λ_k) and its standard error.
    public var elboRefined: Double
    public var elboRefinedSE: Double
    /// The effective sample size of the normalised importance weights as a fraction of K:
    /// its mean over examples and its 5th percentile (the worst-sampled examples).
    public var essFractionMean: Double
    public var essFractionP05: Double
    /// The mean over examples of the largest normalised weight max_s w_s / Σw.
    public var maxWeightMean: Double
    public var seconds: Double
    /// The seed of the evaluation noise (`eval --seed` reproduces the numbers); nil in the
    /// summaries of runs from before it was recorded.
    public var seed: UInt64?

    /// ELBO(λ_k) − ELBO(λ₀): how much per-example refinement improves on the encoder.
    public var amortizationGap: Double { elboRefined - elbo }

    public init(split: String, examples: Int, samples: Int, proposal: String, refinementSteps: Int,
                logLikelihood: Double, logLikelihoodSE: Double, elbo: Double, elboSE: Double,
                elboRefined: Double, elboRefinedSE: Double, essFractionMean: Double, essFractionP05: Double,
                maxWeightMean: Double, seconds: Double, seed: UInt64? = nil) {
        self.split = split
        self.examples = examples
        self.samples = samples
        self.proposal = proposal
        self.refinementSteps = refinementSteps
        self.logLikelihood = logLikelihood
        self.logLikelihoodSE = logLikelihoodSE
        self.elbo = elbo
        self.elboSE = elboSE
        self.elboRefined = elboRefined
        self.elboRefinedSE = elboRefinedSE
        self.essFractionMean = essFractionMean
        self.essFractionP05 = essFractionP05
        self.maxWeightMean = maxWeightMean
        self.seconds = seconds
        self.seed = seed
    }
}

extension EvaluationResult {
    /// The summary of per-example values (the same on every rank that holds them).
    public init(_ e: PerExampleEvaluation) {
        typealias S = SampleStatistics
        self.init(split: e.split.rawValue, examples: e.examples, samples: e.samples, proposal: e.proposal.rawValue,
                  refinementSteps: e.refinementSteps,
                  logLikelihood: S.mean(e.logLikelihood), logLikelihoodSE: S.standardError(e.logLikelihood),
                  elbo: S.mean(e.elbo), elboSE: S.standardError(e.elbo),
                  elboRefined: S.mean(e.elboRefined), elboRefinedSE: S.standardError(e.elboRefined),
                  essFractionMean: S.mean(e.essFraction), essFractionP05: S.percentile(e.essFraction, 5),
                  maxWeightMean: S.mean(e.maxWeight), seconds: e.seconds, seed: e.seed)
    }
}
