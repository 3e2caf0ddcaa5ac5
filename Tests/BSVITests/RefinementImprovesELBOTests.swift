import BSVI
import Foundation
import Testing

/// SVI refinement with the decoder fixed raises the ELBO above the encoder's λ₀ on a small
/// structured binary data set (64 examples of 16 pixels from 3 noisy prototypes), both at the
/// random initialization and after a brief vae training (where the encoder is already good, the
/// amortization gap is small, and only small plain steps beat the one-sample gradient noise —
/// the effect DESIGN.md §2 warns about).
@Suite("SVI refinement improves the ELBO", .serialized)
struct RefinementImprovesELBOTests {
    static let examples = 64
    static let dimension = 16

    /// A briefly trained model, shared by the tests of this suite (built once).
    final class Trained: @unchecked Sendable {
        let model: VAEModel
        let params: FloatBuffer
        let initialParams: FloatBuffer
        let data: HostMatrix
        let ids: [Int]
        let initialBound: Double
        let finalBound: Double

        init() {
            model = VAEModel(shape: ModelShape(inputDim: RefinementImprovesELBOTests.dimension, latentDim: 2,
                                               hiddenDims: [8], activation: .tanh))
            params = model.makeInitialParameters(seed: 3)
            initialParams = model.makeInitialParameters(seed: 3)
            data = syntheticBinaryData(examples: RefinementImprovesELBOTests.examples,
                                       dimension: RefinementImprovesELBOTests.dimension, seed: 4)
            ids = Array(0..<RefinementImprovesELBOTests.examples)
            let objective = BatchObjective(model: model,
                                           settings: ObjectiveSettings(method: .vae, k: 1,
                                                                       refinement: RefinementSettings(steps: 0, learningRate: 0, rule: .sgd)),
                                           batchCapacity: ids.count)
            let adam = Adam(parameterCount: model.vectorLength, learningRate: 0.02)
            let grads = FloatBuffer(count: model.vectorLength)
            var first = 0.0, last = 0.0
            let steps = 200
            for step in 0..<steps {
                grads.zero()
                let stats = objective.accumulate(x: data.matrix, exampleIDs: ids,
                                                 noise: NoiseSource(seed: 3, purpose: .trainingNoise, context: UInt64(step)),
                                                 params: params, grads: grads)
                if step < 10 { first += stats.bound / 10 }
                if step >= steps - 10 { last += stats.bound / 10 }
                adam.update(params, gradient: grads.base, gradientScale: -1 / Float(ids.count))
            }
            initialBound = first
            finalBound = last
        }
    }

    static let trained = Trained()

    struct Case: Sendable, CustomTestStringConvertible {
        let trained: Bool
        let refinement: RefinementSettings
        var testDescription: String {
            "\(trained ? "trained" : "initial") model, \(refinement.rule) η=\(refinement.learningRate) k=\(refinement.steps)"
        }
    }

    static let cases = [
        Case(trained: false, refinement: RefinementSettings(steps: 20, learningRate: 0.02, rule: .sgd)),
        Case(trained: false, refinement: RefinementSettings(steps: 10, learningRate: 0.05, rule: .adam, momentum: 0.9)),
        Case(trained: false, refinement: RefinementSettings(steps: 10, learningRate: 0.01, rule: .momentum, momentum: 0.5,
                                                            clipNorm: 20)),
        Case(trained: true, refinement: RefinementSettings(steps: 40, learningRate: 0.005, rule: .sgd)),
    ]

    @Test("brief vae training raised the bound (the decoder is not random)")
    func trainingWorked() {
        let t = Self.trained
        #expect(t.finalBound > t.initialBound, "bound went from \(t.initialBound) to \(t.finalBound)")
    }

    @Test("ELBO(λ_k) > ELBO(λ₀) on average, consistently across examples, with common noise", arguments: cases)
    func refinementRaisesELBO(testCase: Case) {
        let t = Self.trained
        let refinement = testCase.refinement
        let params = testCase.trained ? t.params : t.initialParams
        let n = Self.examples
        let sampler = ImportanceSampler(model: t.model, samples: 1, batchCapacity: n, refinement: refinement,
                                        chunk: 100, elboSamples: 60)
        let encoder = MLPWorkspace(mlp: t.model.encoder, capacity: n)
        encoder.forward(t.data.matrix, rows: 0..<n, params: params)
        let lambda0 = HostMatrix(rows: n, cols: 4)
        lambda0.matrix.copy(from: encoder.output)
        let lambdaK = HostMatrix(rows: n, cols: 4, values: lambda0.buffer.array)
        SVIRefinement(model: t.model, settings: refinement, batchCapacity: n)
            .run(lambdaK.matrix, x: t.data.matrix, ids: t.ids, noise: .evaluationRefinement(seed: 5), params: params)

        // Per-example ELBOs, each with 60 samples and the same noise at λ₀ and λ_k.
        let noise = NoiseSource(seed: 6, purpose: .evaluationNoise, context: 1)
        var gains = [Double]()
        for i in 0..<n {
            let xi = HostMatrix(rows: 1, cols: Self.dimension, values: t.data.row(i))
            let l0 = HostMatrix(rows: 1, cols: 4, values: lambda0.row(i))
            let lk = HostMatrix(rows: 1, cols: 4, values: lambdaK.row(i))
            let e0 = sampler.monteCarloELBO(x: xi.matrix, ids: [i], lambda: l0.matrix, noise: noise, params: params)
            let ek = sampler.monteCarloELBO(x: xi.matrix, ids: [i], lambda: lk.matrix, noise: noise, params: params)
            gains.append(ek - e0)
        }
        let mean = gains.reduce(0, +) / Double(n)
        let sd = (gains.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(n - 1)).squareRoot()
        #expect(mean > 0, "mean ELBO gain \(mean)")
        // The gain is systematic: its mean exceeds 3 standard errors over the examples.
        #expect(mean > 3 * sd / Double(n).squareRoot(), "mean gain \(mean), sd \(sd)")
        if ProcessInfo.processInfo.environment["BSVI_TEST_VERBOSE"] != nil {
            print("[refinement] \(testCase.testDescription): mean gain \(mean), se \(sd / Double(n).squareRoot())")
        }
    }

    @Test("evaluate reports ELBO(λ_k) > ELBO(λ₀) with its own noise")
    func evaluateReportsGain() {
        let t = Self.trained
        let refinement = Self.cases[0].refinement
        let sampler = ImportanceSampler(model: t.model, samples: 1, batchCapacity: Self.examples, refinement: refinement,
                                        chunk: 100, elboSamples: 60)
        let sums = sampler.evaluate(x: t.data.matrix, exampleIDs: t.ids, seed: 5, params: t.initialParams).sums
        #expect(sums.elboRefined > sums.elboInitial,
                "evaluate: ELBO(λ₀) \(sums.elboInitial), ELBO(λ_k) \(sums.elboRefined)")
    }

    @Test("zero steps or η = 0 leave λ and the ELBO unchanged")
    func noRefinementIsIdentity() {
        let t = Self.trained
        for refinement in [RefinementSettings(steps: 0, learningRate: 0.05, rule: .sgd),
                           RefinementSettings(steps: 5, learningRate: 0, rule: .sgd)] {
            let sampler = ImportanceSampler(model: t.model, samples: 1, batchCapacity: Self.examples,
                                            refinement: refinement, elboSamples: 20)
            let sums = sampler.evaluate(x: t.data.matrix, exampleIDs: t.ids, seed: 5, params: t.params).sums
            #expect(sums.elboRefined == sums.elboInitial)
        }
    }
}
