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
    /// What happened, without advice: train says how to resume.
    public var summary: String {
        "stopped by a signal while evaluating /\(split.rawValue) (\(examplesDone) of \(examples) examples done; nothing recorded)"
    }
    public var description: String { summary + "; run the command again" }
}

/// Importance-sampled evaluation with the split's rows divided across ranks: the rows are
/// dealt in rounds (EvaluationDealer), each rank evaluates its part of a round (one
/// `ImportanceSampler.evaluate`), and at the end the per-example values are gathered so every
/// rank holds the whole split's values in row order (PerExampleEvaluation).
public enum DistributedEvaluation {
    /// Rows per rank and round, on average. Each round starts a vote (stop flag and speed) that
    /// is read one round later, so a signal is honoured within two rounds (≈ 16 examples, with
    /// K = 5000 ~0.3 s of work per rank), and a rank waits at a round only for a rank a whole
    /// round behind it. The vote is nonblocking: a blocking one made the ranks meet every 8
    /// examples and each wait out the others' noise, 4–6 % of a two-rank evaluation.
    public static let roundRowsPerRank = 8

    /// The rows of a split of `splitRows` rows an evaluation with `limit` uses: the first
    /// `limit` (0: all). The start-up check of the evaluation splits checks the same rows.
    public static func evaluatedRows(splitRows: Int, limit: Int) -> Int {
        limit > 0 ? min(limit, splitRows) : splitRows
    }

    /// The split's summary (means, standard errors, weight diagnostics); see `evaluateExamples`.
    public static func run(comm: Communicator, dataset: BinaryDataset, split: DataSplit, limit: Int,
                           model: VAEModel, params: FloatBuffer, samples: Int, refinement: RefinementSettings,
                           proposal: Proposal, seed: UInt64, sampleChunk: Int? = nil,
                           matmulPrecision: MatmulPrecision = .highest,
                           stopRequested: () -> Bool = { false },
                           progress: ((Int, Int) -> Void)? = nil) throws -> EvaluationResult {
        try evaluateExamples(comm: comm, dataset: dataset, split: split, limit: limit, model: model, params: params,
                             samples: samples, refinement: refinement, proposal: proposal, seed: seed, sampleChunk: sampleChunk,
                             matmulPrecision: matmulPrecision, stopRequested: stopRequested, progress: progress).summary
    }

    /// Every example's values, on every rank. `stopRequested` tells whether this rank saw a stop
    /// signal; the ranks vote on it every round and read the vote one round later (the same
    /// round on every rank), and all abandon the evaluation together by throwing
    /// `EvaluationInterrupted`.
    public static func evaluateExamples(comm: Communicator, dataset: BinaryDataset, split: DataSplit, limit: Int,
                                        model: VAEModel, params: FloatBuffer, samples: Int, refinement: RefinementSettings,
                                        proposal: Proposal, seed: UInt64, sampleChunk: Int? = nil,
                                        matmulPrecision: MatmulPrecision = .highest,
                                        stopRequested: () -> Bool = { false },
                                        progress: ((Int, Int) -> Void)? = nil) throws -> PerExampleEvaluation {
        let start = Date()
        // Every rank's `dataset` must be the same file (`requireSameDataset`, called once where
        // the file is opened: TrainingSetup, and eval's and compare's `openDataset`): copies that
        // differ would deal different totals of rows and meet in different collectives.
        let (n, width) = try comm.agreedShape(of: split, in: dataset)
        guard width == model.shape.inputDim else {
            // The same file and model on every rank: every rank finds this, and rank 0 says it.
            throw CollectiveError(TrainingError.data(file: dataset.path,
                                                     problem: "/\(split.rawValue) rows have \(width) pixels but the model's input_dim is \(model.shape.inputDim)",
                                                     fix: "evaluate with the dataset the model was trained on"), isRoot: comm.isRoot)
        }
        let total = evaluatedRows(splitRows: n, limit: limit)
        let roundRows = roundRowsPerRank * comm.size
        // A part of a round at once (its encoder pass and refinement together), each example's
        // samples in chunks of `sampleChunk` rows (nil: the precision's own chunk). An example's values do not depend on the part
        // it lands in (ImportanceSampler.evaluate), so the deal, which depends on timing, cannot
        // change a result.
        let sampler = ImportanceSampler(model: model, samples: samples, batchCapacity: roundRows,
                                        refinement: refinement, proposal: proposal,
                                        chunk: sampleChunk ?? ImportanceSampler.evaluationChunk(for: matmulPrecision),
                                        matmulPrecision: matmulPrecision)
        let rowsBuffer = FloatBuffer(count: roundRows * width)
        let rows = rowsBuffer.matrix(rows: roundRows, cols: width)
        // The whole split's table, zero except this rank's rows: a sum over ranks then puts each
        // example's values in place exactly (x + 0 = x), so every rank ends with the identical
        // table whatever P is and whichever rank evaluated a row. 0.4 MB for 10,000 examples.
        let tableWidth = PerExampleEvaluation.valuesPerExample
        var table = [Double](repeating: 0, count: total * tableWidth)
        var dealer = EvaluationDealer(total: total, ranks: comm.size, roundRows: roundRows)
        var voting = RoundVoting(comm: comm)
        while !dealer.finished {
            if dealer.next > 0, voting.nextRound(stopRequested: stopRequested) {
                throw EvaluationInterrupted(split: split, examplesDone: dealer.next, examples: total)
            }
            let roundStart = dealer.next
            let part = dealer.deal(speeds: voting.speeds, lastStarts: voting.lastStarts)[comm.rank]
            guard !part.isEmpty else { continue }
            let t0 = Date()
            try dataset.readRows(split, rows: part, into: rows.rows(0..<part.count))
            let evaluated = sampler.evaluate(x: rows.rows(0..<part.count), exampleIDs: Array(part), seed: seed, params: params)
            for (row, e) in zip(part, evaluated) {
                for (c, v) in PerExampleEvaluation.packed(e).enumerated() { table[row * tableWidth + c] = v }
            }
            progress?(min(roundStart + part.count * comm.size, dealer.next), total)
            voting.mine.rowsDone += part.count
            voting.mine.seconds += Date().timeIntervalSince(t0)
        }
        // The last vote comes too late to save work: the evaluation is complete (a stop is then
        // the caller's to honour, as for a signal after the last round).
        voting.finish()
        withExtendedLifetime(rowsBuffer) {}
        let rowsPerRank = combine(&table, rowsDone: voting.mine.rowsDone, total: total, comm: comm)
        var evaluation = PerExampleEvaluation(table: table, split: split, samples: samples, proposal: proposal,
                                              refinementSteps: refinement.steps, seed: seed, seconds: Date().timeIntervalSince(start))
        evaluation.matmulPrecision = matmulPrecision
        evaluation.rowsPerRank = rowsPerRank
        return evaluation
    }

