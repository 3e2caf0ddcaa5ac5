import ArgumentParser
import BSVIStorage
import Foundation

struct PrepareData: ParsableCommand {
    static let defaultSeed: UInt64 = 20190411
    static let configuration = CommandConfiguration(
        commandName: "prepare-data",
        abstract: "Convert Debian's Fashion-MNIST IDX files into a binarized HDF5 dataset (/train, /valid, /test).")

    @Option(help: "Folder with the IDX files (train-images-idx3-ubyte[.gz], t10k-images-idx3-ubyte[.gz]).")
    var source: String = FashionMNISTImporter.defaultSourceFolder
    @Option(help: "Output HDF5 file.") var output: String = "data/fashion-mnist.h5"
    @Option(help: "Seed of the one-time Bernoulli binarization.") var seed: UInt64 = PrepareData.defaultSeed
    @Flag(help: "Replace an existing output file.") var force = false

    func run() throws {
        if FileManager.default.fileExists(atPath: output) && !force {
            printError("error: \(output) already exists; pass --force to rebuild it")
            throw ExitCode(1)
        }
        do {
            try FashionMNISTImporter.prepare(sourceFolder: source, output: output, seed: seed, progress: { print($0) })
        } catch {
            printError("error: \(error)")
            throw ExitCode(1)
        }
    }
}
