import BSVI
import Foundation
import Testing

/// Diagonal-Gaussian log densities and the analytic KL to N(0, I).
@Suite("Diagonal Gaussian densities")
struct GaussianTests {
    static func density(_ z: [Float], mean: [Float], logVariance: [Float]) -> Float {
        z.withUnsafeBufferPointer { zp in mean.withUnsafeBufferPointer { mp in logVariance.withUnsafeBufferPointer { lp in
            Gaussian.logDensity(zp.baseAddress!, mean: mp.baseAddress!, logVariance: lp.baseAddress!, count: z.count)
        } } }
    }

    @Test("log densities match the Float64 formula; the reparameterized form equals the general one")
    func densities() {
        var values = TestValues(seed: 31)
        for _ in 0..<20 {
            let d = 3
            let mu = values.floats(d, -2, 2), ell = values.floats(d, -3, 1), eps = values.floats(d, -2.5, 2.5)
            let z = (0..<d).map { mu[$0] + exp(0.5 * ell[$0]) * eps[$0] }
            var expected = 0.0, expectedStandard = 0.0
            for c in 0..<d {
                let sd = exp(0.5 * Double(ell[c]))
                let u = (Double(z[c]) - Double(mu[c])) / sd
                expected += -0.5 * log(2 * Double.pi) - log(sd) - 0.5 * u * u
                expectedStandard += -0.5 * log(2 * Double.pi) - 0.5 * Double(z[c]) * Double(z[c])
            }
            let general = Self.density(z, mean: mu, logVariance: ell)
            let reparameterized = eps.withUnsafeBufferPointer { ep in ell.withUnsafeBufferPointer {
                Gaussian.logDensityOfReparameterized(epsilon: ep.baseAddress!, logVariance: $0.baseAddress!, count: d)
            } }
            let standard = z.withUnsafeBufferPointer { Gaussian.logStandardDensity($0.baseAddress!, count: d) }
            #expect(abs(Double(general) - expected) <= 1e-4 * max(1, abs(expected)))
            #expect(abs(Double(reparameterized) - expected) <= 1e-4 * max(1, abs(expected)))
            #expect(abs(Double(standard) - expectedStandard) <= 1e-5 * max(1, abs(expectedStandard)))
        }
        // The reparameterized form stays exact when σ is tiny (z − μ would lose every digit).
        let tiny: [Float] = [-60], eps: [Float] = [1.5]
        let v = eps.withUnsafeBufferPointer { ep in tiny.withUnsafeBufferPointer {
            Gaussian.logDensityOfReparameterized(epsilon: ep.baseAddress!, logVariance: $0.baseAddress!, count: 1)
        } }
        #expect(abs(Double(v) - (-0.5 * (log(2 * Double.pi) - 60 + 2.25))) <= 1e-5)
    }

    @Test("KL to the standard normal: analytic value, zero at the prior, Monte Carlo agreement")
    func klToStandard() {
        func kl(_ mu: [Float], _ ell: [Float]) -> Float {
            mu.withUnsafeBufferPointer { m in ell.withUnsafeBufferPointer {
                Gaussian.klToStandard(mean: m.baseAddress!, logVariance: $0.baseAddress!, count: mu.count)
            } }
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