    /// Sums every rank's `table` (zero but for its rows), so every rank holds the whole split's,
    /// and returns the rows each rank evaluated: one slot per rank summed with the table. Every
    /// rank deals from the same numbers, so together they evaluated every row once; a deal that
    /// differed would show.
    static func combine(_ table: inout [Double], rowsDone: Int, total: Int, comm: Communicator) -> [Int] {
        var rowsPerRank = [Double](repeating: 0, count: comm.size)
        rowsPerRank[comm.rank] = Double(rowsDone)
        table.append(contentsOf: rowsPerRank)
        comm.allreduceSum(&table)
        rowsPerRank = Array(table.suffix(comm.size))
        table.removeLast(comm.size)
        let rowsEvaluated = rowsPerRank.reduce(0, +)
        if rowsEvaluated != Double(total) { fatalError("the ranks' evaluation deals disagree: \(rowsEvaluated) rows of \(total) evaluated") }
        return rowsPerRank.map { Int($0) }
    }
}

/// The ranks' vote at each round after the first: each round starts a vote (every rank's
/// RoundReport) and reads the previous round's, so the same rounds and votes on every rank, and
/// no rank waits for the vote it just started.
private struct RoundVoting {
    let comm: Communicator
    /// The ranks' start times are compared with each other: each rank counts on its own
    /// monotonic clock from the barrier in `init`, which all leave within far less than a round.
    /// (Wall clocks differ between hosts: an offset of 0.2 s left a rank with a tenth of the rows.)
    let clockZero: UInt64
    /// The last vote read, the one started, and this rank's running report.
    var reports: [RoundReport]? = nil
    var pending: PendingGather? = nil
    var mine = RoundReport()

    /// A collective (a barrier).
    init(comm: Communicator) {
        self.comm = comm
        comm.barrier()
        clockZero = DispatchTime.now().uptimeNanoseconds
    }

    /// Reads the previous round's vote and starts this round's; true when a rank asked to stop.
    mutating func nextRound(stopRequested: () -> Bool) -> Bool {
        if let gathered = pending?.wait() {
            let read = RoundReport.all(gathered)
            if read.contains(where: \.stop) { return true }
            reports = read
        }
        mine.stop = stopRequested()
        mine.startedAt = Double(DispatchTime.now().uptimeNanoseconds - clockZero) * 1e-9
        pending = comm.startAllgather(mine.values)
        return false
    }

    /// Vote v (started at round v) is read at round v + 1, whose deal follows round v's: the
    /// starts it carries are those of the last parts dealt. A rank that has evaluated nothing
    /// yet counts as fast as one row per second (all do, until measured).
    var speeds: [Double] { reports?.map { $0.speed ?? 1 } ?? Array(repeating: 1, count: comm.size) }
    var lastStarts: [Double]? { reports?.map(\.startedAt) }

    /// Waits for the last vote started.
    mutating func finish() { _ = pending?.wait() }
}

/// What a rank tells the others at the start of each evaluation round.
private struct RoundReport {
    var stop = false
    /// Rows this rank has evaluated, and the seconds it spent on them.
    var rowsDone = 0
    var seconds = 0.0
    /// When it started the round (seconds on its monotonic clock since the evaluation's barrier).
    var startedAt = 0.0

    static let valueCount = 4
    var values: [Double] { [stop ? 1 : 0, Double(rowsDone), seconds, startedAt] }

    /// Rows per second, once measured.
    var speed: Double? { rowsDone > 0 && seconds > 0 ? Double(rowsDone) / seconds : nil }

    /// Every rank's report from a gather of `values`.
    static func all(_ gathered: [Double]) -> [RoundReport] {
        stride(from: 0, to: gathered.count, by: valueCount).map {
            RoundReport(stop: gathered[$0] > 0, rowsDone: Int(gathered[$0 + 1]), seconds: gathered[$0 + 2], startedAt: gathered[$0 + 3])
        }
    }
}
