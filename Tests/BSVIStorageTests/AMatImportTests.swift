import BSVIStorage
import DataFixtures
import Foundation
import Testing

@Suite("Import: .amat text files")
struct AMatImportTests {
    static func rows(_ bits: [UInt8], width: Int) -> [[Double]] {
        stride(from: 0, to: bits.count, by: width).map { bits[$0..<($0 + width)].map(Double.init) }
    }

    @Test("binarized-MNIST layout: _train/_valid/_test.amat found in --source, stored bit for bit, 784 values → 28×28")
    func binarizedMNISTLayout() throws {
        let dir = try makeScratchFolder("amat")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var bits: [DataSplit: [UInt8]] = [:]
        for (i, split) in DataSplit.allCases.enumerated() {
            bits[split] = randomBits((5 + i) * 784, seed: UInt64(10 + i))
            try DataFixtures.amat(Self.rows(bits[split]!, width: 784))
                .write(toFile: "\(dir)/binarized_mnist_\(split.rawValue).amat", atomically: true, encoding: .utf8)
        }
        let summary = try runImport(dir) {
            $0.format = .amat
            $0.sourceFolder = dir
        }
        for split in DataSplit.allCases { #expect(try stored(dir, split) == bits[split]!) }
        #expect(summary.imageShape == ImageShape(height: 28, width: 28))
        #expect(try rootAttribute(dir, "binarization") == "none")
        #expect(try rootAttribute(dir, "source").contains("binarized_mnist_train.amat"))
    }

    @Test("gzip-compressed, tabs, Windows line ends and blank lines read the same; 0–1 values are Bernoulli-binarized")
    func textVariants() throws {
        let dir = try makeScratchFolder("amat-variants")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let text = "0\t1 1 0\r\n\n1 0.25 0 1\r\n  0 0 1 0.5 \n\n"
        try DataFixtures.writeGzip(dir + "/x.amat.gz", Array(text.utf8))
        try runImport(dir, seed: 9) {
            $0.train = dir + "/x.amat.gz"
            $0.test = dir + "/x.amat.gz"
            $0.validFromTrain = 1
            $0.imageShape = ImageShape(height: 2, width: 2)
        }
        let values: [Double] = [0, 1, 1, 0, 1, 0.25, 0, 1, 0, 0, 1, 0.5]
        #expect(try stored(dir, .test) == expectedBernoulli(values, width: 4, seed: 9, split: .test))
        #expect(try stored(dir, .train) == expectedBernoulli(Array(values[0..<8]), width: 4, seed: 9, split: .train))
    }

    @Test("a line of another width, a value outside [0, 1], a word, an empty file: bad data naming the line")
    func badLines() throws {
        let dir = try makeScratchFolder("amat-bad")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "0 1 0 1\n".write(toFile: dir + "/ok.amat", atomically: true, encoding: .utf8)
        func check(_ text: String, mentions: [String]) throws {
            try text.write(toFile: dir + "/bad.amat", atomically: true, encoding: .utf8)
            let e = importError(dir) {
                $0.train = dir + "/bad.amat"
                $0.test = dir + "/ok.amat"
                $0.validFromTrain = 1
                $0.imageShape = ImageShape(height: 2, width: 2)
            }
            expectError(e, .badData, mentions: ["bad.amat"] + mentions)
            #expect(!FileManager.default.fileExists(atPath: dir + "/out.h5"))
        }
        try check("0 1 0 1\n1 1 0 0\n\n0 1 0\n", mentions: ["line 4 has 3 values; line 1 has 4"])
        try check("0 1 0 1\n1 1 0 0 1\n", mentions: ["line 2 has more than 4 values"])
        try check("0 1 0 1\n1 1 2 0\n", mentions: ["line 2, value 3", "outside [0, 1]"])
        try check("0 1 0 1\n1 x 0 0\n", mentions: ["line 2, value 2", "'x' is not a number"])
        try check("\n\n", mentions: ["no rows"])
    }
}
