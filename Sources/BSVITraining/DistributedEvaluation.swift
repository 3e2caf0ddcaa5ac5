import BSVI
import BSVIParallel
import BSVIStorage
import Foundation

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
/// evaluates its contiguous rows, one example at a time, then the per-example values are
/// gathered so every rank holds the whole split's values in row order (PerExampleEvaluation).
public enum DistributedEvaluation {
    /// Examples between two stop votes. A vote is a nonblocking sum, started at one poll and
    /// read at the next, so a signal is honoured within 2 × 8 examples (with K = 5000 ~0.3 s of
    /// work per rank), and a rank waits at a poll only for a rank a whole poll interval behind
    /// it. With a blocking vote the ranks met every 8 examples and each waited out the others'
    /// noise: 4–6 % of a two-rank evaluation on the shared VM.
    public static let stopPollEvery = 8

    /// Rows read from the dataset at once.
    static let readBlock = 64

    /// The split's summary (means, standard errors, weight diagnostics); see `evaluateExamples`.
    public static func run(comm: Communicator, dataset: BinaryDataset, split: DataSplit, limit: Int,
                           model: VAEModel, params: FloatBuffer, samples: Int, refinement: RefinementSettings,
                           proposal: Proposal, seed: UInt64, sampleChunk: Int = ImportanceSampler.evaluationChunk,
                           stopRequested: () -> Bool = { false },
                           progress: ((Int, Int) -> Void)? = nil) throws -> EvaluationResult {
        try evaluateExamples(comm: comm, dataset: dataset, split: split, limit: limit, model: model, params: params,
                             samples: samples, refinement: refinement, proposal: proposal, seed: seed, sampleChunk: sampleChunk,
                             stopRequested: stopRequested, progress: progress).summary
    }

    /// Every example's values, on every rank. `stopRequested` tells whether this rank saw a stop
    /// signal; the ranks vote on it every `stopPollEvery` examples and read the vote one poll
    /// later (the same position on every rank), and all abandon the evaluation together by
    /// throwing `EvaluationInterrupted`.
    public static func evaluateExamples(comm: Communicator, dataset: BinaryDataset, split: DataSplit, limit: Int,
                                        model: VAEModel, params: FloatBuffer, samples: Int, refinement: RefinementSettings,
                                        proposal: Proposal, seed: UInt64, sampleChunk: Int = ImportanceSampler.evaluationChunk,
                                        stopRequested: () -> Bool = { false },
                                        progress: ((Int, Int) -> Void)? = nil) throws -> PerExampleEvaluation {
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
        // numbers are then the same whichever rank and batch position it gets.
        let sampler = ImportanceSampler(model: model, samples: samples, batchCapacity: 1,
                                        refinement: refinement, proposal: proposal, chunk: sampleChunk)
        // Rows are read `readBlock` at a time: a read verifies the checksum of the whole HDF5
        // chunk (1000 rows in prepare-data's files), which one row at a time cost ≈ 1.4 % of an
        // evaluation.
        let blockBuffer = FloatBuffer(count: Self.readBlock * width)
        let block = blockBuffer.matrix(rows: Self.readBlock, cols: width)
        // The whole split's table, zero except this rank's rows: a sum over ranks then puts each
        // example's values in place exactly (x + 0 = x), so every rank ends with the identical
        // table whatever P is. A few numbers per example: 0.4 MB for 10,000 examples.
        let tableWidth = PerExampleEvaluation.valuesPerExample
        var table = [Double](repeating: 0, count: total * tableWidth)
        var done = 0
        var vote: PendingSum? = nil
        for position in 0..<positions {
            if position % stopPollEvery == 0 && position > 0 {
                if let stop = vote?.wait(), stop[0] > 0 {
                    throw EvaluationInterrupted(split: split, examplesDone: position * comm.size, examples: total)
                }
                vote = comm.startAllreduceSum([stopRequested() ? 1.0 : 0.0])
            }
            let row = mine.lowerBound + position
            guard row < mine.upperBound else { continue }
            if position % Self.readBlock == 0 {
                let rows = row..<min(row + Self.readBlock, mine.upperBound)
                try dataset.readRows(split, rows: rows, into: block.rows(0..<rows.count))
            }
            let x = block.rows(position % Self.readBlock ..< position % Self.readBlock + 1)
            let values = PerExampleEvaluation.packed(sampler.evaluate(x: x, exampleIDs: [row], seed: seed, params: params)[0])
            for (c, v) in values.enumerated() { table[row * tableWidth + c] = v }
            done += 1
            progress?(done * comm.size, total)
        }
        // The last vote comes too late to save work: the evaluation is complete (a stop is then
        // the caller's to honour, as for a signal after the last poll).
        _ = vote?.wait()
        withExtendedLifetime(blockBuffer) {}
        if !table.isEmpty { comm.allreduceSum(&table) }
        return PerExampleEvaluation(table: table, split: split, samples: samples, proposal: proposal,
                                    refinementSteps: refinement.steps, seed: seed, seconds: Date().timeIntervalSince(start))
    }
}
