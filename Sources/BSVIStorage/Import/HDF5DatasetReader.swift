/// A numeric dataset anywhere in an HDF5 file (`--train FILE:/path/in/file`), N×D or N×H×W,
/// read a hyperslab of rows at a time. uint8 and other integer types hold intensities 0–255;
/// float32 and float64 hold intensities in [0, 1], and so does h5py's bool (a one-byte enum).
final class HDF5DatasetReader: RowReader {
    let location: InputLocation
    let width: Int
    let imageShape: ImageShape?
    let declaredRows: Int?
    let range: ValueRange
    let elementType: String
    private let file: HDF5File
    private let dataset: String
    private var rowsRead = 0

    init(path: String, dataset: String) throws {
        let name = dataset.hasPrefix("/") ? dataset : "/" + dataset
        location = InputLocation(file: path, object: name)
        do {
            file = try HDF5File.open(path)
            guard try file.exists(name) else {
                let top = (try? file.children(of: "/"))?.joined(separator: ", ") ?? "?"
                throw location.error("no such dataset in the file (its top level holds: \(top))",
                                     fix: "name the dataset's full path, e.g. --train \(path):/group/images", kind: .missingInput)
            }
            if let members = try? file.children(of: name) {
                throw location.error("is a group, not a dataset (it holds: \(members.isEmpty ? "nothing" : members.joined(separator: ", ")))",
                                     fix: "name a dataset inside it, e.g. --train \(path):\(name == "/" ? "" : name)/\(members.first ?? "images")")
            }
            let info = try file.datasetInfo(name)
            switch info.elementType {
            case .uint8, .int64: range = .byte
            case .float32, .float64, .other("enum8"): range = .unit  // enum8: h5py's bool
            case .other(let type) where type.hasPrefix("int") || type.hasPrefix("uint"): range = .byte
            default:
                throw location.error("element type \(info.elementType) is not read; pixels must be integers 0–255 or floats in [0, 1]",
                                     fix: "store the images as uint8 (0–255) or float32 (0–1)")
            }
            elementType = info.elementType == .other("enum8") ? "bool (enum)" : info.elementType.description
            let layout = try rowLayout(of: info.shape, at: location)
            guard layout.width > 0 else {
                throw location.error("rows hold no values (shape \(info.shape))", fix: "store the images as an N×D or N×H×W array with D, H, W > 0")
            }
            try checkRowWidth(layout.width, shape: info.shape, at: location)
            // A dataset declared but never written (no storage, or chunks missing) reads as its
            // fill value: blank images, or days of reading for a hostile 2^40 rows. Unwritten rows
            // inside allocated storage cannot be told from written ones: InputSurvey warns.
            try file.checkWholeRead(name, info)
            width = layout.width
            imageShape = layout.image
            declaredRows = layout.rows
        } catch let e as StorageError {
            throw e.classified(as: .badData)
        }
        self.dataset = name
    }

    func describeRow(_ index: Int) -> String { "row \(index)" }

    func read(upTo maxRows: Int, into out: UnsafeMutablePointer<Double>) throws -> Int {
        let n = min(maxRows, declaredRows! - rowsRead)
        guard n > 0 else { return 0 }
        do {
            try file.readRowsAsDoubles(dataset, rows: rowsRead..<(rowsRead + n), into: out)
        } catch let e as StorageError {
            throw e.classified(as: .badData)
        }
        rowsRead += n
        return n
    }
}
