/// Reads of the intensity split of a dynamic dataset (/train of a `--binarize dynamic` file):
/// the stored uint8 values 0–255, unchecked — every uint8 is an intensity — from which the
/// trainer draws a fresh binary image per epoch (`DynamicBinarization`). Binary splits are refused.
extension BinaryDataset {
    /// Reads rows `rows` of `split` as stored into `out` (rows.count × width bytes).
    public func readIntensityRows(_ split: DataSplit, rows: Range<Int>, into out: UnsafeMutablePointer<UInt8>) throws {
        try requireIntensities(split)
        let (n, width) = try shape(of: split)
        guard rows.lowerBound >= 0 && rows.upperBound <= n else {
            throw StorageError(file: path, object: "/" + split.rawValue,
                               problem: "rows \(rows.lowerBound)..<\(rows.upperBound) are outside the split's \(n) rows")
        }
        try file.readUInt8Rows("/" + split.rawValue, rows: rows, width: width, into: out)
    }

    /// Reads the rows `rows` (strictly ascending) of `split` as stored, row `rows[i]` landing at
    /// `out + i·width`: the chunk-wise read of `readRows(_:ascending:into:)` (each chunk at most
    /// once, memory the output plus one chunk), for a rank's rows of an epoch.
    @discardableResult
    public func readIntensityRows(_ split: DataSplit, ascending rows: [Int], into out: UnsafeMutablePointer<UInt8>) throws
        -> ReadStatistics {
        try requireIntensities(split)
        return try gatherRows(split, ascending: rows, into: out).stats
    }

    func requireIntensities(_ split: DataSplit) throws {
        guard values(of: split) == .binary else { return }
        throw StorageError(file: path, object: "/" + split.rawValue,
                           problem: "holds binary values, not intensities (binarization = \(binarization ?? "not recorded"))",
                           fix: "read it with readRows; only /train of a --binarize dynamic dataset holds intensities")
    }
}
