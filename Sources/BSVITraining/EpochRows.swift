import BSVI
import BSVIStorage
import Foundation

/// This rank's training rows for one epoch: its slice of every global batch of the epoch
/// (ShardPlan), read from /train at the start of the epoch and held as the stored bytes —
/// rowsPerEpoch × D bytes ≈ N·D/P, never the whole split (39 MB at P = 1 for the default data,
/// 4.9 MB at P = 8). The rows are read in ascending order, chunk by chunk
/// (BinaryDataset.readRows(_:ascending:into:)), and kept in that order; `bufferRow` maps a
/// position of the rank's step order to its row in the buffer.
final class EpochRows {
    let plan: ShardPlan
    let width: Int
    private let bytes: UnsafeMutablePointer<UInt8>
    /// Global row id of each position in step order (the example ids that key the noise).
    private var ids: [Int] = []
    /// Buffer row of each position in step order.
    private var bufferRow: [Int] = []
    private(set) var epoch = -1
    /// What the reads of this process cost so far (summary.json).
    private(set) var readSeconds = 0.0
    private(set) var loads = 0
    private(set) var readStatistics = BinaryDataset.ReadStatistics()

    init(plan: ShardPlan, width: Int) {
        self.plan = plan
        self.width = width
        bytes = .allocate(capacity: max(plan.rowsPerEpoch * width, 1))
    }

    deinit { bytes.deallocate() }

    /// Reads this rank's rows of `epoch` (a no-op if they are already loaded).
    func load(epoch: Int, seed: UInt64, from dataset: BinaryDataset) throws {
        guard epoch != self.epoch else { return }
        let start = Date()
        ids = plan.epochRows(seed: seed, epoch: epoch)
        // A row occurs once per epoch, so the sorted rows are strictly ascending.
        let positions = ids.indices.sorted { ids[$0] < ids[$1] }
        bufferRow = [Int](repeating: 0, count: ids.count)
        for (row, position) in positions.enumerated() { bufferRow[position] = row }
        let stats = try dataset.readRows(.train, ascending: positions.map { ids[$0] }, into: bytes)
        self.epoch = epoch
        readSeconds += Date().timeIntervalSince(start)
        loads += 1
        readStatistics.rows += stats.rows
        readStatistics.blocks += stats.blocks
        readStatistics.bytesRead += stats.bytesRead
    }

    /// Fills `x` (localBatch × width, Float32 0/1) and `exampleIDs` with step `t` of the epoch.
    func fill(step t: Int, x: Matrix, exampleIDs: inout [Int]) {
        let b = plan.localBatch
        precondition(x.rows == b && x.cols == width && exampleIDs.count == b && t < plan.stepsPerEpoch)
        for i in 0..<b {
            let position = t * b + i
            exampleIDs[i] = ids[position]
            let source = bytes + bufferRow[position] * width
            let row = x.row(i)
            for c in 0..<width { row[c] = Float(source[c]) }
        }
    }
}
