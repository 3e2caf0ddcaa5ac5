import Foundation

/// What an import wrote.
public struct ImportSummary: Sendable, CustomStringConvertible {
    public let output: String
    public let rows: [DataSplit: Int]
    public let width: Int
    public let imageShape: ImageShape
    public let binarization: StoredBinarization
    public let source: String
    /// Things the user should know about an import that succeeded (e.g. a split read twice).
    public let warnings: [String]

    public var description: String {
        "wrote \(output): train \(rows[.train]!), valid \(rows[.valid]!), test \(rows[.test]!) rows of \(width) pixels"
            + " (\(imageShape) images); binarization: \(binarization)"
    }
}

/// `bsvi-dist prepare-data`: reads the inputs of a request and writes the dataset file of
/// DESIGN.md §4. Two passes over every input, each a chunk of rows at a time: the survey
/// checks everything (rows, widths, value ranges, whether the input is already 0/1) before
/// the output is created; the conversion then streams rows into a temp file that replaces
/// the output only when complete (AtomicFile), so a failure leaves no output behind.
public enum DatasetImporter {
    @discardableResult
    public static func run(_ request: DataImportRequest, progress: ImportProgress = .silent) throws -> ImportSummary {
        try request.checkFlags()
        let output = request.output ?? DataImportRequest.fashionMNISTOutput
        try checkOutput(output, force: request.force)
        let inputs = try ResolvedInputs(request)
        try checkOutputIsNoInput(output, inputs)
        let train = try InputSurvey(inputs.train, progress: progress)
        let valid = try inputs.valid.map { try InputSurvey($0, progress: progress) }
        let test = try InputSurvey(inputs.test, progress: progress)

        let (trainRows, validRows) = try Self.splitRows(request, inputs, train: train, valid: valid)
        for other in [valid, test].compactMap({ $0 }) {
            try checkSameImages(other, as: train)
        }
        let imageShape = try Self.imageShape(request, train: train)
        let inputIsBinary = [train, valid, test].compactMap { $0 }.allSatisfy(\.isBinary)
        let binarization = StoredBinarization(mode: request.binarization, inputIsBinary: inputIsBinary,
                                              seed: request.seed, threshold: request.threshold)
        let source = Self.sourceDescription(request, inputs, validRows: validRows, binarization: binarization)
        try Self.write(output, train: train, valid: valid, test: test, rows: (trainRows, validRows),
                       imageShape: imageShape, binarization: binarization, source: source, progress: progress)
        return ImportSummary(output: output, rows: [.train: trainRows, .valid: validRows, .test: test.rows], width: train.width,
                             imageShape: imageShape, binarization: binarization, source: source,
                             warnings: Self.unique(inputs.warnings + [train, valid, test].compactMap { $0 }.flatMap(\.warnings)))
    }

    /// The warnings in their order, each once (an input read as two splits is surveyed twice).
    static func unique(_ warnings: [String]) -> [String] {
        var seen = Set<String>()
        return warnings.filter { seen.insert($0).inserted }
    }

    /// Refuses, before any input is read, an output that cannot be written or must not be
    /// replaced (the rename at the end would fail only after all the work).
    static func checkOutput(_ output: String, force: Bool) throws {
        guard !output.isEmpty, !output.hasSuffix("/") else {
            throw StorageError(file: "--output", problem: "'\(output)' names no file", fix: "name the HDF5 file to write, e.g. --output data/mine.h5",
                               kind: .usage)
        }
        try AtomicFile.checkFileName(output)
        try AtomicFile.checkReplaceable(output)
        if PathKind(output) == .regularFile && !force {
            throw StorageError(file: output, problem: "already exists", fix: "pass --force to replace it", kind: .cannotCreateOutput)
        }
    }

