import BSVI
import Foundation
import Testing

/// The Gaussian parts of the log weight, and the analytic KL to N(0, I).
@Suite("Diagonal Gaussian densities")
struct GaussianTests {
    /// log w = log p(x|z) + log N(z; 0, I) − log N(z; μ, e^ℓ) of the latent workspace, for one
    /// example of a 3-pixel model with a 1-dimensional latent, against Float64.
    static func logWeight(lambda: [Float], slot: Int, path: KernelPath) -> (kernel: Double, reference: Double) {
        let model = VAEModel(shape: ModelShape(inputDim: 3, latentDim: 1, hiddenDims: [2], activation: .tanh))
        let params = randomParameters(model: model, seed: 3)
        let x = HostMatrix(rows: 1, cols: 3, values: [1, 0, 1])
        let lam = HostMatrix(rows: 1, cols: 2, values: lambda)
        let latents = LatentWorkspace(model: model, capacity: 1)
        let noise = NoiseSource(seed: 9, purpose: .sampling, context: 0)
        onPath(path) {
            latents.useParameters(params)
            latents.draw(lambda: lam.matrix, start: 0, slot: slot, exampleIDs: [0], noise: noise)
            latents.scoreLogWeights(rows: 0..<1, x: x.matrix, lambda: lam.matrix, params: params)
        }
        let eps = [Double(latents.epsilon[0, 0])]
        let reference = Reference.logWeight(model: model, params: params.doubles, x: x.rowDouble(0), lambda: lam.rowDouble(0), eps: eps)
        return (Double(latents.logWeight[0]), reference)
    }

    @Test("log w is written through ε, so it stays exact when σ is tiny (z − μ would lose every digit)",
          arguments: KernelPath.supported)
    func logWeightForTinySigma(path: KernelPath) {
        for (ell, slot) in [(Float(-60), 0), (-60, 1), (0.3, 2), (-8, 3)] {
            let r = Self.logWeight(lambda: [0.7, ell], slot: slot, path: path)
            #expect(abs(r.kernel - r.reference) <= 1e-5 * max(1, abs(r.reference)), "ℓ = \(ell): \(r.kernel) vs \(r.reference)")
        }
    }

    @Test("KL to the standard normal: analytic value, zero at the prior, Monte Carlo agreement", arguments: KernelPath.supported)
    func klToStandard(path: KernelPath) {
        func kl(_ mu: [Float], _ ell: [Float]) -> Float {
            let row = HostMatrix(rows: 1, cols: 2 * mu.count, values: mu + ell)
            var out: Float = .nan
            onPath(path) { Gaussian.klToStandard(lambda: row.matrix, into: &out) }
            return out
        }
        #expect(kl([0, 0], [0, 0]) == 0)
        let mu: [Float] = [0.5, -1.2], ell: [Float] = [-0.7, 0.4]
        let expected = Reference.kl((mu + ell).map(Double.init))
        #expect(abs(Double(kl(mu, ell)) - expected) <= 1e-6 * max(1, expected))
        // KL = E_q[log q − log p] by sampling with the project's own normals.
        let n = 200_000
        let stream = RandomStream(seed: 5, purpose: .sampling, 1)
        var eps = [Float](repeating: 0, count: 2 * n)
        eps.withUnsafeMutableBufferPointer { stream.fillNormals($0.baseAddress!, count: 2 * n) }
        var sum = 0.0, sumSq = 0.0
        for s in 0..<n {
            var term = 0.0
            for c in 0..<2 {
                let e = Double(eps[2 * s + c]), l = Double(ell[c])
                let z = Double(mu[c]) + exp(0.5 * l) * e
                term += (-0.5 * (l + e * e)) - (-0.5 * z * z)
            }
            sum += term
            sumSq += term * term
        }
        let mean = sum / Double(n), se = ((sumSq / Double(n) - mean * mean) / Double(n)).squareRoot()
        #expect(abs(mean - expected) <= 5 * se, "Monte Carlo KL \(mean) ± \(se) vs analytic \(expected)")
    }
}
