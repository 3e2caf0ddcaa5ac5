import BSVI
import Foundation
import Testing

/// Identities of the svi and bsvi objectives on the same samples: the per-step log weights
/// log w_j are recomputed here with the evaluation's SVI run on the training noise, and
/// the bsvi bound is checked for each π, for k = 0, for Jensen's inequality, and for the
/// unbiasedness of its weight Σ_j π_j w_j, which is what makes it a lower bound on log p(x).
@Suite("BSVI bound identities")
struct BSVIBoundTests {
    static let shape = ModelShape(inputDim: 10, latentDim: 2, hiddenDims: [5], activation: .tanh)
    static let ids = [12, 3, 40, 7]
    static let noise = NoiseSource(seed: 5, purpose: .trainingNoise, context: 3)

    final class Setup {
        let model: VAEModel
        let params: FloatBuffer
        let x: HostMatrix
        let refinement: RefinementSettings
        let k: Int

        init(k: Int, refinement: RefinementSettings, learnedPi: Bool = false) {
            self.k = k
            self.refinement = refinement
            model = VAEModel(shape: BSVIBoundTests.shape, piCount: learnedPi ? k + 1 : 0)
            params = randomParameters(model: model, seed: 8)
            var values = TestValues(seed: 9)
            x = HostMatrix(rows: 4, cols: 10, values: values.bits(40))
        }

        func objective(_ method: TrainingMethod, pi: PiMode, k: Int? = nil) -> ObjectiveSums {
            let settings = ObjectiveSettings(method: method, k: k ?? self.k, pi: pi, refinement: refinement)
            let objective = BatchObjective(model: model, settings: settings, batchCapacity: 4)
            return objective.accumulate(x: x.matrix, exampleIDs: BSVIBoundTests.ids, noise: BSVIBoundTests.noise,
                                        params: params, grads: FloatBuffer(count: model.vectorLength))
        }

        /// log w_ij, log p(x_i|z_ij) − KL(λ_ij) for j = 0…k: the evaluation's run (its own rows,
        /// every step in rows 0..<b) on the objective's noise, then one sample at its final λ_k —
        /// the objective keeps the same samples in blocks of its buffer.
        func manualRun() -> (logWeights: [[Double]], elbos: [[Double]]) {
            let b = x.rows, d = model.shape.latentDim
            let encoder = MLPWorkspace(mlp: model.encoder, capacity: b)
            encoder.forward(x.matrix, rows: 0..<b, params: params)
            let lambda = HostMatrix(rows: b, cols: 2 * d)
            lambda.matrix.copy(from: encoder.output)
            var steps = refinement
            steps.steps = k
            let svi = SVIRefinement(model: model, settings: steps, batchCapacity: b)
            let latents = svi.latents
            var logWeights: [[Double]] = [], elbos: [[Double]] = []
            func record() {
                logWeights.append((0..<b).map { Double(latents.logWeight[$0]) })
                elbos.append((0..<b).map { Double(latents.logLikelihood[$0]) - Reference.kl(lambda.rowDouble($0)) })
            }
            svi.run(lambda.matrix, x: x.matrix, ids: BSVIBoundTests.ids, noise: BSVIBoundTests.noise, params: params) { _ in record() }
            latents.draw(lambda: lambda.matrix, start: 0, slot: k, exampleIDs: BSVIBoundTests.ids, noise: BSVIBoundTests.noise)
            latents.score(rows: 0..<b, x: x.matrix, lambda: lambda.matrix, params: params)
            record()
            return (logWeights, elbos)
        }
    }

    static func close(_ a: Double, _ b: Double) -> Bool { abs(a - b) <= 1e-5 * max(1, abs(b)) }

    static let refinements = [
        RefinementSettings(steps: 3, learningRate: 0.05, rule: .sgd),
        RefinementSettings(steps: 3, learningRate: 0.03, rule: .adam, momentum: 0.9, clipNorm: 5),
    ]

    @Test("svi bound is Σ log w_k; bsvi with π = last equals it; the ELBO sums are at λ₀ and λ_k",
          arguments: refinements)
    func lastEqualsSVI(refinement: RefinementSettings) {
        let s = Setup(k: 3, refinement: refinement)
        let (logW, elbos) = s.manualRun()
        let svi = s.objective(.svi, pi: .uniform)
        let last = s.objective(.bsvi, pi: .last)
        let expected = logW[3].reduce(0, +)
        #expect(Self.close(svi.bound, expected), "svi \(svi.bound) vs Σ log w_k \(expected)")
        #expect(Self.close(last.bound, svi.bound), "bsvi(last) \(last.bound) vs svi \(svi.bound)")
        for stats in [svi, last] {
            #expect(stats.examples == 4)
            #expect(Self.close(stats.elboInitial, elbos[0].reduce(0, +)))
            #expect(Self.close(stats.elboRefined, elbos[3].reduce(0, +)))
        }
        // The refinement actually moved λ (otherwise the identities above are weak).
        #expect(logW[3] != logW[0])
    }