    /// Refuses an output that is one of the inputs: replacing it would destroy the data read.
    static func checkOutputIsNoInput(_ output: String, _ inputs: ResolvedInputs) throws {
        guard let target = FileIdentity(output) else { return }
        for input in [inputs.train, inputs.valid, inputs.test].compactMap({ $0 }) where FileIdentity(input.file) == target {
            throw StorageError(file: "--output", problem: "\(output) is also an input (\(input)): writing it would destroy the data being read",
                               fix: "choose another --output", kind: .usage)
        }
    }

    /// Every split holds images of the training input's size and, when both say it, shape.
    static func checkSameImages(_ other: InputSurvey, as train: InputSurvey) throws {
        if other.width != train.width {
            throw StorageError(file: other.spec.description,
                               problem: "rows have \(other.width) values, but the training rows (\(train.spec)) have \(train.width)",
                               fix: "every split must hold images of the same size", kind: .badData)
        }
        if let shape = other.imageShape, let trainShape = train.imageShape, shape != trainShape {
            throw StorageError(file: other.spec.description,
                               problem: "holds \(shape) images, but the training input (\(train.spec)) holds \(trainShape) images: their pixels are laid out differently",
                               fix: "every split must hold images of the same height and width", kind: .badData)
        }
    }

    /// How many training rows become /train and how many /valid: all of a validation input, or
    /// the last --valid-from-train rows of the training input.
    static func splitRows(_ request: DataImportRequest, _ inputs: ResolvedInputs, train: InputSurvey,
                          valid: InputSurvey?) throws -> (train: Int, valid: Int) {
        if let valid { return (train.rows, valid.rows) }
        let validRows = request.validFromTrain ?? DataImportRequest.defaultValidRows
        guard validRows < train.rows else {
            throw StorageError(file: inputs.train.description,
                               problem: "has \(train.rows) rows, so --valid-from-train \(validRows) would leave no training rows",
                               fix: "pass a smaller --valid-from-train, or a validation file with --valid", kind: .usage)
        }
        return (train.rows - validRows, validRows)
    }

