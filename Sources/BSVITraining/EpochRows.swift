import BSVI
import BSVIStorage
import Foundation

/// This rank's training rows for one epoch: its slice of every global batch of the epoch
/// (ShardPlan), read from /train at the start of the epoch and held as the stored bytes —
/// rowsPerEpoch × D bytes ≈ N·D/P, never the whole split (39 MB at P = 1 for the default data,
/// 4.9 MB at P = 8). The rows are read in ascending order, chunk by chunk
/// (BinaryDataset.readRows(_:ascending:into:)), and kept in that order; `bufferRow` maps a
/// position of the rank's step order to its row in the buffer.
///
/// A dynamic dataset's /train holds intensities (`values` = .intensities): they are read
/// unchecked and each step's images are drawn from them by `DynamicBinarization`, keyed by
/// (training seed, epoch, global example id) — so every example is a fresh binary image every
/// epoch, the same whichever rank draws it and whether or not the run was resumed in between.
final class EpochRows {
    let plan: ShardPlan
    let width: Int
    /// What the stored bytes are: 0/1 pixels, used as they are, or intensities to draw from.
    let values: SplitValues
    private let bytes: UnsafeMutablePointer<UInt8>
    /// Global row id of each position in step order (the example ids that key the noise).
    private var ids: [Int] = []
    /// Buffer row of each position in step order.
    private var bufferRow: [Int] = []
    private(set) var epoch = -1
    /// The seed the loaded epoch was ordered (and, for intensities, is drawn) with.
    private(set) var seed: UInt64 = 0
    /// What the reads of this process cost so far (summary.json).
    private(set) var readSeconds = 0.0
    private(set) var loads = 0
    private(set) var readStatistics = BinaryDataset.ReadStatistics()

    init(plan: ShardPlan, width: Int, values: SplitValues = .binary) {
        self.plan = plan
        self.width = width
        self.values = values
        bytes = .allocate(capacity: max(plan.rowsPerEpoch * width, 1))
    }

    deinit { bytes.deallocate() }

    /// Reads this rank's rows of `epoch` (a no-op if they are already loaded).
    func load(epoch: Int, seed: UInt64, from dataset: BinaryDataset) throws {
        guard epoch != self.epoch || seed != self.seed else { return }
        let start = Date()
        ids = plan.epochRows(seed: seed, epoch: epoch)
        // A row occurs once per epoch, so the sorted rows are strictly ascending.
        let positions = ids.indices.sorted { ids[$0] < ids[$1] }
        bufferRow = [Int](repeating: 0, count: ids.count)
        for (row, position) in positions.enumerated() { bufferRow[position] = row }
        let ascending = positions.map { ids[$0] }
        let stats = values == .binary
            ? try dataset.readRows(.train, ascending: ascending, into: bytes)
            : try dataset.readIntensityRows(.train, ascending: ascending, into: bytes)
        self.epoch = epoch
        self.seed = seed
        readSeconds += Date().timeIntervalSince(start)
        loads += 1
        readStatistics.rows += stats.rows
        readStatistics.blocks += stats.blocks
        readStatistics.bytesRead += stats.bytesRead
    }

    /// Fills `x` (localBatch × width, Float32 0/1) and `exampleIDs` with step `t` of the epoch:
    /// the stored pixels, or the images drawn for this epoch from the stored intensities.
    func fill(step t: Int, x: Matrix, exampleIDs: inout [Int]) {
        let b = plan.localBatch
        precondition(x.rows == b && x.cols == width && exampleIDs.count == b && t < plan.stepsPerEpoch)
        if values == .intensities {
            for i in 0..<b {
                let position = t * b + i
                exampleIDs[i] = ids[position]
                DynamicBinarization.draw(intensities: bytes + bufferRow[position] * width, width: width, seed: seed, epoch: epoch,
                                         example: ids[position], into: x.row(i))
            }
            return
        }
        for i in 0..<b {
            let position = t * b + i
            exampleIDs[i] = ids[position]
            let source = bytes + bufferRow[position] * width
            let row = x.row(i)
            for c in 0..<width { row[c] = Float(source[c]) }
        }
    }
}
