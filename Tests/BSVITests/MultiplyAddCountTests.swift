import BSVI
import Foundation
import Testing

/// ObjectiveSettings.usefulMultiplyAddsPerExample (the benchmark's "useful work") against the
/// matrix products BatchObjective.accumulate actually needs, counted pass by pass:
///   an MLP forward of one row costs M = Σ_l n_l·n_{l+1} (multiplyAddsPerRow), its weight
///   gradients M, back-propagation to the input M, and back-propagation that stops at the
///   first hidden layer (no input gradient) M − M₀ with M₀ = n₀·n₁.
@Suite("Multiply-add accounting of the objectives")
struct MultiplyAddCountTests {
    static let model = VAEModel(shape: ModelShape(inputDim: 12, latentDim: 3, hiddenDims: [7, 5], activation: .tanh))
    static let refinement = RefinementSettings(steps: 3, learningRate: 0.01, rule: .sgd)

    static var e: Int { model.encoder.multiplyAddsPerRow }
    static var e0: Int { model.encoder.sizes[0] * model.encoder.sizes[1] }
    static var g: Int { model.decoder.multiplyAddsPerRow }
    static var g0: Int { model.decoder.sizes[0] * model.decoder.sizes[1] }
    /// Encoder: forward, back-propagation from λ₀ down to the first hidden layer, weight gradients.
    static var encoder: Int { e + (e - e0) + e }

    @Test("multiplyAddsPerRow is Σ n_l·n_{l+1}")
    func perRow() {
        #expect(Self.e == 12 * 7 + 7 * 5 + 5 * 6)
        #expect(Self.g == 3 * 5 + 5 * 7 + 7 * 12)
    }

    @Test("vae and iwae: encoder plus forward, back-propagation to z and weight gradients per sample")
    func sampledMethods() {
        for n in [1, 3] {
            let vae = ObjectiveSettings(method: .vae, k: 1, vaeSamples: n, refinement: Self.refinement)
            #expect(vae.usefulMultiplyAddsPerExample(model: Self.model) == Self.encoder + n * 3 * Self.g)
            let iwae = ObjectiveSettings(method: .iwae, k: n, refinement: Self.refinement)
            #expect(iwae.usefulMultiplyAddsPerExample(model: Self.model) == Self.encoder + n * 3 * Self.g)
        }
    }

    @Test("svi and bsvi: the decoder's back-propagation at λ_k (needed for its hidden-layer weight gradients) is counted",
          arguments: [0, 1, 4])
    func refinedMethods(k: Int) {
        // Steps 0…k−1: forward + back-propagation to z. Step k: forward, back-propagation to
        // the first hidden layer (to z when k = 0: the encoder needs ∂/∂z at λ₀).
        let g = Self.g, g0 = Self.g0
        let lastBackward = k == 0 ? g : g - g0
        let refinement = k * 2 * g + g + lastBackward
        let svi = ObjectiveSettings(method: .svi, k: k, refinement: Self.refinement)
        let bsvi = ObjectiveSettings(method: .bsvi, k: k, refinement: Self.refinement)
        #expect(svi.usefulMultiplyAddsPerExample(model: Self.model) == Self.encoder + refinement + g)
        #expect(bsvi.usefulMultiplyAddsPerExample(model: Self.model) == Self.encoder + refinement + (k + 1) * g)
    }
}