    /// The output file, written whole into a temp file that replaces `output` only when complete.
    static func write(_ output: String, train: InputSurvey, valid: InputSurvey?, test: InputSurvey, rows: (train: Int, valid: Int),
                      imageShape: ImageShape, binarization: StoredBinarization, source: String, progress: ImportProgress) throws {
        let folder = URL(fileURLWithPath: output).deletingLastPathComponent().path
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            throw StorageError(file: output, problem: "cannot create the folder \(folder)",
                               fix: "choose a location where you can write", kind: .cannotCreateOutput)
        }
        let converter = PixelConverter(stored: binarization)
        // An earlier prepare-data killed mid-write (Ctrl-C) left its temp file; its pid is gone.
        AtomicFile.removeStaleTemporaryFiles(of: output, anyWriter: false)
        try AtomicFile.write(to: output) { tmp in
            let writer = try DatasetFileWriter(path: tmp)
            let trainSplit = try writer.split(.train, rows: rows.train, width: train.width)
            let validSplit = try writer.split(.valid, rows: rows.valid, width: train.width)
            let testSplit = try writer.split(.test, rows: test.rows, width: train.width)
            // The training input fills /train, then (without a validation input) /valid.
            try convert(train, into: valid == nil ? [trainSplit, validSplit] : [trainSplit], converter, progress)
            if let valid { try convert(valid, into: [validSplit], converter, progress) }
            try convert(test, into: [testSplit], converter, progress)
            let f = writer.file
            try f.setAttribute("image_height", Int64(imageShape.height))
            try f.setAttribute("image_width", Int64(imageShape.width))
            try f.setAttribute("source", source)
            try f.setAttribute("binarization", binarization.attribute)
            switch binarization {
            // The UInt64's bits, as checkpoints store --seed: inspect reads them back unsigned.
            case .bernoulli(let seed), .dynamic(let seed): try f.setAttribute("binarization_seed", Int64(bitPattern: seed))
            case .threshold(let t): try f.setAttribute("binarization_threshold", t)
            case .none: break
            }
            try writer.close()
        }
    }

    /// The second pass: the input's rows, converted, fill `splits` in order.
    static func convert(_ input: InputSurvey, into splits: [SplitWriter], _ converter: PixelConverter,
                        _ progress: ImportProgress) throws {
        let reader = try input.spec.open()
        let width = input.width
        let chunk = InputSurvey.chunkRows(width: width)
        var buffer = [Double](repeating: 0, count: chunk * width)
        var done = 0
        var target = 0
        while true {
            let n = try buffer.withUnsafeMutableBufferPointer { try reader.read(upTo: chunk, into: $0.baseAddress!) }
            if n == 0 { break }
            guard done + n <= input.rows else { throw changed(input) }
            // The survey's findings (range, 0/1) are what the converter relies on: a file
            // rewritten between the passes must not reach it (a value of 300 traps in UInt8()).
            guard input.admits(buffer[0..<(n * width)]) else { throw changed(input) }
            try buffer.withUnsafeBufferPointer { b in
                for i in 0..<n {
                    while splits[target].nextRow == splits[target].rows { target += 1 }
                    let split = splits[target]
                    try split.appendRow { out in
                        converter.convert(b.baseAddress! + i * width, width: width, input: input, split: split.split,
                                          rowIndex: split.nextRow, into: out)
                    }
                }
            }
            done += n
            progress.update("converting \(input.spec): \(done)/\(input.rows) rows")
        }
        guard done == input.rows else { throw changed(input) }
        for s in splits { try s.finish() }
    }

    static func changed(_ input: InputSurvey) -> StorageError {
        StorageError(file: input.spec.description, problem: "changed while it was being converted (it had \(input.rows) rows when checked)",
                     fix: "run prepare-data again once nothing else writes the file", kind: .badData)
    }

    /// From the input's N×H×W shape, or --image-shape (which wins), or 28×28 for 784 pixels.
    static func imageShape(_ request: DataImportRequest, train: InputSurvey) throws -> ImageShape {
        if let given = request.imageShape {
            // Checked before `pixels`: H·W of two huge sides overflows (a trap, not an error).
            guard given.isWithinLimits else {
                throw StorageError(file: "--image-shape", problem: "\(given) is not a usable image shape: H and W must be positive with H·W at most \(SizeLimits.maxRowWidth) pixels",
                                   fix: "pass H and W with H·W = \(train.width)", kind: .usage)
            }
            guard given.pixels == train.width else {
                throw StorageError(file: "--image-shape", problem: "\(given) is \(given.pixels) pixels, but rows of \(train.spec) have \(train.width)",
                                   fix: "pass H and W with H·W = \(train.width)", kind: .usage)
            }
            return given
        }
        if let shape = train.imageShape { return shape }
        if train.width == 784 { return ImageShape(height: 28, width: 28) }
        throw StorageError(file: train.spec.description,
                           problem: "rows have \(train.width) values and the file does not say the image shape",
                           fix: "pass --image-shape HxW with H·W = \(train.width) (so `sample` draws pictures of the right shape)", kind: .usage)
    }

    /// The `source` attribute: where each split came from and how it was binarized.
    static func sourceDescription(_ request: DataImportRequest, _ inputs: ResolvedInputs, validRows: Int,
                                  binarization: StoredBinarization) -> String {
        if request.isFashionMNIST {
            // Unchanged wording for the default dataset (its files predate the other formats).
            let folder = request.sourceFolder ?? FashionMNISTImporter.defaultSourceFolder
            let how: String
            switch binarization {
            case .bernoulli: how = "Bernoulli-binarized"
            case .none: how = "stored as given (already 0/1)"
            case .threshold(let t): how = "thresholded at intensity \(t)"
            case .dynamic: how = "dynamic binarization (/train holds intensities)"
            }
            return "Fashion-MNIST (\(folder)), \(how)"
        }
        let valid = inputs.valid.map(\.description) ?? "last \(validRows) rows of \(inputs.train)"
        return "\(inputs.train.format.rawValue): train \(inputs.train), valid \(valid), test \(inputs.test); binarization: \(binarization.attribute)"
    }
}
