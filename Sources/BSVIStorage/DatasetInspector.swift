import Foundation

/// Everything `bsvi-dist inspect` shows about a dataset file, as plain values (printable as
/// text or as one JSON object).
public struct DatasetReport: Codable {
    public struct Split: Codable {
        public var name: String
        public var rows: Int
        public var width: Int
        /// "binary" (0/1) or "intensities" (0–255, the /train of a dynamic dataset).
        public var holds: String
        /// Binary splits: the fraction of pixels that are 1. Intensity splits: the mean
        /// intensity / 255, the expected fraction of ones of each epoch's draw.
        public var fractionOfOnes: Double
        /// Values other than 0/1 in a binary split (the trainer refuses the file if any).
        public var nonBinaryValues: Int
        public var checksummed: Bool
    }
    public var file: String
    public var kind = "dataset"
    public var source: String?
    public var binarization: String?
    /// As `prepare-data --seed` took it: the int64 attribute holds the UInt64's bits (as a
    /// checkpoint's seed does), so a seed of 2^63 or more is not shown negative.
    public var binarizationSeed: UInt64?
    public var binarizationThreshold: Double?
    public var imageHeight: Int?
    public var imageWidth: Int?
    public var splits: [Split]
    /// true when every split carries a Fletcher32 checksum; every chunk was read, so HDF5
    /// verified each one (a mismatch fails the read).
    public var checksumsVerified: Bool
    /// What makes the file unusable for training (missing splits, wrong types, other values
    /// than 0/1, widths that differ); empty for a good file.
    public var problems: [String]
    /// What is wrong but does not stop training: the image shape, which only `sample` reads
    /// (it then draws square images or asks for --image-size).
    public var warnings: [String] = []
}

public enum DatasetInspector {
    /// Whether an HDF5 file is a dataset (it has /train, /valid or /test) rather than a
    /// checkpoint (/model). Any one split is enough, so that a dataset missing /train is
    /// inspected as a dataset with that split listed as a problem, not rejected as a checkpoint
    /// without /model.
    public static func isDataset(_ path: String) throws -> Bool {
        let f = try HDF5File.open(path)
        guard try !f.exists("/model") else { return false }
        for split in DataSplit.allCases where try f.exists("/" + split.rawValue) { return true }
        return false
    }

    /// Reads every row of every split (so each chunk's Fletcher32 checksum is verified) and
    /// describes the file. A failed read throws; problems the trainer would refuse are listed.
    public static func inspect(_ path: String) throws -> DatasetReport {
        let f = try HDF5File.open(path)
        var report = attributeReport(f, path: path)
        for split in DataSplit.allCases {
            let name = "/" + split.rawValue
            switch try header(of: name, in: f) {
            case .unreadable(let problem):
                report.problems.append(problem)
                report.checksumsVerified = false
            case .readable(let info):
                let intensities = split == .train && report.binarization == "dynamic"
                let described = try readSplit(split, info, in: f, intensities: intensities)
                if described.nonBinaryValues > 0 { report.problems.append("\(name) holds \(described.nonBinaryValues) values that are not 0/1") }
                report.splits.append(described)
                report.checksumsVerified = report.checksumsVerified && info.hasFletcher32
            }
        }
        if Set(report.splits.map(\.width)).count > 1 {
            report.problems.append("splits have different widths: " + report.splits.map { "\($0.name) \($0.width)" }.joined(separator: ", "))
        }
        report.warnings += imageShapeWarnings(height: report.imageHeight, width: report.imageWidth, rowWidth: report.splits.first?.width)
        return report
    }

    /// The report before any split is read: the file's attributes, each nil when absent or unreadable.
    private static func attributeReport(_ f: HDF5File, path: String) -> DatasetReport {
        func attribute<T>(_ read: () throws -> T, _ name: String) -> T? { (try? f.hasAttribute(name)) == true ? try? read() : nil }
        let binarization = attribute({ try f.stringAttribute("binarization") }, "binarization")
        return DatasetReport(
            file: path, source: attribute({ try f.stringAttribute("source") }, "source"), binarization: binarization,
            binarizationSeed: attribute({ UInt64(bitPattern: try f.scalarInt64Attribute("binarization_seed")) }, "binarization_seed"),
            binarizationThreshold: attribute({ try f.doubleAttribute("binarization_threshold") }, "binarization_threshold"),
            imageHeight: attribute({ Int(try f.scalarInt64Attribute("image_height")) }, "image_height"),
            imageWidth: attribute({ Int(try f.scalarInt64Attribute("image_width")) }, "image_width"),
            splits: [], checksumsVerified: true, problems: [])
    }

