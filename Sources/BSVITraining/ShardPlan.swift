import BSVI

/// Which training rows each rank uses at each step: the global data order of DESIGN.md §5.
///
/// Every epoch has one permutation of all N rows of /train, drawn from (seed, epoch) alone.
/// Global batch j of the epoch is positions [j·B, (j+1)·B) of it, and rank r takes the r-th of P
/// contiguous slices of that batch, whose sizes differ by at most one row (the first B mod P
/// ranks take one more). An epoch has ⌊N/B⌋ steps whatever P is; the last N mod B positions of
/// the permutation (a partial batch) are not used that epoch, and since the permutation changes
/// every epoch, neither are the same rows left out twice except by chance. So which examples
/// meet in a step, and therefore the update, does not depend on P — only on (seed, epoch, step).
public struct ShardPlan: Equatable, Sendable {
    public let totalRows: Int
    public let worldSize: Int
    public let rank: Int
    public let globalBatch: Int

    public init(totalRows: Int, worldSize: Int, rank: Int, globalBatch: Int) {
        self.totalRows = totalRows
        self.worldSize = worldSize
        self.rank = rank
        self.globalBatch = globalBatch
    }

    /// Positions of this rank's examples within every global batch.
    public var batchSlice: Range<Int> { Self.balancedPart(of: globalBatch, parts: worldSize, index: rank) }
    /// This rank's examples per step: ⌊B/P⌋ or ⌈B/P⌉.
    public var localBatch: Int { batchSlice.count }
    /// Steps per epoch, the same on every rank and for every P: a final partial batch is dropped.
    public var stepsPerEpoch: Int { globalBatch > 0 ? totalRows / globalBatch : 0 }
    /// Rows of the epoch's permutation no step reaches (different rows every epoch).
    public var droppedRowsPerEpoch: Int { totalRows - stepsPerEpoch * globalBatch }
    /// Rows this rank reads and holds for one epoch: its slice of every batch, ≈ N/P.
    public var rowsPerEpoch: Int { stepsPerEpoch * localBatch }

    /// Checks that every rank has an example in every step and that the data holds one batch.
    public func validate(dataPath: String) throws {
        try Self.checkBatchSplits(globalBatch, across: worldSize)
        guard stepsPerEpoch >= 1 else {
            throw TrainingError.data(file: dataPath,
                                     problem: "/train has \(totalRows) rows, fewer than one global batch (--batch-size \(globalBatch))",
                                     fix: "use a smaller --batch-size, or more data")
        }
    }

    /// The permutation of all N rows that orders `epoch`; identical on every rank and for every P.
    public static func epochPermutation(totalRows: Int, seed: UInt64, epoch: Int) -> [Int] {
        RandomStream(seed: seed, purpose: .shuffle, UInt64(epoch)).permutation(count: totalRows)
    }

    /// The global rows this rank trains on in `epoch`, in step order: entries
    /// [t·localBatch, (t+1)·localBatch) are its examples of step t of the epoch.
    public func epochRows(seed: UInt64, epoch: Int) -> [Int] {
        let permutation = Self.epochPermutation(totalRows: totalRows, seed: seed, epoch: epoch)
        let slice = batchSlice
        var rows: [Int] = []
        rows.reserveCapacity(rowsPerEpoch)
        for t in 0..<stepsPerEpoch {
            rows += permutation[(t * globalBatch + slice.lowerBound)..<(t * globalBatch + slice.upperBound)]
        }
        return rows
    }

    /// Every rank needs at least one example per step: B ≥ P. (Any B ≥ P splits: the slices
    /// differ by at most one row, and the allreduced gradient sum is divided by B, not by P.)
    /// A run that `resumes` keeps its batch (an experiment setting), so then only the ranks can change.
    public static func checkBatchSplits(_ globalBatch: Int, across worldSize: Int, resumes: Bool = false) throws {
        guard globalBatch >= worldSize else {
            throw TrainingError.invalidConfiguration(
                flag: "--batch-size",
                problem: "\(globalBatch) is smaller than the \(worldSize) ranks, so some rank would have no example in a step; "
                    + (resumes ? "run on at most \(globalBatch) ranks (a resumed run keeps its batch size; a new run may use --batch-size \(worldSize) or more)"
                               : "use --batch-size \(worldSize) or more, or run on at most \(globalBatch) ranks"))
        }
    }

    /// Part `index` of `parts` contiguous parts of 0..<count whose sizes differ by at most one:
    /// the first count mod parts parts take one extra element. Together they cover 0..<count once.
    public static func balancedPart(of count: Int, parts: Int, index: Int) -> Range<Int> {
        let base = count / parts, extra = count % parts
        let start = index * base + min(index, extra)
        return start..<(start + base + (index < extra ? 1 : 0))
    }

    /// Split rows for the start-up check of /train: rank r gets a contiguous range, the ranges
    /// as equal as possible, together every row exactly once. (Evaluation deals its rows by
    /// speed instead: EvaluationDealer.)
    public static func startupCheckRows(count: Int, worldSize: Int, rank: Int) -> Range<Int> {
        balancedPart(of: count, parts: worldSize, index: rank)
    }
}
