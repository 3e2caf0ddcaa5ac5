import BSVI
import Foundation
import GoldenSupport
import Testing

/// Golden values of the objectives and the evaluator on fixed inputs: one bsvi batch with
/// learned π, one svi batch, and one evaluation with the refined proposal. They are the
/// bit-exact regression anchor of the numerics (a resumed run continues from the same bits only
/// if a step computes the same bits), and the proof that a refactor changed nothing: every
/// statistical and finite-difference test would pass a change of summation order or of the
/// refinement's noise slots, these would not.
///
/// Recorded 2026-12-01, from the code as it was before the refinement loop was made one routine
/// (commit e0473de), by printing the values this file computes (BSVI_RECORD_GOLDEN=1), and
/// re-recorded 2026-12-05, when tanh became a rational function (CKernels/elementwise.inc):
/// every value moved in its last digits (bounds by ≤ 2e-8 relative), as a change of tanh by a few
/// units in the last place must; the portable ones with OPENBLAS_CORETYPE=Prescott. Re-recorded
/// again the same night (stop 60), when the training's likelihood pass took the evaluator's
/// product form (Σ log1p(e) as log Π (1 + e)): the sums of log p(x|z) moved by ≤ 2e-8 relative,
/// and with them bsvi's importance weights and gradient; svi's gradient and the evaluation (whose
/// pass was already in that form) kept their bits. The AVX2 and AVX-512 paths give the same bits
/// (one golden); the portable path leaves the products to OpenBLAS, whose rounding depends on the
/// OpenBLAS core, so its golden holds only on the core it was recorded with (`GoldenPaths`).
@Suite("Objectives and evaluation: golden values")
struct ObjectiveGoldenTests {
    static let shape = ModelShape(inputDim: 24, latentDim: 3, hiddenDims: [10, 7], activation: .tanh)
    static let ids = [4, 17, 2, 31, 9]
    static let noise = NoiseSource(seed: 11, purpose: .trainingNoise, context: 2)

    static func data() -> HostMatrix {
        var values = TestValues(seed: 21)
        return HostMatrix(rows: ids.count, cols: shape.inputDim, values: values.bits(ids.count * shape.inputDim, probabilityOfOne: 0.4))
    }

    /// What one batch of an objective produced, as exact numbers.
    struct ObjectiveResult: Equatable, CustomStringConvertible {
        var gradientFingerprint: UInt64
        var bound: Double
        var elboInitial: Double
        var elboRefined: Double
        /// The gradient at `GoldenIndex.sampled` (first encoder weight, last decoder bias, every π logit).
        var sampledGradient: [Float]

        var description: String {
            "ObjectiveResult(gradientFingerprint: 0x\(String(gradientFingerprint, radix: 16)), bound: \(bound), "
                + "elboInitial: \(elboInitial), elboRefined: \(elboRefined), sampledGradient: \(sampledGradient))"
        }
    }

    static func sampledIndices(_ model: VAEModel) -> [Int] {
        let lastBias = model.decoder.biases[model.decoder.layerCount - 1]
        let pi = model.piLogits.map { Array($0.range) } ?? []
        return [model.encoder.kernels[0].offset, lastBias.offset + lastBias.count - 1] + pi
    }

    static func objective(_ settings: ObjectiveSettings, on path: KernelPath) -> ObjectiveResult {
        let model = VAEModel(shape: shape, piCount: settings.piCount)
        let params = randomParameters(model: model, seed: 13, scale: 0.6)
        let x = data()
        let grads = FloatBuffer(count: model.vectorLength)
        let stats = onPath(path) {
            BatchObjective(model: model, settings: settings, batchCapacity: 8)
                .accumulate(x: x.matrix, exampleIDs: ids, noise: noise, params: params, grads: grads)
        }
        return ObjectiveResult(gradientFingerprint: fingerprint(model.layout.packed(grads.array)), bound: stats.bound,
                               elboInitial: stats.elboInitial, elboRefined: stats.elboRefined,
                               sampledGradient: sampledIndices(model).map { grads[$0] })
    }

    static let bsvi = ObjectiveSettings(method: .bsvi, k: 3, pi: .learned,
                                        refinement: RefinementSettings(steps: 3, learningRate: 0.05, rule: .adam, momentum: 0.9, clipNorm: 4))
    static let svi = ObjectiveSettings(method: .svi, k: 2,
                                       refinement: RefinementSettings(steps: 2, learningRate: 0.02, rule: .momentum, momentum: 0.7))