    /// What a split's header allows: reading its rows, or (listed as a problem) nothing more.
    private enum SplitHeader {
        case readable(HDF5File.DatasetInfo)
        case unreadable(problem: String)
    }

    /// Checks a split from its header alone, so that a hostile header is listed before anything
    /// is allocated or read.
    private static func header(of name: String, in f: HDF5File) throws -> SplitHeader {
        guard try f.exists(name) else { return .unreadable(problem: "\(name) is missing") }
        let info = try f.datasetInfo(name)
        guard info.elementType == .uint8, info.shape.count == 2, info.shape[0] > 0, info.shape[1] > 0 else {
            return .unreadable(problem: "\(name) is \(info.elementType) of shape \(info.shape), expected uint8 [rows > 0, pixels > 0]")
        }
        // The chunk buffer of `readSplit` is rows × width bytes: a 2 KB file can declare
        // (2^20, 2^30) with no chunk written, so the width is bounded before anything is allocated.
        guard info.shape[1] <= SizeLimits.maxRowWidth else {
            return .unreadable(problem: "\(name) declares rows of \(info.shape[1]) pixels, more than the \(SizeLimits.maxRowWidth) (4096×4096) a row may hold")
        }
        // A split declared but never written (no storage, or chunks missing) reads as fill
        // values: listed rather than read, which for a hostile row count of 2^40 would take days.
        guard try f.isFullyStored(name) else {
            return .unreadable(problem: "\(name) is declared with shape \(info.shape) but its data was never written (the file holds no storage for it, or not for every chunk)")
        }
        return .readable(info)
    }

    /// Reads every row of a split whose header is sound, chunk by chunk (HDF5 verifies each
    /// chunk's checksum on the way), and describes its values.
    private static func readSplit(_ split: DataSplit, _ info: HDF5File.DatasetInfo, in f: HDF5File, intensities: Bool) throws -> DatasetReport.Split {
        let name = "/" + split.rawValue
        let (rows, width) = (info.shape[0], info.shape[1])
        var sum = 0, ones = 0, nonBinary = 0
        let chunk = BinaryDatasetWriter.chunkRows(width: width)
        var bytes = [UInt8](repeating: 0, count: min(chunk, rows) * width)
        for start in stride(from: 0, to: rows, by: chunk) {
            let n = min(chunk, rows - start)
            do {
                try bytes.withUnsafeMutableBufferPointer {
                    try f.readUInt8Rows(name, rows: start..<(start + n), width: width, into: $0.baseAddress!)
                }
            } catch let e as StorageError {
                throw e.classified(as: .badData)
            }
            for i in 0..<(n * width) {
                let v = Int(bytes[i])
                sum += v
                if v == 1 { ones += 1 } else if v > 1 { nonBinary += 1 }
            }
        }
        let total = Double(rows) * Double(width)  // rows × width may overflow Int for a hostile shape
        return .init(name: split.rawValue, rows: rows, width: width, holds: intensities ? "intensities" : "binary",
                     fractionOfOnes: intensities ? Double(sum) / 255 / total : Double(ones) / total,
                     nonBinaryValues: intensities ? 0 : nonBinary, checksummed: info.hasFletcher32)
    }

    /// Warnings about image_height and image_width, which only `sample` reads.
    private static func imageShapeWarnings(height: Int?, width: Int?, rowWidth: Int?) -> [String] {
        // Attributes are hostile until checked: h × w of 2^62 × 4 overflows (a trap), and -4 × -4
        // equals 16 pixels but is no image shape `sample` can draw. Training does not read them.
        let ignored = "; sample ignores it (fix the attributes, or pass sample --image-size)"
        if let h = height, let w = width {
            if h <= 0 || w <= 0 {
                return ["image_height × image_width = \(h)×\(w) is not an image shape (both must be positive)" + ignored]
            } else if let rowWidth, SizeLimits.product([h, w]) != rowWidth {
                return ["image_height × image_width = \(h)×\(w) does not match the \(rowWidth) pixels of a row" + ignored]
            }
        } else if let side = height ?? width, side <= 0 {
            return ["\(height != nil ? "image_height" : "image_width") is \(side); an image side must be positive" + ignored]
        }
        return []
    }
}
