import BSVI
import BSVIParallel
import BSVIStorage
import Foundation

/// Means per example over a whole split (or its first `limit` rows).
public struct EvaluationResult: Codable, Equatable, Sendable {
    public var split: String
    public var examples: Int
    public var samples: Int
    public var proposal: String
    public var refinementSteps: Int
    public var logLikelihood: Double
    public var elbo: Double
    public var elboRefined: Double
    public var seconds: Double

    /// ELBO(λ_k) − ELBO(λ₀): how much per-example refinement improves on the encoder.
    public var amortizationGap: Double { elboRefined - elbo }
}

extension EvaluationResult {
    /// The means of a split's sums (all ranks' together).
    public init(split: DataSplit, sums: ObjectiveSums, samples: Int, proposal: Proposal, refinementSteps: Int, seconds: Double) {
        self.split = split.rawValue
        examples = sums.examples
        self.samples = samples
        self.proposal = proposal.rawValue
        self.refinementSteps = refinementSteps
        logLikelihood = sums.mean(\.bound)
        elbo = sums.mean(\.elboInitial)
        elboRefined = sums.mean(\.elboRefined)
        self.seconds = seconds
    }
}

/// A stop signal arrived during an evaluation: every rank abandoned it after the same example.
public struct EvaluationInterrupted: Error, CustomStringConvertible, ExitStatusCarrying {
    public let split: DataSplit
    public let examplesDone: Int
    public let examples: Int
    public var exitStatus: ExitStatus { .stopped }
    public var description: String {
        "stopped by a signal while evaluating /\(split.rawValue) (\(examplesDone) of \(examples) examples done; nothing recorded); run the command again"
    }
}

/// Importance-sampled evaluation with the split's rows divided across ranks: each rank
/// evaluates its contiguous rows, then sums and the exact example count are allreduced.
public enum DistributedEvaluation {
    /// Examples between two collective checks of the stop flag: with K = 5000 that is ~0.2 s of
    /// work per rank, so a signal is honoured within a fraction of a second.
    public static let stopPollEvery = 8

    /// `stopRequested` tells whether this rank saw a stop signal; the ranks agree on it every
    /// `stopPollEvery` examples (an allreduce), and all abandon the evaluation together by throwing
    /// `EvaluationInterrupted`.
    public static func run(comm: Communicator, dataset: BinaryDataset, split: DataSplit, limit: Int,
                           model: VAEModel, params: FloatBuffer, samples: Int, refinement: RefinementSettings,
                           proposal: Proposal, seed: UInt64, sampleChunk: Int = 500,
                           stopRequested: () -> Bool = { false },
                           progress: ((Int, Int) -> Void)? = nil) throws -> EvaluationResult {
        let start = Date()
        let (n, width) = try dataset.shape(of: split)
        guard width == model.shape.inputDim else {
            throw TrainingError.data(file: dataset.path,
                                     problem: "/\(split.rawValue) rows have \(width) pixels but the model's input_dim is \(model.shape.inputDim)",
                                     fix: "evaluate with the dataset the model was trained on")
        }
        let total = limit > 0 ? min(limit, n) : n
        let mine = ShardPlan.evaluationRows(count: total, worldSize: comm.size, rank: comm.rank)
        // Every rank walks the same number of positions (the largest share), so the stop checks
        // are collectives that every rank reaches; a rank past its rows just waits at them.
        let positions = ShardPlan.evaluationRows(count: total, worldSize: comm.size, rank: 0).count
        // One example at a time, its samples in chunks of `sampleChunk` rows: each example's
        // numbers are then the same whichever rank and batch position it gets, so results
        // differ across world sizes only by the Float64 order of the final sums.
        let sampler = ImportanceSampler(model: model, samples: samples, batchCapacity: 1,
                                        refinement: refinement, proposal: proposal, chunk: sampleChunk)
        let xBuffer = FloatBuffer(count: width)
        let x = xBuffer.matrix(rows: 1, cols: width)
        var sums = ObjectiveSums()
        for position in 0..<positions {
            if position % stopPollEvery == 0 && position > 0 {
                var flag = [stopRequested() ? 1.0 : 0.0]
                comm.allreduceSum(&flag)
                if flag[0] > 0 {
                    throw EvaluationInterrupted(split: split, examplesDone: position * comm.size, examples: total)
                }
            }
            let row = mine.lowerBound + position
            guard row < mine.upperBound else { continue }
            try dataset.readRows(split, rows: row..<(row + 1), into: x)
            sums.add(sampler.evaluate(x: x, exampleIDs: [row], seed: seed, params: params))
            progress?(sums.examples * comm.size, total)
        }
        var packed = [Double](repeating: 0, count: ObjectiveSums.packedCount)
        packed.withUnsafeMutableBufferPointer { sums.pack(into: $0.baseAddress!) }
        comm.allreduceSum(&packed)
        let all = packed.withUnsafeBufferPointer { ObjectiveSums(unpacking: $0.baseAddress!) }
        return EvaluationResult(split: split, sums: all, samples: samples, proposal: proposal, refinementSteps: refinement.steps,
                                seconds: Date().timeIntervalSince(start))
    }
}