    @Test("uniform and learned π: the bound is Σ_i log Σ_j π_j w_ij on the same samples", arguments: refinements)
    func mixtureBound(refinement: RefinementSettings) {
        let k = 3
        let uniformSetup = Setup(k: k, refinement: refinement)
        let (logW, _) = uniformSetup.manualRun()
        let uniform = uniformSetup.objective(.bsvi, pi: .uniform)
        var expected = 0.0, jensen = 0.0
        for i in 0..<4 {
            let column = (0...k).map { logW[$0][i] }
            expected += Reference.logSumExp(column) - log(Double(k + 1))
            jensen += column.reduce(0, +) / Double(k + 1)
        }
        #expect(Self.close(uniform.bound, expected), "bsvi(uniform) \(uniform.bound) vs \(expected)")
        // Jensen: log of the mean weight ≥ mean of the log weights (strict: the weights differ).
        #expect(uniform.bound > jensen)

        let learnedSetup = Setup(k: k, refinement: refinement, learnedPi: true)
        let t = learnedSetup.model.piLogits!
        let alpha = [0.3, -1.2, 0.8, 0.1]
        for j in 0...k { learnedSetup.params[t.offset + j] = Float(alpha[j]) }
        let (logWL, _) = learnedSetup.manualRun()
        let learned = learnedSetup.objective(.bsvi, pi: .learned)
        let lse = Reference.logSumExp(alpha)
        var expectedLearned = 0.0
        for i in 0..<4 { expectedLearned += Reference.logSumExp((0...k).map { alpha[$0] - lse + logWL[$0][i] }) }
        #expect(Self.close(learned.bound, expectedLearned), "bsvi(learned) \(learned.bound) vs \(expectedLearned)")
        // With α = 0 the learned π is uniform.
        for j in 0...k { learnedSetup.params[t.offset + j] = 0 }
        #expect(Self.close(learnedSetup.objective(.bsvi, pi: .learned).bound, expected))
    }

    @Test("k = 0: every bsvi π and svi reduce to the one-sample log w₀ at λ₀", arguments: PiMode.allCases)
    func zeroSteps(pi: PiMode) {
        let refinement = RefinementSettings(steps: 0, learningRate: 0.05, rule: .sgd)
        let s = Setup(k: 0, refinement: refinement, learnedPi: pi == .learned)
        if pi == .learned { s.params[s.model.piLogits!.offset] = 1.7 }
        let (logW, elbos) = s.manualRun()
        let bsvi = s.objective(.bsvi, pi: pi)
        let svi = s.objective(.svi, pi: .uniform)
        let expected = logW[0].reduce(0, +)
        #expect(Self.close(bsvi.bound, expected))
        #expect(Self.close(svi.bound, expected))
        #expect(bsvi.elboInitial == bsvi.elboRefined)
        #expect(Self.close(bsvi.elboInitial, elbos[0].reduce(0, +)))
        // iwae with one sample is the same estimator at λ₀ with the same noise slot.
        let iwae = s.objective(.iwae, pi: .uniform, k: 1)
        #expect(Self.close(iwae.bound, expected))
    }

    @Test("E[Σ_j π_j w_j] = p(x): the bsvi weight is unbiased, so its log is a lower bound on average",
          arguments: PiMode.allCases)
    func bufferWeightIsUnbiased(pi: PiMode) {
        // Latent dimension 1, so p(x) is exact by quadrature. Over many independent noise
        // contexts the mean of exp(bound − log p(x)) must be 1 within 5 standard errors, and the
        // mean bound must not exceed log p(x) by more than 5 standard errors.
        let k = 3
        let settings = ObjectiveSettings(method: .bsvi, k: k, pi: pi,
                                         refinement: RefinementSettings(steps: k, learningRate: 0.2, rule: .sgd))
        let m = LatentOneModel(seed: 11, piCount: settings.piCount)
        if pi == .learned {
            // π = softmax(α) far from uniform, from logits whose exponentials sum to ≈ 7.9, not 1:
            // a bound weighting w_j by e^α_j (or by any π off the simplex) is biased by that factor.
            let t = m.model.piLogits!
            for (j, a) in [Float(0.9), -0.6, 0.2, 1.3].enumerated() { m.params[t.offset + j] = a }
        }
        let chosen = [0, 5, 10, 15]
        let xs = HostMatrix(rows: chosen.count, cols: 4, values: chosen.flatMap { m.x.row($0) })
        let ids = chosen.map { m.ids[$0] }
        let exact = chosen.map { m.exactLogMarginal($0) }
        let objective = BatchObjective(model: m.model, settings: settings, batchCapacity: 1)
        if pi == .learned {
            // The learned case weights the buffer otherwise than uniform does.
            let logPi = objective.bufferLogWeights(params: m.params)
            #expect(logPi.map { abs($0 + log(Float(k + 1))) }.max()! > 0.5, "log π = \(logPi)")
        }
        let grads = FloatBuffer(count: m.model.vectorLength)
        let trials = 1000
        for (n, i) in chosen.enumerated() {
            let xi = HostMatrix(rows: 1, cols: 4, values: xs.row(n))
            var ratios = [Double](), bounds = [Double]()
            for t in 0..<trials {
                let noise = NoiseSource(seed: 21, purpose: .trainingNoise, context: UInt64(t))
                let stats = objective.accumulate(x: xi.matrix, exampleIDs: [ids[n]], noise: noise, params: m.params, grads: grads)
                ratios.append(exp(stats.bound - exact[n]))
                bounds.append(stats.bound - exact[n])
            }
            func meanAndSE(_ v: [Double]) -> (Double, Double) {
                let mean = v.reduce(0, +) / Double(v.count)
                let variance = v.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(v.count - 1)
                return (mean, (variance / Double(v.count)).squareRoot())
            }
            let (ratio, ratioSE) = meanAndSE(ratios)
            let (gap, gapSE) = meanAndSE(bounds)
            #expect(abs(ratio - 1) <= 5 * ratioSE, "example \(i): E[Σπw]/p(x) = \(ratio) ± \(ratioSE)")
            #expect(gap <= 5 * gapSE, "example \(i): E[bound] − log p(x) = \(gap) ± \(gapSE)")
            #expect(ratioSE > 0)
        }
    }
}
