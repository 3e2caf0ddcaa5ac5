import ArgumentParser
import BSVI
import BSVIParallel
import BSVIStorage
import BSVITraining
import Foundation

struct Sample: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a PNG grid of decoder means for prior samples, optionally with test reconstructions from λ₀ and refined λ_k.")

    @Argument(help: "Checkpoint file (only the model part is needed).") var checkpoint: String
    @Option(help: "Output PNG file.") var out: String
    @Option(help: "Grid of prior samples: rows.") var rows: Int = 8
    @Option(help: "Grid columns.") var columns: Int = 10
    @Option(help: "Also show N data images, their reconstruction from λ₀ and from the refined λ_k (three rows each).")
    var reconstructions: Int = 0
    @Option(help: "Dataset for --reconstructions.") var data: String = RunConfiguration.defaultDataPath
    @Option(help: "Split for --reconstructions.") var split: DataSplit = .test
    @Option(help: "SVI steps for the refined reconstructions (default: the training's k for svi/bsvi, at least 1; 5 for vae/iwae; bsvi's default k for a file without /training).") var refineSteps: Int?
    @Option(help: "Image height × width as HxW (default: from --data, else a square).") var imageSize: String?
    @Option(help: "Seed of the prior samples.") var seed: UInt64 = 1

    func run() throws {
        do {
            try checkGridOptions()
            // --data is read for the image shape even without reconstructions.
            try OutputFile.checkCanCreate(out, flag: "--out", inputs: [checkpoint, data])
            let ckpt = try CheckpointFile.read(checkpoint)
            if let warning = setAsideWarning(checkpoint, ckpt) { printError(warning) }
            let model = ckpt.model
            let params = FloatBuffer(ckpt.parameters)
            let image = try imageShape(inputDim: model.shape.inputDim)
            let toReconstruct = try rowsToReconstruct(inputDim: model.shape.inputDim)
            let cols = max(columns, toReconstruct?.count ?? 0)
            var grid = SampleGrid(imageHeight: image.height, imageWidth: image.width, columns: cols)
            if rows > 0 { appendPriorSamples(to: &grid, model: model, params: params) }
            if let (ds, count) = toReconstruct {
                try appendReconstructions(of: count, from: ds, to: &grid, model: model, params: params, checkpointConfig: ckpt.configurationJSON)
            }
            let reconstructed = toReconstruct?.count ?? 0  // at most the split's rows
            try PNGFile.writeGray(grid.render(), width: grid.pixelWidth, height: grid.pixelHeight, to: out)
            print("wrote \(out): \(grid.pixelWidth)×\(grid.pixelHeight) pixels, \(rows) rows of prior samples"
                  + (reconstructed > 0 ? ", \(reconstructed) reconstructions (data, λ₀, λ_k rows)" : ""))
        } catch {
            throw failure(error)
        }
    }

    /// --rows, --columns, --reconstructions and --refine-steps, before any file is opened.
    func checkGridOptions() throws {
        // Bounds that keep the grid's sizes far from overflow (and from a PNG no viewer opens).
        guard (0...Self.maxGridSide).contains(rows), (1...Self.maxGridSide).contains(columns),
              (0...Self.maxGridSide).contains(reconstructions), rows + reconstructions > 0 else {
            throw ValidationError("need 0 ≤ --rows ≤ \(Self.maxGridSide), 1 ≤ --columns ≤ \(Self.maxGridSide), 0 ≤ --reconstructions ≤ \(Self.maxGridSide), and something to draw")
        }
        // The same bound as eval's: a count past it is a typo, not hours of refinement to wait out.
        if let r = refineSteps, !(0...EvaluationSection.maxRefinementSteps).contains(r) {
            throw ValidationError("--refine-steps must be between 0 and \(EvaluationSection.maxRefinementSteps), got \(r)")
        }
    }

    /// The shape to draw the model's `dim` pixels in: --image-size, else what --data records when it
    /// fits, else a square (with a warning when --data records another shape).
    func imageShape(inputDim dim: Int) throws -> ImageShape {
        // What --data records, read once: the shape to draw, or the mistake to name.
        let recorded = BinaryDataset.recordedImageShape(at: data)
        if let s = imageSize {
            guard let shape = ImageShape(parsing: s), shape.pixels == dim else {
                throw ValidationError("--image-size \(s) must be HxW with H, W ≥ 1 and H·W = input_dim \(dim)")
            }
            return shape
        }
        if let shape = recorded, shape.isWithinLimits, shape.pixels == dim { return shape }
        let side = Int(Double(dim).squareRoot().rounded())
        // A --data of other images is the likelier mistake than a missing --image-size.
        if side * side == dim, let other = recorded {
            printError("warning: \(data) says its images are \(other), which does not fit the model's \(dim) pixels; drawing \(side)×\(side) images (pass --image-size HxW to choose)")
        }
        guard side * side == dim else {
            throw ValidationError("input_dim \(dim) is not square"
                                  + (recorded.map { ", and \(data) holds \($0) images, not this model's; pass the model's dataset with --data or" } ?? ";")
                                  + " pass --image-size HxW")
        }
        return ImageShape(height: side, width: side)
    }

    /// The rows to reconstruct, at most the split's: known before the grid's width is. nil
    /// without --reconstructions (then --data is not opened as a dataset).
    func rowsToReconstruct(inputDim dim: Int) throws -> (dataset: BinaryDataset, count: Int)? {
        guard reconstructions > 0 else { return nil }
        let ds = try BinaryDataset(path: data)
        let (n, w) = try ds.shape(of: split)
        guard w == dim else {
            throw StorageError(file: data, object: "/\(split.rawValue)", problem: "rows have \(w) pixels but the model's input_dim is \(dim)")
        }
        return (ds, min(reconstructions, n))
    }

    /// `rows` rows of decoder means for prior samples drawn from --seed.
    func appendPriorSamples(to grid: inout SampleGrid, model: VAEModel, params: FloatBuffer) {
        let cols = grid.columns
        let n = rows * cols, d = model.shape.latentDim
        let z = SampleGrid.priorSamples(count: n, latentDim: d, seed: seed)
        let means = SampleGrid.decoderMeans(model: model, params: params, z: z.matrix(rows: n, cols: d))
        for r in 0..<rows { grid.appendRow(Array(means[(r * cols)..<((r + 1) * cols)])) }
    }

    /// Three rows: the first `count` images of --split, their decoder means from λ₀ and from the
    /// refined λ_k (the training's refinement unless --refine-steps says otherwise).
    func appendReconstructions(of count: Int, from ds: BinaryDataset, to grid: inout SampleGrid, model: VAEModel, params: FloatBuffer,
                               checkpointConfig: String?) throws {
        let dim = model.shape.inputDim
        let xb = try ds.readAll(split, rows: 0..<count)
        let x = xb.matrix(rows: count, cols: dim)
        var refinement = RunConfiguration.evaluationRefinement(checkpointConfig: checkpointConfig)
        if let r = refineSteps { refinement.steps = r }
        let codes = SampleGrid.reconstructionCodes(model: model, params: params, x: x, refinement: refinement, seed: seed)
        let d = model.shape.latentDim
        grid.appendRow((0..<count).map { Array(UnsafeBufferPointer(start: x.row($0), count: dim)) })
        grid.appendRow(SampleGrid.decoderMeans(model: model, params: params, z: codes.initial.matrix(rows: count, cols: d)))
        grid.appendRow(SampleGrid.decoderMeans(model: model, params: params, z: codes.refined.matrix(rows: count, cols: d)))
    }

    static let maxGridSide = 1000
}
