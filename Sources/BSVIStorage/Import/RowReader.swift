/// The range an input's numbers are declared to lie in, which follows from its element type.
public enum ValueRange: Sendable {
    /// Integers 0…255 (uint8 IDX, NumPy and HDF5 arrays): intensity = value / 255.
    case byte
    /// Numbers in [0, 1] (floats, bools, .amat text): intensity = value.
    case unit

    public var maximum: Double { self == .byte ? 255 : 1 }
    public var description: String { self == .byte ? "0–255" : "[0, 1]" }
}

/// Height and width of the images whose pixels make up a row.
public struct ImageShape: Equatable, Sendable, CustomStringConvertible {
    public let height: Int
    public let width: Int
    public init(height: Int, width: Int) {
        self.height = height
        self.width = width
    }
    /// Safe to compute for every shape this module makes: each is checked against
    /// `SizeLimits.maxRowWidth` (parsing, `rowLayout`, `DatasetImporter.imageShape`) first.
    public var pixels: Int { height * width }
    public var description: String { "\(height)x\(width)" }

    /// Parses "HxW" (e.g. "28x28"); nil unless both are positive integers and H·W is at most
    /// `SizeLimits.maxRowWidth` pixels (so that H·W cannot overflow: 2^32×2^32 used to trap).
    public init?(parsing text: String) {
        let parts = text.lowercased().split(separator: "x", omittingEmptySubsequences: false)
        guard parts.count == 2, let h = Int(parts[0]), let w = Int(parts[1]), h > 0, w > 0 else { return nil }
        self.init(height: h, width: w)
        guard isWithinLimits else { return nil }
    }

    /// Both sides positive and H·W at most `SizeLimits.maxRowWidth` pixels, checked without
    /// overflowing.
    public var isWithinLimits: Bool {
        height > 0 && width > 0 && (SizeLimits.product([height, width]).map { $0 <= SizeLimits.maxRowWidth } ?? false)
    }
}

/// Where an input array lives, for messages: the file, and the array inside it if the file
/// holds several (an .npz key, an HDF5 dataset path).
public struct InputLocation: Equatable, Sendable, CustomStringConvertible {
    public let file: String
    public let object: String?
    public init(file: String, object: String? = nil) {
        self.file = file
        self.object = object
    }
    public var description: String { object.map { "\(file):\($0)" } ?? file }

    /// An error about the input's contents (exit status 65 unless `kind` says otherwise).
    func error(_ problem: String, fix: String? = nil, kind: FailureKind = .badData) -> StorageError {
        StorageError(file: file, object: object, problem: problem, fix: fix, kind: kind)
    }
}

/// One input array read front to back a chunk of rows at a time, so that memory is bounded by
/// the chunk whatever the size of the file. Every importer (IDX, .amat, .npy, .npz, HDF5)
/// provides one; the importer reads each input twice (survey, then conversion) by opening it twice.
protocol RowReader: AnyObject {
    var location: InputLocation { get }
    /// Values per row (pixels per image).
    var width: Int { get }
    /// The image shape when the array is N×H×W; nil for N×D arrays and text rows.
    var imageShape: ImageShape? { get }
    /// Rows the file's header promises; nil for formats without a header (.amat).
    var declaredRows: Int? { get }
    var range: ValueRange { get }
    /// The element type as the file names it (uint8, float32, text …), for messages.
    var elementType: String { get }
    /// Reads up to `maxRows` rows (maxRows × width values) into `out`; returns the number of
    /// rows read, 0 once the input is exhausted. A file that ends before its header's promise,
    /// holds bytes after it, or fails a checksum throws a `StorageError` of kind badData.
    func read(upTo maxRows: Int, into out: UnsafeMutablePointer<Double>) throws -> Int
    /// How messages name row `index` (counted from 0) of the chunk read last.
    func describeRow(_ index: Int) -> String
}

/// Makes sense of an array's dimensions: N×D rows, N×H×W images, or N×H×W×1 / N×1×H×W images
/// with a single channel. Anything else is refused with the shape in the message. Sizes come
/// from a header or an HDF5 dataspace, so they are hostile until checked: negative sizes and a
/// row width whose product overflows Int (2^32-1 × 2^32-1 used to trap) are refused here.
/// The caller then checks the width against `SizeLimits.maxRowWidth` (`checkRowWidth`), after
/// comparing the header with the file's size where it can, so a truncated file gets the
/// "ends early" message rather than a limit it never meant to reach.
func rowLayout(of dims: [Int], at location: InputLocation) throws -> (rows: Int, width: Int, image: ImageShape?) {
    let shape = "(" + dims.map(String.init).joined(separator: ", ") + ")"
    let rowDims: [Int]
    switch dims.count {
    case 2: rowDims = [dims[1]]
    case 3: rowDims = [dims[1], dims[2]]
    case 4 where dims[3] == 1: rowDims = [dims[1], dims[2]]
    case 4 where dims[1] == 1: rowDims = [dims[2], dims[3]]
    default:
        throw location.error("array shape is \(shape); expected N×D rows or N×H×W grayscale images",
                             fix: dims.count == 4 ? "colour images need converting to one grayscale channel first"
                                 : "reshape it to (examples, pixels) before saving")
    }
    guard dims.allSatisfy({ $0 >= 0 }) else {
        throw location.error("the header's array shape \(shape) has a negative size (corrupt file)", fix: "write the file again")
    }
    guard let width = SizeLimits.product(rowDims) else {
        throw location.error("the header's array shape \(shape) declares rows of \(rowDims.map(String.init).joined(separator: "×")) values, "
                             + "too many to count (corrupt header)", fix: "check the file; images must be at most 4096×4096 pixels")
    }
    let image = rowDims.count == 2 ? ImageShape(height: rowDims[0], width: rowDims[1]) : nil
    return (dims[0], width, image)
}

/// Refuses rows wider than `SizeLimits.maxRowWidth` values: every reader's chunk buffer holds
/// at least one row, so a header's width decides an allocation before any data is read.
func checkRowWidth(_ width: Int, shape dims: [Int], at location: InputLocation) throws {
    guard width <= SizeLimits.maxRowWidth else {
        let shape = "(" + dims.map(String.init).joined(separator: ", ") + ")"
        throw location.error("the header's array shape \(shape) declares rows of \(width) values, more than the "
                             + "\(SizeLimits.maxRowWidth) (4096×4096) a row may hold (corrupt header, or not image data)",
                             fix: "check the file; images must be at most 4096×4096 pixels")
    }
}
