import BSVI
import BSVIParallel
import BSVITraining
import Foundation
import Testing

/// A finite gradient too large for Adam is skipped like a non-finite one: its square would
/// overflow the second moment to +∞, freezing that parameter for good, and the next checkpoint
/// would refuse the non-finite state far from the cause.
@Suite("Training step: gradients too large for Adam")
struct TrainingStepSkipTests {
    static let shape = ModelShape(inputDim: 20, latentDim: 3, hiddenDims: [8], activation: .tanh)
    static let batch = 4

    /// One vae step whose summed gradient is rescaled so its largest entry is `largest` after
    /// Adam's 1/B scale; the step's result and the parameters after it.
    static func step(largestScaledEntry largest: Float) -> (StepResult, before: [Float], after: FloatBuffer, adam: Adam) {
        let model = VAEModel(shape: shape, piCount: 0)
        let params = model.makeInitialParameters(seed: 5)
        let before = params.array
        let data = RandomStream(seed: 6, purpose: .sampling, 1)
        let x = FloatBuffer((0..<(batch * shape.inputDim)).map { data.uniform(UInt64($0)) < 0.4 ? 1 : 0 })
        let adam = Adam(parameterCount: model.vectorLength, learningRate: 0.001)
        let step = TrainingStep(model: model, settings: ObjectiveSettings(method: .vae, k: 1, refinement: RefinementSettings(steps: 0, learningRate: 0.1, rule: .sgd)), localBatch: batch, globalBatch: batch,
                                adam: adam)
        step.computeLocal(x: x.matrix(rows: batch, cols: shape.inputDim), exampleIDs: Array(0..<batch),
                          noise: NoiseSource(seed: 7, purpose: .trainingNoise, context: 1), params: params)
        let g = step.exchange.gradients
        let current = (0..<model.vectorLength).map { abs(g[$0]) }.max()!
        let factor = largest * Float(batch) / current
        for i in 0..<model.vectorLength { g[i] *= factor }
        let result = step.exchangeAndUpdate(params: params, comm: LocalCommunicator(), stopRequested: false)
        return (result, before, params, adam)
    }

    @Test("above Adam.largestSafeGradient the step is skipped with the reason; at a tenth of it the moments stay finite")
    func tooLargeIsSkipped() {
        let (skipped, before, after, adam) = Self.step(largestScaledEntry: 10 * Adam.largestSafeGradient)
        #expect(!skipped.applied && skipped.gradientTooLarge && skipped.nonFiniteRanks == 0)
        #expect(after.array == before && adam.step == 0)

        let (applied, _, afterApplied, adamApplied) = Self.step(largestScaledEntry: Adam.largestSafeGradient / 10)
        #expect(applied.applied && !applied.gradientTooLarge)
        #expect(adamApplied.step == 1)
        #expect(adamApplied.secondMoment.array.allSatisfy { $0.isFinite } && afterApplied.array.allSatisfy { $0.isFinite })
    }

    @Test("Adam's moments stay finite for gradients up to its bound and overflow beyond √FLT_MAX (why the bound exists)")
    func adamBound() {
        for (g, finite) in [(Adam.largestSafeGradient, true), (Float(1e21), false)] {
            let adam = Adam(parameterCount: 3, learningRate: 0.001)
            let p = FloatBuffer([1, 2, 3])
            let gradient: [Float] = [g, -g, 1]
            gradient.withUnsafeBufferPointer { adam.update(p, gradient: $0.baseAddress!) }
            #expect(adam.secondMoment.array.allSatisfy { $0.isFinite } == finite, "g = \(g)")
            #expect(p.array.allSatisfy { $0.isFinite })
        }
    }
}
