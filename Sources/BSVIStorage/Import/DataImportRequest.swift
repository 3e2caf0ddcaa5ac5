/// What `bsvi-dist prepare-data` was asked to do, flag by flag (docs/data.md).
public struct DataImportRequest: Sendable {
    /// nil: inferred from the file names, or fashion-mnist when no file is named.
    public var format: ImportFormat?
    /// The folder of fashion-mnist's IDX files; for other formats, where relative file names
    /// are looked up and conventional names (…train-images-idx3-ubyte, …_train.amat) are found.
    public var sourceFolder: String?
    public var train: String?
    public var valid: String?
    public var test: String?
    /// Rows at the end of the training input that become /valid when no validation input is
    /// named; nil means the default (`defaultValidRows`).
    public var validFromTrain: Int?
    public var binarization: BinarizationMode = .auto
    /// For `.threshold`: a pixel is 1 when its intensity (0–1 scale) exceeds this.
    public var threshold: Double = 0.5
    /// Overrides the image shape read from N×H×W inputs; required for other row widths than 784.
    public var imageShape: ImageShape?
    public var seed: UInt64
    /// nil: `fashionMNISTOutput` for the fashion-mnist format; required otherwise.
    public var output: String?
    public var force = false

    public static let defaultValidRows = 10_000
    public static let fashionMNISTOutput = "data/fashion-mnist.h5"

    public init(seed: UInt64) { self.seed = seed }

    /// Whether the request reads Debian's Fashion-MNIST folder: asked for, or nothing else named.
    var isFashionMNIST: Bool {
        format == .fashionMNIST || (format == nil && train == nil && valid == nil && test == nil)
    }

    /// Flag values that are wrong whatever the input (exit status 64).
    public func checkFlags() throws {
        func usage(_ flag: String, _ problem: String, fix: String? = nil) -> StorageError {
            StorageError(file: flag, problem: problem, fix: fix, kind: .usage)
        }
        if let n = validFromTrain, n < 1 {
            throw usage("--valid-from-train", "must be at least 1, got \(n)", fix: "the validation split cannot be empty")
        }
        if validFromTrain != nil && valid != nil {
            throw usage("--valid-from-train", "cannot be combined with --valid", fix: "take validation rows from the training input or from a file, not both")
        }
        if binarization == .threshold && !(threshold >= 0 && threshold < 1) {
            throw usage("--threshold", "must lie in [0, 1), got \(threshold): it applies to intensities on the 0–1 scale (uint8 pixels are divided by 255)",
                        fix: "on 0–255 data 'pixel > 127' is --threshold 0.5 (the default) and 'pixel ≥ 127' is --threshold 0.498")
        }
        if isFashionMNIST && (train != nil || valid != nil || test != nil) {
            throw usage("--format fashion-mnist", "reads Debian's Fashion-MNIST folder (--source), not --train/--valid/--test",
                        fix: "for other IDX files use --format idx --train FILE --test FILE")
        }
        if !isFashionMNIST && output == nil {
            throw usage("--output", "is required for --format \(format?.rawValue ?? "(inferred)")", fix: "name the HDF5 file to write, e.g. --output data/mine.h5")
        }
    }
}
