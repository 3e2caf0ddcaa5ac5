import BSVI
import BSVIStorage

/// One split's evaluation example by example: rows 0..<examples of the split, in row order.
/// After a distributed evaluation every rank holds all of it, bit for bit the same whatever the
/// number of ranks, so every statistic computed from it is too.
public struct PerExampleEvaluation: Equatable, Sendable {
    public var split: DataSplit
    /// K, the importance samples per example.
    public var samples: Int
    public var proposal: Proposal
    public var refinementSteps: Int
    /// The seed of the evaluation noise (with the example id it keys every draw).
    public var seed: UInt64
    /// log p̂(x), ELBO(λ₀), ELBO(λ_k), ESS / K and max_s w_s / Σw of each example.
    public var logLikelihood: [Double]
    public var elbo: [Double]
    public var elboRefined: [Double]
    public var essFraction: [Double]
    public var maxWeight: [Double]
    /// Wall time of the evaluation.
    public var seconds: Double
    /// How many examples each rank evaluated (how the dealer shared the work; the values do not
    /// depend on it). Empty when not known (values read back from a file).
    public var rowsPerRank: [Int] = []
    /// How the decoder's products were computed (`eval --matmul-precision`).
    public var matmulPrecision: MatmulPrecision = .highest

    public var examples: Int { logLikelihood.count }
    /// The dataset row of each example (the evaluation takes the split's first rows).
    public var rows: Range<Int> { 0..<examples }

    /// The values per example in the table `init(table:…)` reads, in the order of `packed(_:)`.
    static let valuesPerExample = 5

    /// One example's values in their fixed table order.
    static func packed(_ e: ExampleEvaluation) -> [Double] {
        [e.estimate.logLikelihood, e.elboInitial, e.elboRefined, e.estimate.essFraction, e.estimate.maxWeight]
    }

    /// Reads a table of `valuesPerExample` values per example, one example after another.
    init(table: [Double], split: DataSplit, samples: Int, proposal: Proposal, refinementSteps: Int, seed: UInt64, seconds: Double) {
        precondition(table.count % Self.valuesPerExample == 0)
        func column(_ c: Int) -> [Double] { stride(from: c, to: table.count, by: Self.valuesPerExample).map { table[$0] } }
        self.init(split: split, samples: samples, proposal: proposal, refinementSteps: refinementSteps, seed: seed,
                  logLikelihood: column(0), elbo: column(1), elboRefined: column(2), essFraction: column(3), maxWeight: column(4),
                  seconds: seconds)
    }

    public init(split: DataSplit, samples: Int, proposal: Proposal, refinementSteps: Int, seed: UInt64,
                logLikelihood: [Double], elbo: [Double], elboRefined: [Double], essFraction: [Double], maxWeight: [Double],
                seconds: Double) {
        precondition([elbo.count, elboRefined.count, essFraction.count, maxWeight.count].allSatisfy { $0 == logLikelihood.count })
        self.split = split
        self.samples = samples
        self.proposal = proposal
        self.refinementSteps = refinementSteps
        self.seed = seed
        self.logLikelihood = logLikelihood
        self.elbo = elbo
        self.elboRefined = elboRefined
        self.essFraction = essFraction
        self.maxWeight = maxWeight
        self.seconds = seconds
    }

    /// The means, standard errors and diagnostics over the examples.
    public var summary: EvaluationResult { EvaluationResult(self) }
}
