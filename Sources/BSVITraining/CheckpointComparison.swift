import BSVI
import BSVIStorage

/// Two checkpoints evaluated on the same examples with the same seed, paired example by
/// example: the per-example difference log p̂_A(x) − log p̂_B(x) cancels the between-example
/// spread that dominates each model's own standard error (docs/evaluation.md).
public struct CheckpointComparison: Equatable, Sendable {
    public var aCheckpoint: String
    public var bCheckpoint: String
    public var a: PerExampleEvaluation
    public var b: PerExampleEvaluation
    /// Whether both models drew the same ε for every example and sample (equal latent sizes):
    /// then the Monte Carlo noise of the two estimates is correlated and largely cancels too.
    public var commonRandomNumbers: Bool

    public init(aCheckpoint: String, bCheckpoint: String, a: PerExampleEvaluation, b: PerExampleEvaluation, commonRandomNumbers: Bool) {
        precondition(a.examples == b.examples && a.split == b.split && a.samples == b.samples && a.seed == b.seed,
                     "a comparison pairs evaluations of the same examples with the same K and seed")
        self.aCheckpoint = aCheckpoint
        self.bCheckpoint = bCheckpoint
        self.a = a
        self.b = b
        self.commonRandomNumbers = commonRandomNumbers
    }

    /// log p̂_A(x) − log p̂_B(x) per example.
    public var difference: [Double] { zip(a.logLikelihood, b.logLikelihood).map { $0 - $1 } }

    public var summary: ComparisonSummary {
        typealias S = SampleStatistics
        let d = difference
        return ComparisonSummary(
            aCheckpoint: aCheckpoint, bCheckpoint: bCheckpoint, split: a.split.rawValue, examples: a.examples, samples: a.samples,
            seed: a.seed, commonRandomNumbers: commonRandomNumbers, difference: S.mean(d), differenceSE: S.standardError(d),
            aBetterFraction: S.fractionGreater(a.logLikelihood, b.logLikelihood),
            aLogLikelihood: S.mean(a.logLikelihood), aLogLikelihoodSE: S.standardError(a.logLikelihood),
            bLogLikelihood: S.mean(b.logLikelihood), bLogLikelihoodSE: S.standardError(b.logLikelihood),
            aEssFractionMean: S.mean(a.essFraction), bEssFractionMean: S.mean(b.essFraction),
            aRefinementSteps: a.refinementSteps, bRefinementSteps: b.refinementSteps, seconds: a.seconds + b.seconds)
    }
}

/// What `compare` reports; JSON keys are the snake_case names (`difference_se`, `a_better_fraction`, …).
public struct ComparisonSummary: Codable, Equatable, Sendable {
    public var aCheckpoint: String
    public var bCheckpoint: String
    public var split: String
    public var examples: Int
    public var samples: Int
    public var seed: UInt64
    public var commonRandomNumbers: Bool
    /// Mean over examples of log p̂_A(x) − log p̂_B(x), and its standard error over examples.
    public var difference: Double
    public var differenceSE: Double
    /// The fraction of examples with log p̂_A(x) > log p̂_B(x) (ties count for neither).
    public var aBetterFraction: Double
    public var aLogLikelihood: Double
    public var aLogLikelihoodSE: Double
    public var bLogLikelihood: Double
    public var bLogLikelihoodSE: Double
    /// Each side's mean effective sample size of its normalised importance weights, as a
    /// fraction of K: how far to trust each estimate (docs/evaluation.md).
    public var aEssFractionMean: Double
    public var bEssFractionMean: Double
    /// Each side's SVI steps (its own training's k, or --refine-steps): ELBO(λ_k) and, with
    /// `--proposal refined`, the proposal itself depend on them.
    public var aRefinementSteps: Int
    public var bRefinementSteps: Int
    public var seconds: Double
}
