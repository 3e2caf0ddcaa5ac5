import Foundation

/// NumPy's .npy format (also each member of an .npz archive): the magic "\u{93}NUMPY", a version,
/// a header length, a Python dict literal {'descr': '<f4', 'fortran_order': False,
/// 'shape': (N, D), } and then the array's bytes in C order. Element types read: uint8, bool,
/// float32 and float64, either byte order.
final class NPYReader: RowReader {
    enum Element: Equatable {
        case uint8, bool, float32(bigEndian: Bool), float64(bigEndian: Bool)
        var size: Int {
            switch self {
            case .uint8, .bool: return 1
            case .float32: return 4
            case .float64: return 8
            }
        }
        var name: String {
            switch self {
            case .uint8: return "uint8"
            case .bool: return "bool"
            case .float32: return "float32"
            case .float64: return "float64"
            }
        }
    }

    let location: InputLocation
    let width: Int
    let imageShape: ImageShape?
    let declaredRows: Int?
    let range: ValueRange
    let element: Element
    var elementType: String { element.name }
    private var data: DeclaredRows

    convenience init(path: String) throws {
        try self.init(input: GzipFileInput(path: path))
    }

    init(input: ByteInput) throws {
        location = input.location
        // The magic is judged on what is there before a short file is called truncated: a
        // six-byte text file is not a .npy that ends early.
        var magic = [UInt8](repeating: 0, count: 8)
        let got = try magic.withUnsafeMutableBytes { try input.read(into: $0.baseAddress!, count: 8) }
        let expected = [0x93] + Array("NUMPY".utf8)
        guard magic.prefix(min(got, 6)).elementsEqual(expected.prefix(min(got, 6))), got > 0 else {
            throw location.error("not a NumPy .npy array (the file does not start with \\x93NUMPY)",
                                 fix: "save the array with numpy.save")
        }
        if got < 8 {
            throw location.error("the file ends early: the .npy header needs 8 bytes, found \(got)",
                                 fix: "the file is truncated; download or write it again")
        }
        let major = magic[6]
        guard major >= 1 && major <= 3 else {
            throw location.error(".npy format version \(major).\(magic[7]) is not known (1.0–3.0 are)", fix: "save it with numpy.save")
        }
        let lengthBytes = try input.readBytes(major == 1 ? 2 : 4, what: "the .npy header length")
        let headerLength = lengthBytes.reversed().reduce(0) { $0 << 8 | Int($1) }
        guard headerLength < 1 << 20 else {
            throw location.error("the .npy header claims \(headerLength) bytes (corrupt file)", fix: "save the array again")
        }
        let header = String(decoding: try input.readBytes(headerLength, what: "the .npy header"), as: UTF8.self)
        let parsed = try NPYHeader(header, at: location)
        element = parsed.element
        range = element == .uint8 ? .byte : .unit
        let layout = try rowLayout(of: parsed.shape, at: location)
        width = layout.width
        imageShape = layout.image
        declaredRows = layout.rows
        guard width > 0 else {
            throw location.error("rows hold no values (shape \(parsed.shape))", fix: "save the images as an N×D or N×H×W array with D, H, W > 0")
        }
        try input.checkDeclaredSize(rows: layout.rows, width: width, elementSize: element.size) { [element] complete in
            "the header declares \(layout.rows) rows of \(layout.width) \(element.name) values, the data stops after \(complete)"
        }
        try checkRowWidth(width, shape: parsed.shape, at: location)
        data = DeclaredRows(input: input, total: layout.rows, rowBytes: width * element.size, rows: "rows",
                            rowDescription: "\(width) \(element.name) values", fix: "save the array again with numpy.save")
    }

    func describeRow(_ index: Int) -> String { "row \(index)" }

