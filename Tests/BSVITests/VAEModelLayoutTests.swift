import BSVI
import Foundation
import Testing

/// The flat parameter layout of the VAE and its deterministic Glorot initialization.
@Suite("VAE model layout and initialization")
struct VAEModelLayoutTests {
    @Test("encoder x → hidden → 2d, decoder d → reversed hidden → x, then π logits; each tensor on a cache line")
    func layout() {
        let shape = ModelShape(inputDim: 12, latentDim: 3, hiddenDims: [7, 5], activation: .relu)
        let model = VAEModel(shape: shape, piCount: 4)
        #expect(model.encoder.sizes == [12, 7, 5, 6])
        #expect(model.decoder.sizes == [3, 5, 7, 12])
        let names = model.layout.tensors.map(\.name)
        #expect(names == ["encoder/dense_0/kernel", "encoder/dense_0/bias", "encoder/dense_1/kernel", "encoder/dense_1/bias",
                          "encoder/dense_2/kernel", "encoder/dense_2/bias", "decoder/dense_0/kernel", "decoder/dense_0/bias",
                          "decoder/dense_1/kernel", "decoder/dense_1/bias", "decoder/dense_2/kernel", "decoder/dense_2/bias",
                          "pi/logits"])
        // In order, each at the first multiple of 16 floats (64 bytes) after the one before it.
        var end = 0
        for t in model.layout.tensors {
            #expect(t.offset % 16 == 0 && t.offset >= end && t.offset - end < 16, "\(t.name) at \(t.offset), the one before ends at \(end)")
            end = t.offset + t.count
        }
        #expect(end == model.vectorLength)
        let expectedCount = (12 * 7 + 7) + (7 * 5 + 5) + (5 * 6 + 6) + (3 * 5 + 5) + (5 * 7 + 7) + (7 * 12 + 12) + 4
        #expect(model.layout.parameterCount == expectedCount)
        #expect(model.layout.gaps.map(\.count).reduce(0, +) == model.vectorLength - expectedCount)
        #expect(model.layout.gaps.first == 84..<96)  // after encoder/dense_0/kernel (12 × 7), before its bias
        #expect(model.layout.tensor(named: "decoder/dense_1/kernel")?.shape == [5, 7])
        #expect(model.piLogits?.count == 4)
        #expect(VAEModel(shape: shape).piLogits == nil)
        #expect(model.encoder.multiplyAddsPerRow == 12 * 7 + 7 * 5 + 5 * 6)
    }

    @Test("packed drops the gaps in layout order, unpacked puts the values back with zeros between; zeroGaps clears only the gaps")
    func packing() {
        let model = VAEModel(shape: ModelShape(inputDim: 12, latentDim: 3, hiddenDims: [7, 5], activation: .relu), piCount: 4)
        let layout = model.layout
        let vector = (0..<layout.vectorLength).map { Float($0) + 0.5 }
        let packed = layout.packed(vector)
        #expect(packed == layout.tensors.flatMap { t in t.range.map { Float($0) + 0.5 } })
        let back = layout.unpacked(packed)
        let inGap = Set(layout.gaps.flatMap { Array($0) })
        #expect(!inGap.isEmpty)
        #expect((0..<layout.vectorLength).allSatisfy { back[$0] == (inGap.contains($0) ? 0 : vector[$0]) })
        let cleared = FloatBuffer(vector)
        layout.zeroGaps(cleared.base)
        #expect(cleared.array == back)
    }

    @Test("the default model: the decoder's output kernel at float 267,744, on a cache line (packed end to end, 267,700: 16 bytes into one)")
    func defaultModelAlignment() {
        let model = VAEModel(shape: ModelShape(inputDim: 784, latentDim: 50, hiddenDims: [200, 200], activation: .tanh))
        let output = model.decoder.kernels[model.decoder.layerCount - 1]
        #expect(output.shape == [200, 784] && output.offset == 267_744)
        #expect(model.layout.tensors.allSatisfy { $0.offset % 16 == 0 })
        // 425,284 parameters; 44 floats of gaps.
        #expect(model.layout.parameterCount == 425_284 && model.vectorLength == 425_328)
    }

    @Test("piCount and rows per example follow the method")
    func settingsShapes() {
        let r = RefinementSettings(steps: 4, learningRate: 0.01, rule: .sgd)
        #expect(ObjectiveSettings(method: .bsvi, k: 4, pi: .learned, refinement: r).piCount == 5)
        #expect(ObjectiveSettings(method: .bsvi, k: 4, pi: .uniform, refinement: r).piCount == 0)
        #expect(ObjectiveSettings(method: .svi, k: 4, pi: .learned, refinement: r).piCount == 0)
        #expect(ObjectiveSettings(method: .bsvi, k: 4, refinement: r).rowsPerExample == 5)
        // svi keeps λ₀'s and λ_k's samples only (one block when k = 0: they are the same).
        #expect(ObjectiveSettings(method: .svi, k: 4, refinement: r).rowsPerExample == 2)
        #expect(ObjectiveSettings(method: .svi, k: 0, refinement: r).rowsPerExample == 1)
        #expect(ObjectiveSettings(method: .bsvi, k: 0, refinement: r).rowsPerExample == 1)
        #expect(ObjectiveSettings(method: .iwae, k: 4, refinement: r).rowsPerExample == 4)
        #expect(ObjectiveSettings(method: .vae, k: 4, vaeSamples: 2, refinement: r).rowsPerExample == 2)
    }

    @Test("Glorot-uniform kernels, zero biases and π logits, a pure function of the seed")
    func initialization() {
        let model = VAEModel(shape: ModelShape(inputDim: 40, latentDim: 4, hiddenDims: [30], activation: .tanh), piCount: 3)
        let a = model.makeInitialParameters(seed: 7), b = model.makeInitialParameters(seed: 7)
        let c = model.makeInitialParameters(seed: 8)
        #expect(a.array == b.array)
        #expect(a.array != c.array)
        for mlp in [model.encoder, model.decoder] {
            for l in 0..<mlp.layerCount {
                let k = mlp.kernels[l]
                let limit = (6.0 / Double(k.shape[0] + k.shape[1])).squareRoot()
                let values = (0..<k.count).map { Double(a[k.offset + $0]) }
                #expect(values.allSatisfy { abs($0) <= limit })
                // Uniform(−limit, limit): mean 0, variance limit²/3, within 5 standard errors.
                let n = Double(values.count)
                let mean = values.reduce(0, +) / n
                let variance = values.reduce(0) { $0 + $1 * $1 } / n
                #expect(abs(mean) <= 5 * limit / (3 * n).squareRoot())
                #expect(abs(variance - limit * limit / 3) <= 5 * limit * limit * (4.0 / 45 / n).squareRoot())
                #expect((0..<mlp.biases[l].count).allSatisfy { a[mlp.biases[l].offset + $0] == 0 })
            }
        }
        // Encoder and decoder layers of equal shape get different values.
        let square = VAEModel(shape: ModelShape(inputDim: 10, latentDim: 5, hiddenDims: [10], activation: .tanh))
        let s = square.makeInitialParameters(seed: 7)
        let e0 = square.encoder.kernels[0], d1 = square.decoder.kernels[1]
        #expect(e0.shape == d1.shape)
        #expect((0..<e0.count).map { s[e0.offset + $0] } != (0..<d1.count).map { s[d1.offset + $0] })
        let pi = model.piLogits!
        #expect((0..<pi.count).allSatisfy { a[pi.offset + $0] == 0 })
    }
}
