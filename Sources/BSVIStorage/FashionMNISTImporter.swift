import BSVI
import CZlib
import Foundation

/// Converts the Fashion-MNIST IDX files of Debian's `dataset-fashion-mnist` into the binarized
/// dataset layout: train = first 50,000 training images, valid = the last 10,000, test = the
/// 10,000 test images; each pixel becomes 1 with probability intensity/255, drawn once from a
/// counter-based stream keyed by (seed, split, row, pixel).
public enum FashionMNISTImporter {
    public static let defaultSourceFolder = "/usr/share/datasets/fashion-mnist"
    public static let trainingRows = 50_000

    public struct IDXImages {
        public let count: Int
        public let height: Int
        public let width: Int
        public let pixels: [UInt8]
    }

    /// Reads a (gzip-compressed or plain) IDX3 ubyte image file.
    public static func readIDXImages(_ path: String) throws -> IDXImages {
        guard FileManager.default.fileExists(atPath: path) else {
            throw StorageError(file: path, problem: "file not found",
                               fix: "install Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist) or pass --source")
        }
        guard let gz = gzopen(path, "rb") else { throw StorageError(file: path, problem: "cannot open") }
        defer { gzclose(gz) }
        func readExactly(_ n: Int) throws -> [UInt8] {
            var out = [UInt8](repeating: 0, count: n)
            var got = 0
            while got < n {
                let r = out.withUnsafeMutableBytes { gzread(gz, $0.baseAddress! + got, UInt32(min(n - got, 1 << 30))) }
                guard r > 0 else { throw StorageError(file: path, problem: "truncated IDX file (wanted \(n) bytes, got \(got))") }
                got += Int(r)
            }
            return out
        }
        let header = try readExactly(16)
        func be32(_ o: Int) -> Int { Int(header[o]) << 24 | Int(header[o + 1]) << 16 | Int(header[o + 2]) << 8 | Int(header[o + 3]) }
        guard be32(0) == 0x0803 else {
            throw StorageError(file: path, problem: String(format: "bad IDX magic 0x%08x, expected 0x00000803 (ubyte images)", be32(0)))
        }
        let n = be32(4), h = be32(8), w = be32(12)
        guard n > 0 && h > 0 && w > 0 else { throw StorageError(file: path, problem: "empty IDX image file") }
        return IDXImages(count: n, height: h, width: w, pixels: try readExactly(n * h * w))
    }

    /// Bernoulli binarization with a fixed stream per (split, row).
    public static func binarize(_ pixels: ArraySlice<UInt8>, rows: Int, width: Int, seed: UInt64, split: DataSplit) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: rows * width)
        let splitKey = UInt64(DataSplit.allCases.firstIndex(of: split)!)
        let base = pixels.startIndex
        for r in 0..<rows {
            let stream = RandomStream(seed: seed, purpose: .binarization, splitKey, UInt64(r))
            for c in 0..<width {
                let p = Double(pixels[base + r * width + c]) / 255
                out[r * width + c] = stream.uniform(UInt64(c)) < p ? 1 : 0
            }
        }
        return out
    }

    public static func prepare(sourceFolder: String = defaultSourceFolder, output: String, seed: UInt64,
                               progress: (String) -> Void = { _ in }) throws {
        func find(_ base: String) -> String {
            let gz = "\(sourceFolder)/\(base).gz"
            return FileManager.default.fileExists(atPath: gz) ? gz : "\(sourceFolder)/\(base)"
        }
        progress("reading \(sourceFolder)")
        let train = try readIDXImages(find("train-images-idx3-ubyte"))
        let test = try readIDXImages(find("t10k-images-idx3-ubyte"))
        guard train.height == test.height && train.width == test.width else {
            throw StorageError(file: sourceFolder, problem: "training and test images differ in size")
        }
        guard train.count > trainingRows else {
            throw StorageError(file: sourceFolder, problem: "expected more than \(trainingRows) training images, found \(train.count)")
        }
        let d = train.height * train.width
        progress("binarizing \(train.count + test.count) images (seed \(seed))")
        let trainRows = trainingRows, validRows = train.count - trainingRows
        let splits = [
            BinaryDatasetWriter.Split(name: .train, rows: trainRows, width: d,
                                      values: binarize(train.pixels[0..<(trainRows * d)], rows: trainRows, width: d, seed: seed, split: .train)),
            BinaryDatasetWriter.Split(name: .valid, rows: validRows, width: d,
                                      values: binarize(train.pixels[(trainRows * d)...], rows: validRows, width: d, seed: seed, split: .valid)),
            BinaryDatasetWriter.Split(name: .test, rows: test.count, width: d,
                                      values: binarize(test.pixels[...], rows: test.count, width: d, seed: seed, split: .test)),
        ]
        let folder = URL(fileURLWithPath: output).deletingLastPathComponent().path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try BinaryDatasetWriter.write(to: output, splits: splits, imageHeight: train.height, imageWidth: train.width,
                                      source: "Fashion-MNIST (\(sourceFolder)), Bernoulli-binarized",
                                      extraIntAttributes: ["binarization_seed": Int64(seed)])
        progress("wrote \(output): train \(trainRows), valid \(validRows), test \(test.count) rows of \(d) pixels")
    }
}
