import BSVI
import BSVIParallel
import BSVITraining
import Foundation
import GoldenSupport
import Testing

/// Golden values of one fixed-seed training step (bsvi, learned π, Adam): the reduced gradient
/// and the parameters after the update. This is the bit-exact regression anchor for resume
/// across versions — a checkpoint resumes into the same trajectory only if a step computes the
/// same bits — and would catch any change of the objective, the refinement, the exchange or Adam
/// that every tolerance-based test lets through.
///
/// Recorded 2026-12-01, from the code as it was before the refinement loop was made one routine
/// (commit e0473de), by printing the values this file computes (BSVI_RECORD_GOLDEN=1); re-recorded
/// 2026-12-05, when tanh became a rational function, and again that night (stop 60), when the
/// training's likelihood pass took the evaluator's product form (see ObjectiveGoldenTests). A
/// checkpoint written before either resumes, but its trajectory from there differs in the last
/// bits from the one the older build would have continued.
@Suite("Training step: golden values")
struct TrainingStepGoldenTests {
    static let shape = ModelShape(inputDim: 30, latentDim: 4, hiddenDims: [12, 9], activation: .tanh)
    static let settings = ObjectiveSettings(method: .bsvi, k: 3, pi: .learned,
                                            refinement: RefinementSettings(steps: 3, learningRate: 0.02, rule: .adam, momentum: 0.9, clipNorm: 5))
    static let batch = 6

    struct Result: Equatable, CustomStringConvertible {
        var gradientFingerprint: UInt64
        var parameterFingerprint: UInt64
        var bound: Double
        var elboInitial: Double
        var elboRefined: Double
        /// The summed gradient of the π logits.
        var piGradient: [Float]
        /// The parameters after the update at the first encoder weight, the last decoder bias and the π logits.
        var sampledParameters: [Float]

        var description: String {
            "Result(gradientFingerprint: 0x\(String(gradientFingerprint, radix: 16)), parameterFingerprint: 0x\(String(parameterFingerprint, radix: 16)), "
                + "bound: \(bound), elboInitial: \(elboInitial), elboRefined: \(elboRefined), "
                + "piGradient: \(piGradient), sampledParameters: \(sampledParameters))"
        }
    }

    static let golden: [GoldenPaths.Kind: Result] = [
        .vector: Result(gradientFingerprint: 0xd1ad1e875a6c50f8, parameterFingerprint: 0x1e41ba13772595ba,
                        bound: -127.97067260742188, elboInitial: -131.72683715820312, elboRefined: -130.73397827148438,
                        piGradient: [-0.3456836, 0.84104264, 0.13904573, -0.63440675],
                        sampledParameters: [-0.16592914, -0.003, -0.0029999993, 0.0029999998, 0.002999999, -0.003]),
        .portable: Result(gradientFingerprint: 0x4a076c8e6f7de630, parameterFingerprint: 0xf075d383a2005cd9,
                          bound: -127.9706802368164, elboInitial: -131.72683715820312, elboRefined: -130.73397827148438,
                          piGradient: [-0.34568223, 0.8410429, 0.13904555, -0.6344067],
                          sampledParameters: [-0.16592914, -0.003, -0.0029999996, 0.0029999993, 0.0029999989, -0.003]),
    ]

    static func step(on path: KernelPath) -> (result: Result, applied: Bool, examples: Double, adamStep: Int, gapsZero: Bool) {
        let model = VAEModel(shape: shape, piCount: settings.piCount)
        let params = model.makeInitialParameters(seed: 31)
        // Fixed binary data from a stream of its own.
        let data = RandomStream(seed: 32, purpose: .sampling, 1)
        let x = FloatBuffer((0..<(batch * shape.inputDim)).map { data.uniform(UInt64($0)) < 0.35 ? 1 : 0 })
        let ids = [7, 40, 3, 12, 25, 0]
        let step = TrainingStep(model: model, settings: settings, localBatch: batch, globalBatch: batch,
                                adam: Adam(parameterCount: model.vectorLength, learningRate: 0.003))
        // A previous step's leftovers (NaN here) must not show: the step writes its whole exchange
        // buffer and never zeroes it, so a step that added to it instead would fail the golden values.
        step.exchange.buffer.base.update(repeating: .nan, count: step.exchange.buffer.count)
        let stepResult = onPath(path) {
            step.run(x: x.matrix(rows: batch, cols: shape.inputDim), exampleIDs: ids,
                     noise: NoiseSource(seed: 33, purpose: .trainingNoise, context: 1), params: params,
                     comm: LocalCommunicator(), stopRequested: false)
        }
        let gradient = (0..<model.vectorLength).map { step.exchange.gradients[$0] }
        let pi = model.piLogits!
        let lastBias = model.decoder.biases[model.decoder.layerCount - 1]
        let sampled = [model.encoder.kernels[0].offset, lastBias.offset + lastBias.count - 1] + Array(pi.range)
        let result = Result(gradientFingerprint: fingerprint(model.layout.packed(gradient)), parameterFingerprint: fingerprint(model.layout.packed(params.array)),
                            bound: stepResult.sums.bound, elboInitial: stepResult.sums.elboInitial,
                            elboRefined: stepResult.sums.elboRefined, piGradient: Array(gradient[pi.range]),
                            sampledParameters: sampled.map { params[$0] })
        // The fingerprints leave the layout's gaps out: the step must have zeroed the exchange's
        // (NaN above), and the parameters' must still be zero after Adam.
        let gaps = model.layout.gaps.joined()
        let gapsZero = !gaps.isEmpty && gaps.allSatisfy { step.exchange.gradients[$0] == 0 && params[$0] == 0 }
        return (result, stepResult.applied, Double(stepResult.sums.examples), step.adam.step, gapsZero)
    }

    @Test("one bsvi step with learned π on LocalCommunicator: gradient, sums and parameters after Adam",
          arguments: GoldenPaths.testable)
    func oneStep(path: KernelPath) {
        let (result, applied, examples, adamStep, gapsZero) = Self.step(on: path)
        GoldenPaths.record("training step \(path)", result)
        #expect(applied && examples == Double(Self.batch) && adamStep == 1)
        #expect(gapsZero, "the layout's gaps hold zeros after the step")
        #expect(result == Self.golden[GoldenPaths.kind(path)])
    }
}
