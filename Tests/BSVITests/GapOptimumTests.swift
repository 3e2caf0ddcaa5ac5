import BSVI
import Foundation
import Testing

/// `eval --gaps` stands in the refinement's estimate of the best Gaussian λ* = argmax ELBO(λ)
/// for the optimum of Cremer et al. (2018). On a one-dimensional latent the exact ELBO of any
/// λ = (μ, log σ²) is a quadrature, and its maximum a two-parameter search: the estimate must
/// come within a thousandth of a nat of it, where the last of the same number of constant steps
/// (what --gaps used to report) falls far shorter.
@Suite("--gaps: the refinement's estimate of the best Gaussian")
struct GapOptimumTests {
    /// E_q[log p(x|z)] − KL(q ‖ N(0, 1)) for q = N(μ, e^ℓ), the expectation by the trapezoid
    /// rule over z = μ + σt, t in [−8, 8] (for a smooth integrand under a Gaussian weight, 201
    /// nodes are exact far below the tolerances here).
    static func exactELBO(_ m: LatentOneModel, example i: Int, mu: Double, logVariance: Double) -> Double {
        let p = m.params.doubles, x = m.x.rowDouble(i), sd = exp(0.5 * logVariance)
        let points = 201, h = 16.0 / Double(points - 1)
        var expectation = 0.0
        for n in 0..<points {
            let t = -8 + Double(n) * h
            let weight = (n == 0 || n == points - 1 ? 0.5 : 1) * h * exp(-0.5 * t * t) / (2 * Double.pi).squareRoot()
            expectation += weight * Reference.logLikelihood(model: m.model, params: p, x: x, z: [mu + sd * t])
        }
        return expectation - Reference.kl([mu, logVariance])
    }

    /// max over λ of the exact ELBO, by golden-section searches along μ and ℓ in turn until
    /// neither moves (the ELBO is smooth and, in this family, has one maximum near λ₀).
    static func bestELBO(_ m: LatentOneModel, example i: Int, from start: [Double]) -> Double {
        var lambda = start
        func along(_ c: Int, _ low: Double, _ high: Double) {
            let ratio = (5.0.squareRoot() - 1) / 2
            func value(_ v: Double) -> Double {
                var l = lambda
                l[c] = v
                return exactELBO(m, example: i, mu: l[0], logVariance: l[1])
            }
            var a = low, b = high
            var c1 = b - ratio * (b - a), c2 = a + ratio * (b - a)
            var v1 = value(c1), v2 = value(c2)
            while b - a > 1e-6 {
                if v1 >= v2 {
                    b = c2; c2 = c1; v2 = v1
                    c1 = b - ratio * (b - a); v1 = value(c1)
                } else {
                    a = c1; c1 = c2; v1 = v2
                    c2 = a + ratio * (b - a); v2 = value(c2)
                }
            }
            lambda[c] = (a + b) / 2
        }
        for _ in 0..<6 {
            along(0, lambda[0] - 3, lambda[0] + 3)
            along(1, lambda[1] - 4, min(lambda[1] + 4, 6))
        }
        return exactELBO(m, example: i, mu: lambda[0], logVariance: lambda[1])
    }

    /// Each example's exact ELBO at the refinement's result from λ₀, `target` as --gaps would ask.
    static func refinedELBOs(_ m: LatentOneModel, target: RefinementTarget, steps: Int, seed: UInt64) -> [Double] {
        // --gaps' search (Evaluate.gapRefinement): Adam, η = 0.1.
        var settings = RefinementSettings(steps: steps, learningRate: 0.1, rule: .adam)
        settings.target = target
        let lambda = m.encoderLambda()
        SVIRefinement(model: m.model, settings: settings, batchCapacity: 16)
            .run(lambda.matrix, x: m.x.matrix, ids: m.ids, noise: .evaluationRefinement(seed: seed), params: m.params)
        return (0..<16).map { exactELBO(m, example: $0, mu: lambda.rowDouble($0)[0], logVariance: lambda.rowDouble($0)[1]) }
    }

    @Test("λ* comes within a small fraction of a nat of the best ELBO; the last iterate does not", arguments: [UInt64(1), 2, 3])
    func estimateReachesTheOptimum(seed: UInt64) {
        let m = LatentOneModel(seed: seed)
        let start = m.encoderLambda()
        let best = (0..<16).map { Self.bestELBO(m, example: $0, from: start.rowDouble($0)) }
        let initial = (0..<16).map { Self.exactELBO(m, example: $0, mu: start.rowDouble($0)[0], logVariance: start.rowDouble($0)[1]) }
        let optimum = Self.refinedELBOs(m, target: .optimum, steps: 1000, seed: seed)
        let last = Self.refinedELBOs(m, target: .lastIterate, steps: 1000, seed: seed)
        let shortfall = zip(best, optimum).map { $0 - $1 }, lastShortfall = zip(best, last).map { $0 - $1 }
        let mean = shortfall.reduce(0, +) / 16, lastMean = lastShortfall.reduce(0, +) / 16
        let amortization = zip(best, initial).map { $0 - $1 }.reduce(0, +) / 16
        // The search found the maximum: no refinement beats it (beyond the search's own 1e-6).
        #expect(shortfall.allSatisfy { $0 > -1e-6 } && lastShortfall.allSatisfy { $0 > -1e-6 }, "\(shortfall) \(lastShortfall)")
        // Seeds 1–3 measured a mean of 8e-7–1.3e-4 and at most 5e-4 nats, against a gap to λ₀ of
        // 0.5–0.8 nats; the last iterate of 1000 constant steps falls short by 70–1300 times more.
        #expect(mean <= 0.001 && shortfall.max()! <= 0.005, "best − ELBO(λ*): mean \(mean), \(shortfall)")
        #expect(mean <= lastMean / 10, "λ* \(mean) against the last iterate's \(lastMean)")
        #expect(amortization > 100 * mean, "the gap to λ₀ (\(amortization)) must dwarf the shortfall")
        if ProcessInfo.processInfo.environment["BSVI_TEST_VERBOSE"] != nil {
            print("[gaps] seed \(seed): best − λ* mean \(mean) max \(shortfall.max()!); best − last iterate mean \(lastMean) "
                  + "max \(lastShortfall.max()!); gap to λ₀ mean \(amortization)")
        }
    }
}
