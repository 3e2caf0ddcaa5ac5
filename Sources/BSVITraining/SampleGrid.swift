import BSVI
import Foundation

/// Pictures of a model: decoder means (pixel probabilities) for prior samples, and rows of
/// data images with their reconstructions from λ₀ and from the refined λ_k, tiled into one
/// 8-bit grayscale grid with one-pixel white gaps.
public struct SampleGrid {
    public let imageHeight: Int
    public let imageWidth: Int
    public let columns: Int
    public private(set) var tiles: [[Float]] = []

    public init(imageHeight: Int, imageWidth: Int, columns: Int) {
        self.imageHeight = imageHeight
        self.imageWidth = imageWidth
        self.columns = columns
    }

    /// Appends a row of images (values in [0, 1]); short rows are padded with blank tiles
    /// (probability 0: white, as `render` draws it).
    public mutating func appendRow(_ images: [[Float]]) {
        precondition(images.count <= columns && images.allSatisfy { $0.count == imageHeight * imageWidth })
        tiles += images + Array(repeating: [Float](repeating: 0, count: imageHeight * imageWidth), count: columns - images.count)
    }

    public var rows: Int { tiles.count / columns }
    public var pixelWidth: Int { columns * (imageWidth + 1) + 1 }
    public var pixelHeight: Int { rows * (imageHeight + 1) + 1 }

    /// Dark ink on white: pixel = 255·(1 − p).
    public func render() -> [UInt8] {
        var out = [UInt8](repeating: 255, count: pixelWidth * pixelHeight)
        for (t, tile) in tiles.enumerated() {
            let top = (t / columns) * (imageHeight + 1) + 1, left = (t % columns) * (imageWidth + 1) + 1
            for y in 0..<imageHeight {
                for x in 0..<imageWidth {
                    let p = min(max(tile[y * imageWidth + x], 0), 1)
                    out[(top + y) * pixelWidth + left + x] = UInt8((1 - p) * 255 + 0.5)
                }
            }
        }
        return out
    }

    /// Decoder means sigmoid(logits(z)) for each row of `z` (n × latent).
    public static func decoderMeans(model: VAEModel, params: FloatBuffer, z: Matrix) -> [[Float]] {
        let work = MLPWorkspace(mlp: model.decoder, capacity: z.rows)
        work.forward(z, rows: 0..<z.rows, params: params)
        return (0..<z.rows).map { r in (0..<model.shape.inputDim).map { sigmoid(work.output[r, $0]) } }
    }

    /// n draws from the prior N(0, I).
    public static func priorSamples(count n: Int, latentDim d: Int, seed: UInt64) -> FloatBuffer {
        let z = FloatBuffer(count: n * d)
        for i in 0..<n {
            RandomStream(seed: seed, purpose: .sampling, UInt64(i)).fillNormals(z.base + i * d, count: d)
        }
        return z
    }

    /// Means of the encoder's λ₀ and of the refined λ_k for the rows of `x`, as latent codes.
    public static func reconstructionCodes(model: VAEModel, params: FloatBuffer, x: Matrix, refinement: RefinementSettings,
                                           seed: UInt64) -> (initial: FloatBuffer, refined: FloatBuffer) {
        let n = x.rows, d = model.shape.latentDim
        let encoder = MLPWorkspace(mlp: model.encoder, capacity: n)
        encoder.forward(x, rows: 0..<n, params: params)
        let lambda = FloatBuffer(count: n * 2 * d)
        let lam = lambda.matrix(rows: n, cols: 2 * d)
        lam.copy(from: encoder.output.rows(0..<n))
        let initial = FloatBuffer(count: n * d), refined = FloatBuffer(count: n * d)
        for i in 0..<n { (initial.base + i * d).update(from: lam.row(i), count: d) }
        SVIRefinement(model: model, settings: refinement, batchCapacity: n)
            .run(lam, x: x, ids: Array(0..<n), noise: .evaluationRefinement(seed: seed), params: params)
        for i in 0..<n { (refined.base + i * d).update(from: lam.row(i), count: d) }
        return (initial, refined)
    }
}
