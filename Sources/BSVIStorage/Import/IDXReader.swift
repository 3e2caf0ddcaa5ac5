import Foundation

/// IDX files (LeCun's MNIST format, also used by Fashion-MNIST, KMNIST and EMNIST), plain or
/// gzip-compressed: a big-endian header — two zero bytes, the element type (0x08 = ubyte), the
/// number of dimensions — then one 32-bit size per dimension, then the values. Image files are
/// N×H×W (magic 0x00000803); N×D (0x00000802) is accepted too. EMNIST stores each image
/// transposed; that changes pictures drawn by `sample`, not training (see docs/data.md).
final class IDXReader: RowReader {
    let location: InputLocation
    let width: Int
    let imageShape: ImageShape?
    let declaredRows: Int?
    let range = ValueRange.byte
    let elementType = "uint8"
    private var data: DeclaredRows

    init(path: String) throws {
        let input = try GzipFileInput(path: path)
        location = input.location
        let magic = try input.readBytes(4, what: "the IDX header")
        let magicValue = magic.reduce(0) { $0 << 8 | UInt32($1) }
        func hex(_ v: UInt32) -> String { String(format: "0x%08x", v) }
        guard magic[0] == 0 && magic[1] == 0 else {
            throw location.error("not an IDX file: magic number \(hex(magicValue)), expected 0x00000803 (ubyte images)",
                                 fix: "pass the images file, e.g. train-images-idx3-ubyte.gz")
        }
        guard magic[2] == 0x08 else {
            throw location.error("IDX element type 0x\(String(magic[2], radix: 16)) (magic \(hex(magicValue))); only ubyte (0x08) images are read",
                                 fix: "pass an idx3-ubyte image file")
        }
        let rank = Int(magic[3])
        guard rank != 1 else {
            throw location.error("is an IDX label file (magic 0x00000801, one value per example), not images",
                                 fix: "pass the images file (…-images-idx3-ubyte), not the labels file")
        }
        guard rank == 2 || rank == 3 else {
            throw location.error("IDX file with \(rank) dimensions (magic \(hex(magicValue))); expected images, magic 0x00000803",
                                 fix: "pass an idx3-ubyte image file")
        }
        let sizes = try input.readBytes(4 * rank, what: "the IDX dimension sizes")
        let dims = (0..<rank).map { i in sizes[(4 * i)..<(4 * i + 4)].reduce(0) { $0 << 8 | Int($1) } }
        let layout = try rowLayout(of: dims, at: location)
        guard layout.width > 0 else {
            throw location.error("IDX images of \(dims.dropFirst().map(String.init).joined(separator: "×")) pixels hold nothing",
                                 fix: "check that this is an IDX image file; its header's image sides must be positive")
        }
        try input.checkDeclaredSize(rows: layout.rows, width: layout.width, elementSize: 1) { complete in
            "the header declares \(layout.rows) images of \(layout.width) pixels, the data stops after \(complete)"
        }
        try checkRowWidth(layout.width, shape: dims, at: location)
        width = layout.width
        imageShape = layout.image
        declaredRows = layout.rows
        data = DeclaredRows(input: input, total: layout.rows, rowBytes: layout.width, rows: "images", rowDescription: "\(layout.width) pixels",
                            fix: "check that this is an unmodified IDX image file")
    }

    func describeRow(_ index: Int) -> String { "row \(index)" }

    func read(upTo maxRows: Int, into out: UnsafeMutablePointer<Double>) throws -> Int {
        try data.read(upTo: maxRows) { bytes, _ in
            for i in bytes.indices { out[i] = Double(bytes[i]) }
        }
    }
}