    func read(upTo maxRows: Int, into out: UnsafeMutablePointer<Double>) throws -> Int {
        try data.read(upTo: maxRows) { raw, n in
            let values = n * width
            switch element {
            case .uint8, .bool:
                for i in 0..<values { out[i] = Double(raw[i]) }
            case .float32(let bigEndian):
                for i in 0..<values {
                    let bits = raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)
                    out[i] = Double(Float(bitPattern: bigEndian ? UInt32(bigEndian: bits) : UInt32(littleEndian: bits)))
                }
            case .float64(let bigEndian):
                for i in 0..<values {
                    let bits = raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)
                    out[i] = Double(bitPattern: bigEndian ? UInt64(bigEndian: bits) : UInt64(littleEndian: bits))
                }
            }
        }
    }
}

/// The dict literal of an .npy header, read just far enough for our three keys.
struct NPYHeader {
    let element: NPYReader.Element
    let shape: [Int]

    init(_ text: String, at location: InputLocation) throws {
        func value(of key: String) throws -> Substring {
            for quote in ["'", "\""] {
                if let r = text.range(of: quote + key + quote) {
                    var rest = text[r.upperBound...].drop { $0 == " " }
                    guard rest.first == ":" else { break }
                    rest = rest.dropFirst().drop { $0 == " " }
                    return rest
                }
            }
            throw location.error("the .npy header has no '\(key)' entry (corrupt file): \(text.prefix(120))", fix: "save the array again")
        }
        // descr: a quoted type string, or a list for structured arrays.
        let descrText = try value(of: "descr")
        guard let quote = descrText.first, quote == "'" || quote == "\"" else {
            throw location.error("is a structured NumPy array (several named fields per element)",
                                 fix: "save a plain array of pixel values, e.g. numpy.save(path, x['image'])")
        }
        let descr = String(descrText.dropFirst().prefix { $0 != quote })
        let order = descr.first.map { "<>|=".contains($0) } == true ? descr.first! : "="
        let code = descr.drop { "<>|=".contains($0) }
        let bigEndian = order == ">" || (order == "=" && 1.bigEndian == 1)
        switch code {
        case "u1": element = .uint8
        case "b1", "?": element = .bool
        case "f4": element = .float32(bigEndian: bigEndian)
        case "f8": element = .float64(bigEndian: bigEndian)
        case "O":
            throw location.error("is a NumPy object array (dtype=object), which can only be read by unpickling Python objects",
                                 fix: "convert it to a numeric array first: numpy.save(path, numpy.asarray(x, dtype=numpy.float32))")
        default:
            throw location.error("NumPy dtype '\(descr)' is not read; pixels must be uint8 (0–255), bool, float32 or float64 (0–1)",
                                 fix: "convert it, e.g. numpy.save(path, x.astype(numpy.uint8)) for 0–255 integers or x.astype(numpy.float32) / 255")
        }
        let fortran = try value(of: "fortran_order")
        if fortran.hasPrefix("True") {
            throw location.error("the array is stored in Fortran (column-major) order; rows must be contiguous (C order)",
                                 fix: "save it in C order: numpy.save(path, numpy.ascontiguousarray(x))")
        }
        guard fortran.hasPrefix("False") else {
            throw location.error("the .npy header's 'fortran_order' is neither True nor False (corrupt file)", fix: "save the array again")
        }
        let shapeText = try value(of: "shape")
        guard shapeText.first == "(", let close = shapeText.firstIndex(of: ")") else {
            throw location.error("the .npy header's 'shape' is not a tuple (corrupt file)", fix: "save the array again")
        }
        let parts = shapeText[shapeText.index(after: shapeText.startIndex)..<close]
            .split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let dims = parts.map { Int($0.hasSuffix("L") ? String($0.dropLast()) : $0) }
        guard dims.allSatisfy({ $0 != nil && $0! >= 0 }) else {
            throw location.error("the .npy header's shape \(shapeText[...close]) is not a tuple of sizes (corrupt file)", fix: "save the array again")
        }
        shape = dims.map { $0! }
        if shape.count < 2 {
            throw location.error("array shape is (\(shape.map(String.init).joined(separator: ", "))\(shape.count == 1 ? "," : "")); expected N×D rows or N×H×W images",
                                 fix: "reshape it to (examples, pixels) before saving")
        }
    }
}
