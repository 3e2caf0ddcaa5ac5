import ArgumentParser
import BSVIStorage
import BSVITraining
import Foundation

struct PrepareData: ParsableCommand {
    static let defaultSeed: UInt64 = 20190411
    static let configuration = CommandConfiguration(
        commandName: "prepare-data",
        abstract: "Convert images into a binarized HDF5 dataset (/train, /valid, /test): Debian's Fashion-MNIST by default, or IDX, .amat, .npy/.npz and HDF5 files.",
        discussion: """
            With no flags: Fashion-MNIST from Debian's dataset-fashion-mnist into data/fashion-mnist.h5.
            Binarized MNIST (Larochelle & Murray 2011):
              bsvi-dist prepare-data --output data/binarized-mnist.h5 \\
                --train binarized_mnist_train.amat \\
                --valid binarized_mnist_valid.amat \\
                --test binarized_mnist_test.amat
            An .npz with arrays train/valid/test (or x_train/x_valid/x_test):
              bsvi-dist prepare-data --train omniglot.npz --output data/omniglot.h5
            Every format, flag and binarization: docs/data.md. Exit status: 64 bad flag value, 65 bad input data,
            66 missing input, 73 output exists or cannot be created, 74 I/O error.
            """)

    @Option(help: "Input format: fashion-mnist, idx, amat, npy, npz or hdf5 (default: from the file names; fashion-mnist when no file is named).")
    var format: ImportFormat?
    @Option(help: ArgumentHelp("fashion-mnist: the folder of its IDX files (default \(FashionMNISTImporter.defaultSourceFolder)). Other formats: the folder where relative file names, and with --format the conventional names (…train-images-idx3-ubyte[.gz], …_train.amat, train.npy), are looked up.", valueName: "dir"))
    var source: String?
    @Option(help: ArgumentHelp("Training images: FILE, or FILE:KEY for one array of an .npz (KEY) or HDF5 file (/path/in/file).", valueName: "file"))
    var train: String?
    @Option(help: ArgumentHelp("Validation images (default: the last --valid-from-train training rows, or the valid/x_valid array of the training .npz/HDF5 file).", valueName: "file"))
    var valid: String?
    @Option(help: ArgumentHelp("Test images (default: the test/x_test array of the training .npz/HDF5 file).", valueName: "file"))
    var test: String?
    @Option(help: ArgumentHelp("Without --valid: the last N training rows become /valid (default \(DataImportRequest.defaultValidRows)).", valueName: "n"))
    var validFromTrain: Int?
    @Option(help: "auto (0/1 input stored as is, grayscale Bernoulli-binarized once), bernoulli, threshold, or dynamic (/train keeps intensities 0–255; a fresh binary image per epoch).")
    var binarize: BinarizationMode = .auto
    @Option(help: ArgumentHelp("With --binarize threshold: a pixel is 1 when its intensity on the 0–1 scale exceeds T (default 0.5).", valueName: "t"))
    var threshold: Double?
    @Option(help: ArgumentHelp("Image height × width, e.g. 28x28 (default: from N×H×W arrays; 28x28 for 784 pixels).", valueName: "HxW"))
    var imageShape: String?
    @Option(help: "Seed of the one-time Bernoulli binarization.") var seed: UInt64 = PrepareData.defaultSeed
    @Option(help: ArgumentHelp("Output HDF5 file (default for fashion-mnist: \(DataImportRequest.fashionMNISTOutput); required otherwise).", valueName: "file"))
    var output: String?
    @Flag(help: "Replace an existing output file.") var force = false

    func validate() throws {
        if threshold != nil && binarize != .threshold {
            throw ValidationError("--threshold applies only with --binarize threshold")
        }
        if let s = imageShape, ImageShape(parsing: s) == nil {
            throw ValidationError("--image-shape takes HxW with positive integers of at most \(SizeLimits.maxRowWidth) pixels in all, e.g. 28x28; got '\(s)'")
        }
    }

    func run() throws {
        var request = DataImportRequest(seed: seed)
        request.format = format
        request.sourceFolder = source
        request.train = train
        request.valid = valid
        request.test = test
        request.validFromTrain = validFromTrain
        request.binarization = binarize
        if let threshold { request.threshold = threshold }
        request.imageShape = imageShape.flatMap(ImageShape.init(parsing:))
        request.output = output
        request.force = force
        do {
            let summary = try DatasetImporter.run(request, progress: ImportProgress { printError($0) })
            for warning in summary.warnings { printError("warning: " + warning) }
            // The peak shows that memory is bounded by a chunk of rows, not by the input's size.
            print(summary.description + (ResidentMemory.peakMiB.map { String(format: "; peak memory %.0f MiB", $0) } ?? ""))
        } catch {
            throw failure(error, fallback: .ioError)
        }
    }
}
