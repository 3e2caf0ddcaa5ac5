import BSVI

/// How the training split is divided among ranks. Rank r owns the contiguous rows
/// [r·S, (r+1)·S) with S = ⌊N/P⌋; the last N − P·S rows (fewer than P) are never used.
/// Each epoch a rank visits ⌊S/b⌋ batches of b = B/P rows in an order drawn from
/// (seed, epoch, rank); the S mod b rows left over differ from epoch to epoch, so every owned
/// row is used over time. Every rank takes the same number of steps, so no rank waits in a
/// collective alone.
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

    public var localBatch: Int { globalBatch / worldSize }
    public var shardSize: Int { totalRows / worldSize }
    public var shardRows: Range<Int> { (rank * shardSize)..<((rank + 1) * shardSize) }
    public var stepsPerEpoch: Int { localBatch > 0 ? shardSize / localBatch : 0 }
    public var unusedTailRows: Int { totalRows - worldSize * shardSize }

    /// Checks that the batch splits evenly and that every rank has at least one batch.
    public func validate(dataPath: String) throws {
        try Self.checkBatchSplits(globalBatch, across: worldSize)
        guard stepsPerEpoch >= 1 else {
            throw TrainingError.data(file: dataPath,
                                     problem: "/train has \(totalRows) rows, fewer than \(worldSize) ranks × \(localBatch) rows per rank batch",
                                     fix: "use fewer ranks, a smaller --batch-size, or more data")
        }
    }

    /// Shard-local row indices of every batch of `epoch`, in visiting order.
    public func epochOrder(seed: UInt64, epoch: Int) -> [Int] {
        RandomStream(seed: seed, purpose: .shuffle, UInt64(epoch), UInt64(rank)).permutation(count: shardSize)
    }

    /// The global batch must split evenly across the ranks.
    public static func checkBatchSplits(_ globalBatch: Int, across worldSize: Int) throws {
        guard globalBatch % worldSize == 0 else {
            throw TrainingError.invalidConfiguration(
                flag: "--batch-size", problem: "\(globalBatch) is not divisible by the \(worldSize) ranks; use a multiple of \(worldSize)")
        }
    }

    /// Split rows for evaluation: rank r gets a contiguous range; the first N mod P ranks get
    /// one extra row, so together the ranks cover every row exactly once.
    public static func evaluationRows(count: Int, worldSize: Int, rank: Int) -> Range<Int> {
        let base = count / worldSize, extra = count % worldSize
        let start = rank * base + min(rank, extra)
        return start..<(start + base + (rank < extra ? 1 : 0))
    }
}
