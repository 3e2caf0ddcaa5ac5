import CHDF5

/// Element type classes the project reads and writes.
public enum HDF5ElementType: Equatable, CustomStringConvertible, Sendable {
    case uint8, int64, float32, float64, string, other(String)

    public var description: String {
        switch self {
        case .uint8: return "uint8"
        case .int64: return "int64"
        case .float32: return "float32"
        case .float64: return "float64"
        case .string: return "string"
        case .other(let s): return s
        }
    }

    /// Floating-point types, which HDF5 converts to Float or Double on read.
    var isFloat: Bool { self == .float32 || self == .float64 }

    /// Integer types HDF5 converts to Int64 without changing a value (uint64 could overflow).
    var convertsExactlyToInt64: Bool {
        switch self {
        case .uint8, .int64: return true
        case .other(let s): return ["int8", "int16", "int32", "uint16", "uint32"].contains(s)
        default: return false
        }
    }

    /// The class of an HDF5 datatype (integers by size and sign, floats by size).
    static func of(_ type: hid_t) throws(HDF5CallError) -> HDF5ElementType {
        let typeClass = try hdf5(H5Tget_class(type), "H5Tget_class")
        let size = try hdf5Size(H5Tget_size(type), "H5Tget_size")
        switch typeClass {
        case H5T_INTEGER:
            let signed = try hdf5(H5Tget_sign(type), "H5Tget_sign") == H5T_SGN_2
            if size == 1 && !signed { return .uint8 }
            if size == 8 && signed { return .int64 }
            return .other("\(signed ? "int" : "uint")\(size * 8)")
        case H5T_FLOAT: return size == 4 ? .float32 : size == 8 ? .float64 : .other("float\(size * 8)")
        case H5T_STRING: return .string
        case H5T_ENUM: return .other("enum\(size * 8)")
        default: return .other("type class \(typeClass.rawValue)")
        }
    }
}
