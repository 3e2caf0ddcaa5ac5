import Foundation

/// The input formats `prepare-data` reads.
public enum ImportFormat: String, CaseIterable, Sendable {
    /// Debian's dataset-fashion-mnist folder (IDX files under fixed names); the default.
    case fashionMNIST = "fashion-mnist"
    case idx, amat, npy, npz, hdf5

    /// The format a file name implies, or nil when the name does not say. Compression (.gz)
    /// is looked through for IDX and .amat files, which are often distributed gzipped.
    public static func inferred(fromFileName path: String) -> ImportFormat? {
        var name = URL(fileURLWithPath: path).lastPathComponent.lowercased()
        if name.hasSuffix(".gz") { name = String(name.dropLast(3)) }
        if name.hasSuffix(".npy") { return .npy }
        if name.hasSuffix(".npz") { return .npz }
        if [".h5", ".hdf5", ".hdf", ".he5"].contains(where: name.hasSuffix) { return .hdf5 }
        if name.hasSuffix(".amat") { return .amat }
        if name.hasSuffix("-ubyte") || name.contains(".idx") || name.contains("-idx") { return .idx }
        return nil
    }

    /// Formats whose files hold several named arrays, chosen with FILE:KEY.
    var holdsNamedArrays: Bool { self == .npz || self == .hdf5 }
}

/// One input array: a file in a format and, for .npz and HDF5 files, the array inside it.
public struct InputSpec: Equatable, Sendable, CustomStringConvertible {
    public let format: ImportFormat
    public let file: String
    public let key: String?

    public init(format: ImportFormat, file: String, key: String? = nil) {
        self.format = format
        self.file = file
        self.key = key
    }

    public var description: String { key.map { "\(file):\($0)" } ?? file }

    /// Whether both name the same array: the same file (however spelled) and the same key.
    func isSameArray(as other: InputSpec) -> Bool {
        func normalized(_ key: String?) -> String? { key.map { $0.hasPrefix("/") ? String($0.dropFirst()) : $0 } }
        guard normalized(key) == normalized(other.key) else { return false }
        if let mine = FileIdentity(file), let theirs = FileIdentity(other.file) { return mine == theirs }
        return file == other.file
    }

    func open() throws -> RowReader {
        switch format {
        case .fashionMNIST, .idx: return try IDXReader(path: file)
        case .amat: return try AMatReader(path: file)
        case .npy: return try NPYReader(path: file)
        case .npz: return try NPYReader(input: NPZArchive(path: file).member(key!))
        case .hdf5: return try HDF5DatasetReader(path: file, dataset: key!)
        }
    }

    /// Splits "FILE:KEY" where FILE is an existing file, or where the text before the last
    /// colon names an .npz or HDF5 file (so a missing file is reported as missing, not as a
    /// file whose name happens to contain a colon).
    static func splitKey(_ text: String) -> (file: String, key: String?) {
        if FileManager.default.fileExists(atPath: text) { return (text, nil) }
        var search = text.endIndex
        while let colon = text[..<search].lastIndex(of: ":") {
            let file = String(text[..<colon]), key = String(text[text.index(after: colon)...])
            if !key.isEmpty, FileManager.default.fileExists(atPath: file)
                || ImportFormat.inferred(fromFileName: file)?.holdsNamedArrays == true {
                return (file, key)
            }
            search = colon
        }
        return (text, nil)
    }
}
