import BSVIStorage
import DataFixtures
import Foundation
import Testing

/// Inputs are read and written a chunk of rows at a time (1,000 rows, or fewer for wide rows):
/// rows must arrive in order across chunk boundaries, also where /train ends and /valid begins
/// in the middle of a chunk.
@Suite("Import: streaming across chunks")
struct StreamingImportTests {
    @Test("2,500 rows split 1,777 / 723 in the middle of a chunk, in every format, arrive in order",
          arguments: ["idx", "amat", "npy", "npz", "h5"])
    func rowsStayInOrder(format: String) throws {
        let dir = try makeScratchFolder("stream-\(format)")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let rows = 2_500, width = 6
        let bits = randomBits(rows * width, seed: 61)
        let path: String
        switch format {
        case "idx":
            path = dir + "/in-idx3-ubyte.gz"
            try DataFixtures.writeGzip(path, DataFixtures.idx(dims: [rows, 2, 3], values: bits))
        case "amat":
            path = dir + "/in.amat"
            try DataFixtures.amat(stride(from: 0, to: bits.count, by: width).map { bits[$0..<($0 + width)].map(Double.init) })
                .write(toFile: path, atomically: true, encoding: .utf8)
        case "npy":
            path = dir + "/in.npy"
            try DataFixtures.write(path, DataFixtures.npy(bits.map(Double.init), shape: [rows, width], type: .bool))
        case "npz":
            path = dir + "/in.npz:images"
            try DataFixtures.writeNPZ(dir + "/in.npz", arrays: [("images", DataFixtures.npy(bits.map(Double.init), shape: [rows, width], type: .float32))],
                                      compressed: true)
        default:
            path = dir + "/in.h5:/images"
            let f = try HDF5File.create(dir + "/in.h5")
            try bits.withUnsafeBufferPointer { try f.writeUInt8("/images", $0, shape: [rows, width], checksummedChunkRows: 300) }
            try f.close()
        }
        try runImport(dir) {
            $0.train = path
            $0.test = path
            $0.validFromTrain = 723
            $0.imageShape = ImageShape(height: 2, width: 3)
        }
        #expect(try stored(dir, .train) == Array(bits[0..<(1_777 * width)]))
        #expect(try stored(dir, .valid) == Array(bits[(1_777 * width)...]))
        #expect(try stored(dir, .test) == bits)
        let f = try HDF5File.open(dir + "/out.h5")
        for split in DataSplit.allCases { #expect(try f.datasetInfo("/" + split.rawValue).hasFletcher32) }
    }
}
