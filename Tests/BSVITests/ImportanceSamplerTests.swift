import BSVI
import Foundation
import Testing

/// Importance-sampled log p(x) against the exact marginal of a one-dimensional-latent model
/// (trapezoid quadrature in Float64), with tolerances set by the sampling standard error
/// se(log p̂) ≈ √(var(w)/E[w]² / K) estimated from independent draws.
@Suite("Importance-sampled log-likelihood")
struct ImportanceSamplerTests {
    static let noRefinement = RefinementSettings(steps: 0, learningRate: 0, rule: .sgd)

    /// Six of the 16 inputs keep the debug-build run time down.
    static let examples = [0, 3, 6, 9, 12, 15]

    @Test("K = 5000 estimates are within 5 standard errors of the exact log p(x), and far closer than K = 10",
          arguments: [UInt64(1), 2])
    func convergesToExactMarginal(seed: UInt64) {
        let m = LatentOneModel(seed: seed)
        let chosen = Self.examples
        let x = HostMatrix(rows: chosen.count, cols: 4, values: chosen.flatMap { m.x.row($0) })
        let ids = chosen.map { m.ids[$0] }
        let all = m.encoderLambda()
        let lambda = HostMatrix(rows: chosen.count, cols: 2, values: chosen.flatMap { all.row($0) })
        let exact = chosen.map { m.exactLogMarginal($0) }
        func estimate(samples: Int, context: UInt64) -> [Double] {
            let sampler = ImportanceSampler(model: m.model, samples: samples, batchCapacity: chosen.count,
                                            refinement: Self.noRefinement, chunk: 250)
            return sampler.importanceSampledLogLikelihood(x: x.matrix, ids: ids, lambda: lambda.matrix,
                                                          noise: NoiseSource(seed: seed, purpose: .evaluationNoise, context: context),
                                                          params: m.params)
        }
        let k = 5000
        let estimates = estimate(samples: k, context: 0)
        #expect(estimates.count == chosen.count)
        var zScores = [Double](), fineErrors = [Double]()
        for n in 0..<chosen.count {
            let relVar = m.relativeWeightVariance(example: chosen[n], lambda: lambda.rowDouble(n), samples: 5000, seed: seed)
            let se = (relVar / Double(k)).squareRoot()
            // 1e-4 covers the Float32 rounding of log w; the quadrature error is far smaller.
            #expect(abs(estimates[n] - exact[n]) <= 5 * se + 1e-4,
                    "example \(chosen[n]): estimate \(estimates[n]), exact \(exact[n]), se \(se)")
            // The check is meaningful only if the weights actually vary.
            #expect(se > 1e-4)
            zScores.append((estimates[n] - exact[n]) / se)
            fineErrors.append(abs(estimates[n] - exact[n]))
        }
        // Across the examples the errors look like standard-error-sized noise, not a bias.
        let meanZ = zScores.reduce(0, +) / Double(zScores.count)
        #expect(abs(meanZ) <= 5 / Double(zScores.count).squareRoot(), "mean z-score \(meanZ)")

