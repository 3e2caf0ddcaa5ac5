import BSVI
import BSVITraining
import Foundation
import GoldenSupport
import Testing

/// The latent codes behind `bsvi-dist sample`'s reconstruction rows.
@Suite("Sample grid: golden reconstruction codes")
struct SampleGridGoldenTests {
    static let model = VAEModel(shape: ModelShape(inputDim: 16, latentDim: 3, hiddenDims: [8], activation: .tanh))
    static let refinement = RefinementSettings(steps: 5, learningRate: 0.05, rule: .sgd)

    static func codes(on path: KernelPath) -> (initial: [Float], refined: [Float], encoderMeans: [Float]) {
        let params = model.makeInitialParameters(seed: 41)
        let data = RandomStream(seed: 42, purpose: .sampling, 2)
        let n = 4
        let x = FloatBuffer((0..<(n * 16)).map { data.uniform(UInt64($0)) < 0.5 ? 1 : 0 })
        return onPath(path) {
            let codes = SampleGrid.reconstructionCodes(model: model, params: params, x: x.matrix(rows: n, cols: 16),
                                                       refinement: refinement, seed: 43)
            let encoder = MLPWorkspace(mlp: model.encoder, capacity: n)
            encoder.forward(x.matrix(rows: n, cols: 16), rows: 0..<n, params: params)
            let means = (0..<n).flatMap { i in (0..<3).map { encoder.output[i, $0] } }
            return (codes.initial.array, codes.refined.array, means)
        }
    }

    /// Recorded 2026-12-01, from the code before the refinement loop was made one routine (commit
    /// e0473de), with BSVI_RECORD_GOLDEN=1; re-recorded 2026-12-05 for the rational tanh (see
    /// TrainingStepGoldenTests).
    static let golden: [GoldenPaths.Kind: UInt64] = [.vector: 0x5f1f_f38e_ca04_643d, .portable: 0xe4cd_ec56_86d2_99c3]

    @Test("initial codes are the encoder's means; refined ones moved, and are the same bits as recorded",
          arguments: GoldenPaths.testable)
    func reconstructionCodes(path: KernelPath) {
        let codes = Self.codes(on: path)
        #expect(codes.initial == codes.encoderMeans)
        #expect(codes.refined != codes.initial)
        let result = fingerprint(codes.refined)
        GoldenPaths.record("reconstruction codes \(path)", "0x" + String(result, radix: 16))
        #expect(result == Self.golden[GoldenPaths.kind(path)])
    }
}
