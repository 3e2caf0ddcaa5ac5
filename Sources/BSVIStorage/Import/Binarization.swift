import BSVI

/// `--binarize`: how pixel intensities become the 0/1 values the model is trained on.
public enum BinarizationMode: String, CaseIterable, Sendable {
    /// 0/1 input is stored as it is; grayscale input is Bernoulli-binarized once.
    case auto
    /// Each pixel is 1 with probability = intensity, drawn once (seeded).
    case bernoulli
    /// Each pixel is 1 when its intensity exceeds the threshold.
    case threshold
    /// /train keeps intensities (uint8 0–255); the trainer draws a fresh binary image per
    /// example and epoch. /valid and /test are Bernoulli-binarized once.
    case dynamic
}

/// What was done to the pixels, as the dataset's `binarization` attribute records it.
public enum StoredBinarization: Equatable, Sendable, CustomStringConvertible {
    /// The input was already 0/1 and is stored bit for bit.
    case none
    case bernoulli(seed: UInt64)
    case threshold(Double)
    /// /train holds intensities; /valid and /test were Bernoulli-binarized with `seed`.
    case dynamic(seed: UInt64)

    init(mode: BinarizationMode, inputIsBinary: Bool, seed: UInt64, threshold: Double) {
        switch mode {
        case .auto: self = inputIsBinary ? .none : .bernoulli(seed: seed)
        case .bernoulli: self = .bernoulli(seed: seed)
        case .threshold: self = .threshold(threshold)
        case .dynamic: self = .dynamic(seed: seed)
        }
    }

    /// The value of the `binarization` root attribute.
    public var attribute: String {
        switch self {
        case .none: return "none"
        case .bernoulli: return "bernoulli"
        case .threshold: return "threshold"
        case .dynamic: return "dynamic"
        }
    }

    public var description: String {
        switch self {
        case .none: return "none (the input was already 0/1)"
        case .bernoulli(let seed): return "bernoulli (seed \(seed))"
        case .threshold(let t): return "threshold (intensity > \(t))"
        case .dynamic(let seed): return "dynamic (/train holds intensities 0–255; /valid and /test Bernoulli-binarized with seed \(seed))"
        }
    }
}

/// Turns one input row into the stored bytes of a split. Intensity = value / 255 for 0–255
/// inputs and value for [0, 1] inputs — except for an input whose values are all 0/1, where
/// the value is the bit itself whatever the element type (a uint8 array of 0/1 is binary
/// data, not a nearly black image).
struct PixelConverter {
    let stored: StoredBinarization

    func convert(_ row: UnsafePointer<Double>, width: Int, input: InputSurvey, split: DataSplit, rowIndex: Int,
                 into out: UnsafeMutablePointer<UInt8>) {
        let scale = input.isBinary ? 1 : input.range.maximum
        switch stored {
        case .none:
            for c in 0..<width { out[c] = row[c] == 1 ? 1 : 0 }
        case .bernoulli(let seed):
            Self.bernoulli(row, width: width, scale: scale, seed: seed, split: split, rowIndex: rowIndex, into: out)
        case .threshold(let t):
            for c in 0..<width { out[c] = row[c] / scale > t ? 1 : 0 }
        case .dynamic(let seed):
            guard split == .train else {
                Self.bernoulli(row, width: width, scale: scale, seed: seed, split: split, rowIndex: rowIndex, into: out)
                return
            }
            // 0–255 integers are kept exactly; [0, 1] values are rounded to the nearest 1/255.
            for c in 0..<width { out[c] = UInt8((row[c] / scale * 255).rounded()) }
        }
    }

    /// Pixel c of row r of a split is 1 when uniform number c of the stream keyed by
    /// (seed, split, r) is below its intensity — the one-time binarization the Fashion-MNIST
    /// importer has always used, so the default dataset stays the same bit for bit.
    static func bernoulli(_ row: UnsafePointer<Double>, width: Int, scale: Double, seed: UInt64, split: DataSplit, rowIndex: Int,
                          into out: UnsafeMutablePointer<UInt8>) {
        let splitKey = UInt64(DataSplit.allCases.firstIndex(of: split)!)
        let stream = RandomStream(seed: seed, purpose: .binarization, splitKey, UInt64(rowIndex))
        for c in 0..<width { out[c] = stream.uniform(UInt64(c)) < row[c] / scale ? 1 : 0 }
    }
}