        // With K = 10 (four independent noise contexts) the error is much larger: standard
        // errors scale as 1/√K, a factor √500 ≈ 22 here; demand at least 5.
        var coarseErrors = [Double]()
        for context in UInt64(1)...4 {
            let e = estimate(samples: 10, context: context)
            for n in 0..<chosen.count { coarseErrors.append(abs(e[n] - exact[n])) }
        }
        let fine = fineErrors.reduce(0, +) / Double(fineErrors.count)
        let coarse = coarseErrors.reduce(0, +) / Double(coarseErrors.count)
        #expect(fine * 5 < coarse, "mean |error|: K=10 \(coarse), K=5000 \(fine)")
    }

    @Test("results do not depend on the chunk size")
    func chunkIndependence() {
        let m = LatentOneModel(seed: 4)
        let lambda = m.encoderLambda()
        let noise = NoiseSource(seed: 4, purpose: .evaluationNoise, context: 0)
        var results = [[Double]]()
        var elbos = [Double]()
        for chunk in [1, 7, 120] {
            let sampler = ImportanceSampler(model: m.model, samples: 120, batchCapacity: 16, refinement: Self.noRefinement,
                                            chunk: chunk, elboSamples: 30)
            results.append(sampler.importanceSampledLogLikelihood(x: m.x.matrix, ids: m.ids, lambda: lambda.matrix,
                                                                  noise: noise, params: m.params))
            elbos.append(sampler.monteCarloELBO(x: m.x.matrix, ids: m.ids, lambda: lambda.matrix, noise: noise,
                                                params: m.params))
        }
        for r in results.dropFirst() {
            for i in 0..<16 { #expect(abs(r[i] - results[0][i]) <= 1e-12 * max(1, abs(results[0][i]))) }
        }
        for e in elbos.dropFirst() { #expect(abs(e - elbos[0]) <= 1e-9 * max(1, abs(elbos[0]))) }
        // And not on the batch: each example alone gets the same estimate (noise keyed by id).
        let single = ImportanceSampler(model: m.model, samples: 120, batchCapacity: 1, refinement: Self.noRefinement, chunk: 64)
        for i in [0, 9, 15] {
            let xi = HostMatrix(rows: 1, cols: 4, values: m.x.row(i))
            let li = HostMatrix(rows: 1, cols: 2, values: lambda.row(i))
            let v = single.importanceSampledLogLikelihood(x: xi.matrix, ids: [m.ids[i]], lambda: li.matrix, noise: noise,
                                                          params: m.params)
            #expect(abs(v[0] - results[0][i]) <= 1e-12 * max(1, abs(v[0])))
        }
    }

    @Test("the Monte Carlo ELBO matches E_q[log p(x|z)] − KL by quadrature within 5 standard errors")
    func monteCarloELBOConverges() {
        let m = LatentOneModel(seed: 5)
        let lambda = m.encoderLambda()
        let samples = 1500
        let chosen = Self.examples
        let sampler = ImportanceSampler(model: m.model, samples: 1, batchCapacity: 16, refinement: Self.noRefinement,
                                        chunk: 500, elboSamples: samples)
        let noise = NoiseSource(seed: 5, purpose: .evaluationNoise, context: 1)
        let p = m.params.doubles
        var total = 0.0
        for i in chosen {
            let xi = HostMatrix(rows: 1, cols: 4, values: m.x.row(i))
            let li = HostMatrix(rows: 1, cols: 2, values: lambda.row(i))
            let estimate = sampler.monteCarloELBO(x: xi.matrix, ids: [m.ids[i]], lambda: li.matrix, noise: noise, params: m.params)
            total += estimate
            // E_q[log p(x|z)] and its variance by quadrature over z = μ + σu, u ~ N(0, 1).
            let mu = Double(lambda[i, 0]), sd = exp(0.5 * Double(lambda[i, 1]))
            var mean = 0.0, second = 0.0
            let n = 4001, h = 20.0 / Double(n - 1)
            for j in 0..<n {
                let u = -10 + Double(j) * h
                let w = (j == 0 || j == n - 1 ? 0.5 : 1) * h * exp(-0.5 * u * u) / (2 * Double.pi).squareRoot()
                let ll = Reference.logLikelihood(model: m.model, params: p, x: m.x.rowDouble(i), z: [mu + sd * u])
                mean += w * ll
                second += w * ll * ll
            }
            let exact = mean - Reference.kl(lambda.rowDouble(i))
            let se = ((second - mean * mean) / Double(samples)).squareRoot()
            #expect(abs(estimate - exact) <= 5 * se + 1e-4, "example \(i): \(estimate) vs \(exact) (se \(se))")
        }
        // The same examples as one batch give the same sum (noise keyed by example id).
        let xs = HostMatrix(rows: chosen.count, cols: 4, values: chosen.flatMap { m.x.row($0) })
        let ls = HostMatrix(rows: chosen.count, cols: 2, values: chosen.flatMap { lambda.row($0) })
        let batch = sampler.monteCarloELBO(x: xs.matrix, ids: chosen.map { m.ids[$0] }, lambda: ls.matrix, noise: noise,
                                           params: m.params)
        #expect(abs(batch - total) <= 1e-9 * abs(total))
    }

    @Test("evaluate combines the pieces: IS from the chosen proposal, ELBOs at λ₀ and the refined λ_k",
          arguments: [Proposal.encoder, .refined])
    func evaluateIsConsistent(proposal: Proposal) {
        let m = LatentOneModel(seed: 6)
        let seed: UInt64 = 17
        let refinement = RefinementSettings(steps: 4, learningRate: 0.05, rule: .sgd)
        let sampler = ImportanceSampler(model: m.model, samples: 200, batchCapacity: 16, refinement: refinement,
                                        proposal: proposal, chunk: 100, elboSamples: 40)
        let sums = sampler.evaluate(x: m.x.matrix, exampleIDs: m.ids, seed: seed, params: m.params).sums
        #expect(sums.examples == 16)

        let lambda0 = m.encoderLambda()
        let lambdaK = HostMatrix(rows: 16, cols: 2, values: lambda0.buffer.array)
        SVIRefinement(model: m.model, settings: refinement, batchCapacity: 16)
            .run(lambdaK.matrix, x: m.x.matrix, ids: m.ids, noise: .evaluationRefinement(seed: seed), params: m.params)
        #expect(lambdaK.buffer.array != lambda0.buffer.array, "refinement moved λ")
        let sampleNoise = NoiseSource(seed: seed, purpose: .evaluationNoise, context: 0)
        let elboNoise = NoiseSource(seed: seed, purpose: .evaluationNoise, context: 1)
        let proposalLambda = proposal == .encoder ? lambda0 : lambdaK
        let logLik = sampler.importanceSampledLogLikelihood(x: m.x.matrix, ids: m.ids, lambda: proposalLambda.matrix,
                                                            noise: sampleNoise, params: m.params)
        let e0 = sampler.monteCarloELBO(x: m.x.matrix, ids: m.ids, lambda: lambda0.matrix, noise: elboNoise, params: m.params)
        let eK = sampler.monteCarloELBO(x: m.x.matrix, ids: m.ids, lambda: lambdaK.matrix, noise: elboNoise, params: m.params)
        let expectedLogLik = logLik.reduce(0, +)
        #expect(abs(sums.bound - expectedLogLik) <= 1e-9 * abs(expectedLogLik))
        #expect(abs(sums.elboInitial - e0) <= 1e-9 * abs(e0))
        #expect(abs(sums.elboRefined - eK) <= 1e-9 * abs(eK))
        // A valid estimate of Σ log p(x) either way: within a generous 1 nat of the exact sum.
        let exact = (0..<16).reduce(0.0) { $0 + m.exactLogMarginal($1) }
        #expect(abs(sums.bound - exact) <= 1, "estimate \(sums.bound) vs exact \(exact)")
    }
}
