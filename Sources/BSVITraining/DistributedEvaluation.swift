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

/// Importance-sampled evaluation with the split's rows divided across ranks: each rank
/// evaluates its contiguous rows, then sums and the exact example count are allreduced.
public enum DistributedEvaluation {
    public static func run(comm: Communicator, dataset: BinaryDataset, split: DataSplit, limit: Int,
                           model: VAEModel, params: FloatBuffer, samples: Int, refinement: RefinementSettings,
                           proposal: Proposal, seed: UInt64, sampleChunk: Int = 500,
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
        // One example at a time, its samples in chunks of `sampleChunk` rows: each example's
        // numbers are then the same whichever rank and batch position it gets, so results
        // differ across world sizes only by the Float64 order of the final sums.
        let examplesPerBatch = 1
        let sampler = ImportanceSampler(model: model, samples: samples, batchCapacity: examplesPerBatch,
                                        refinement: refinement, proposal: proposal, chunk: sampleChunk)
        let xBuffer = FloatBuffer(count: examplesPerBatch * width)
        var sums = EvaluationSums()
        var row = mine.lowerBound
        while row < mine.upperBound {
            let end = min(row + examplesPerBatch, mine.upperBound)
            let x = xBuffer.matrix(rows: end - row, cols: width)
            try dataset.readRows(split, rows: row..<end, into: x)
            sums.add(sampler.evaluate(x: x, exampleIDs: Array(row..<end), seed: seed, params: params))
            row = end
            progress?(sums.examples * comm.size, total)
        }
        var reduced = [Double(sums.examples), sums.logLikelihoodSum, sums.elboInitialSum, sums.elboRefinedSum]
        comm.allreduceSum(&reduced)
        let count = reduced[0]
        return EvaluationResult(split: split.rawValue, examples: Int(count), samples: samples, proposal: proposal.rawValue,
                                refinementSteps: refinement.steps, logLikelihood: reduced[1] / count,
                                elbo: reduced[2] / count, elboRefined: reduced[3] / count,
                                seconds: Date().timeIntervalSince(start))
    }
}