    static let bsviGolden: [GoldenPaths.Kind: ObjectiveResult] = [
        .vector: ObjectiveResult(gradientFingerprint: 0x86d3f3642e2de9d6, bound: -98.79487800598145,
                                 elboInitial: -104.84033119678497, elboRefined: -99.43937712907791,
                                 sampledGradient: [-0.14474986, -0.46571678, -0.69569117, -0.7988074, 0.7139497, 0.78054833]),
        .portable: ObjectiveResult(gradientFingerprint: 0x1487ca02691707a7, bound: -98.79487609863281,
                                   elboInitial: -104.84032881259918, elboRefined: -99.4393744468689,
                                   sampledGradient: [-0.14474979, -0.46571684, -0.6956904, -0.7988074, 0.7139492, 0.78054833]),
    ]
    static let sviGolden: [GoldenPaths.Kind: ObjectiveResult] = [
        .vector: ObjectiveResult(gradientFingerprint: 0x10905f276f45e838, bound: -100.01125717163086,
                                 elboInitial: -104.84033119678497, elboRefined: -103.11473888158798,
                                 sampledGradient: [-0.14474986, -0.5109087]),
        .portable: ObjectiveResult(gradientFingerprint: 0x98cfb55184799434, bound: -100.01125717163086,
                                   elboInitial: -104.84032881259918, elboRefined: -103.11473834514618,
                                   sampledGradient: [-0.14474979, -0.5109088]),
    ]

    @Test("bsvi with learned π (k = 3, Adam-style refinement with a clip): gradient and sums", arguments: GoldenPaths.testable)
    func bsviBatch(path: KernelPath) {
        let result = Self.objective(Self.bsvi, on: path)
        GoldenPaths.record("bsvi \(path)", result)
        #expect(result == Self.bsviGolden[GoldenPaths.kind(path)])
    }

    @Test("svi (k = 2, momentum refinement): gradient and sums", arguments: GoldenPaths.testable)
    func sviBatch(path: KernelPath) {
        let result = Self.objective(Self.svi, on: path)
        GoldenPaths.record("svi \(path)", result)
        #expect(result == Self.sviGolden[GoldenPaths.kind(path)])
    }

    /// What one evaluation produced, as exact numbers.
    struct EvaluationResult: Equatable, CustomStringConvertible {
        var bound: Double
        var elboInitial: Double
        var elboRefined: Double

        var description: String {
            "EvaluationResult(bound: \(bound), elboInitial: \(elboInitial), elboRefined: \(elboRefined))"
        }
    }

    static let evaluationGolden: [GoldenPaths.Kind: EvaluationResult] = [
        .vector: EvaluationResult(bound: -91.69121591307899, elboInitial: -98.7404359181722,
                                  elboRefined: -94.09631506270831),
        // Re-recorded 2026-12-02: on the portable path the sampler now evaluates each example on
        // its own (its samples 7 rows per pass here instead of 7 × 5, its encoder pass and
        // refinement 1 row instead of 5), and OpenBLAS rounds a product's rows differently for
        // other row counts; the vector paths' bits did not move.
        .portable: EvaluationResult(bound: -91.69121649888989, elboInitial: -98.74043669303258,
                                    elboRefined: -94.09631381101079),
    ]

    @Test("evaluation from the refined proposal (4 momentum steps): log p̂, ELBO(λ₀), ELBO(λ_k)", arguments: GoldenPaths.testable)
    func evaluation(path: KernelPath) {
        let model = VAEModel(shape: Self.shape)
        let params = randomParameters(model: model, seed: 14, scale: 0.6)
        let x = Self.data()
        let sampler = ImportanceSampler(model: model, samples: 30, batchCapacity: Self.ids.count,
                                        refinement: RefinementSettings(steps: 4, learningRate: 0.05, rule: .momentum, momentum: 0.8),
                                        proposal: .refined, chunk: 7, elboSamples: 9)
        let sums = onPath(path) { sampler.evaluate(x: x.matrix, exampleIDs: Self.ids, seed: 15, params: params) }.sums
        let result = EvaluationResult(bound: sums.bound, elboInitial: sums.elboInitial,
                                      elboRefined: sums.elboRefined)
        GoldenPaths.record("evaluation \(path)", result)
        #expect(sums.examples == Self.ids.count)
        #expect(result == Self.evaluationGolden[GoldenPaths.kind(path)])
    }
}
