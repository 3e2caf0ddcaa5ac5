import BSVI
import Foundation
import Testing

/// LatentWorkspace: the reparameterized sample, log p(x|z), log w, ∂log p/∂z and the SVI
/// ELBO gradient w.r.t. λ = (μ, ℓ) for fixed noise ε, i.e. the gradient of
/// f(λ) = Σ_i log p(x_i | μ_i + exp(ℓ_i/2) ⊙ ε_i) − KL(q(z; λ_i) ‖ p(z)).
@Suite("Latent workspace and the ELBO gradient w.r.t. λ")
struct LatentELBOGradientTests {
    static let shape = ModelShape(inputDim: 20, latentDim: 3, hiddenDims: [6], activation: .tanh)
    static let b = 3
    static let ids = [5, 17, 3]
    static let slot = 2
    /// The batch's rows sit at 3..<6 of a 9-row workspace.
    static let start = 3
    static let noise = NoiseSource(seed: 7, purpose: .trainingNoise, context: 2)

    final class Setup {
        let model: VAEModel
        let params: FloatBuffer
        let x: HostMatrix
        let lambda: HostMatrix
        let latents: LatentWorkspace

        init(activation: Activation) {
            var shape = LatentELBOGradientTests.shape
            shape.activation = activation
            model = VAEModel(shape: shape)
            params = randomParameters(model: model, seed: 3)
            let d = shape.latentDim
            var values = TestValues(seed: 4)
            x = HostMatrix(rows: b, cols: shape.inputDim, values: values.bits(b * shape.inputDim))
            var lam = [Float]()
            for _ in 0..<b { lam += values.floats(d, -1, 1) + values.floats(d, -1.5, 0.5) }
            lambda = HostMatrix(rows: b, cols: 2 * d, values: lam)
            latents = LatentWorkspace(model: model, capacity: 9)
        }

        var rows: Range<Int> { start..<(start + b) }

        func drawAndScore() {
            latents.draw(lambda: lambda.matrix, start: start, slot: slot, exampleIDs: ids, noise: noise)
            latents.score(rows: rows, x: x.matrix, lambda: lambda.matrix, params: params)
        }

        func epsilon(_ i: Int) -> [Double] {
            (0..<model.shape.latentDim).map { Double(latents.epsilon[start + i, $0]) }
        }

        /// f(λ) in Float64 for the workspace's current ε.
        func referenceELBO(_ lam: [Double], eps: [[Double]]) -> Double {
            let d = model.shape.latentDim, p = params.doubles
            var f = 0.0
            for i in 0..<b {
                f += Reference.elbo(model: model, params: p, x: x.rowDouble(i), lambda: Array(lam[(i * 2 * d)..<((i + 1) * 2 * d)]),
                                    eps: eps[i])
            }
            return f
        }
    }

    @Test("draw gives z = μ + exp(ℓ/2)·ε with ε a pure function of (seed, example, slot)")
    func drawIsPureAndReparameterized() {
        let s = Setup(activation: .tanh)
        let d = Self.shape.latentDim
        s.drawAndScore()
        let eps = (0..<Self.b).map { s.epsilon($0) }
        for i in 0..<Self.b {
            let lam = s.lambda.rowDouble(i)
            let z = Reference.reparameterize(lam, eps[i])
            for c in 0..<d {
                #expect(abs(Double(s.latents.z[Self.start + i, c]) - z[c]) <= 1e-6 * max(1, abs(z[c])))
            }
        }
        // Perturbing λ and re-drawing reuses ε exactly.
        for c in 0..<(2 * d) { s.lambda[1, c] += 0.37 }
        s.latents.draw(lambda: s.lambda.matrix, start: 0, slot: Self.slot, exampleIDs: Self.ids, noise: Self.noise)
        for i in 0..<Self.b {
            for c in 0..<d { #expect(s.latents.epsilon[i, c] == Float(eps[i][c])) }
        }
        // A different slot, example id, context or seed gives different noise.
        func drawn(slot: Int, ids: [Int], noise: NoiseSource) -> [Float] {
            s.latents.draw(lambda: s.lambda.matrix, start: 6, slot: slot, exampleIDs: ids, noise: noise)
            return (6..<9).flatMap { r in (0..<d).map { s.latents.epsilon[r, $0] } }
        }
        let base = drawn(slot: Self.slot, ids: Self.ids, noise: Self.noise)
        #expect(base == eps.flatMap { $0.map(Float.init) })
        #expect(drawn(slot: Self.slot + 1, ids: Self.ids, noise: Self.noise) != base)
        #expect(drawn(slot: Self.slot, ids: [6, 18, 4], noise: Self.noise) != base)
        #expect(drawn(slot: Self.slot, ids: Self.ids, noise: NoiseSource(seed: 7, purpose: .trainingNoise, context: 3)) != base)
        #expect(drawn(slot: Self.slot, ids: Self.ids, noise: NoiseSource(seed: 8, purpose: .trainingNoise, context: 2)) != base)
        #expect(drawn(slot: Self.slot, ids: Self.ids, noise: NoiseSource(seed: 7, purpose: .evaluationNoise, context: 2)) != base)
        // The slots of one example are disjoint pieces of its stream: no value is shared
        // between the noise of different slots (d = 3 is odd, so slots are not whole pairs).
        var seen = Set<Float>()
        for slot in 0..<40 { seen.formUnion(drawn(slot: slot, ids: Self.ids, noise: Self.noise)) }
        #expect(seen.count == 40 * Self.b * d)
        // Noise of an example does not depend on its batch position.
        let reordered = drawn(slot: Self.slot, ids: [3, 5, 17], noise: Self.noise)
        #expect(Array(reordered[0..<d]) == Array(base[(2 * d)..<(3 * d)]))
        #expect(Array(reordered[d..<(2 * d)]) == Array(base[0..<d]))
    }

    @Test("score and scoreLogWeights give log p(x|z) and log w of the Float64 reference")
    func scoreMatchesReference() {
        let s = Setup(activation: .softplus)
        s.drawAndScore()
        let p = s.params.doubles
        var scored = [(Float, Float)]()
        for i in 0..<Self.b {
            let r = Self.start + i
            let lam = s.lambda.rowDouble(i), eps = s.epsilon(i)
            let z = Reference.reparameterize(lam, eps)
            let lp = Reference.logLikelihood(model: s.model, params: p, x: s.x.rowDouble(i), z: z)
            let lw = Reference.logWeight(model: s.model, params: p, x: s.x.rowDouble(i), lambda: lam, eps: eps)
            #expect(abs(Double(s.latents.logLikelihood[r]) - lp) <= 1e-5 * max(1, abs(lp)))
            #expect(abs(Double(s.latents.logWeight[r]) - lw) <= 1e-5 * max(1, abs(lw)))
            scored.append((s.latents.logLikelihood[r], s.latents.logWeight[r]))
        }
        s.latents.logLikelihood.zero()
        s.latents.logWeight.zero()
        s.latents.scoreLogWeights(rows: s.rows, x: s.x.matrix, lambda: s.lambda.matrix, params: s.params)
        // The evaluation pass may sum the likelihood differently (rounding only).
        let tolerance = 1e-6 * Double(Self.shape.inputDim)
        for i in 0..<Self.b {
            #expect(abs(Double(s.latents.logLikelihood[Self.start + i]) - Double(scored[i].0)) <= tolerance * max(1, abs(Double(scored[i].0))))
            #expect(abs(Double(s.latents.logWeight[Self.start + i]) - Double(scored[i].1)) <= tolerance * max(1, abs(Double(scored[i].1))))
        }
    }

    @Test("dz is ∂log p(x|z)/∂z", arguments: Activation.allCases)
    func latentGradient(activation: Activation) {
        let s = Setup(activation: activation)
        s.drawAndScore()
        s.latents.backward(rows: s.rows, params: s.params, toLatent: true)
        let p = s.params.doubles
        var cmp = GradientComparison()
        for i in 0..<Self.b {
            let z0 = (0..<Self.shape.latentDim).map { Double(s.latents.z[Self.start + i, $0]) }
            for c in 0..<Self.shape.latentDim {
                let fd = centralDifference({ Reference.logLikelihood(model: s.model, params: p, x: s.x.rowDouble(i), z: $0) },
                                           at: z0, index: c, step: 1e-6)
                cmp.add(index: i * Self.shape.latentDim + c, analytic: Double(s.latents.dz[Self.start + i, c]), reference: fd)
            }
        }
        cmp.report(#function)
        #expect(cmp.worst <= 1e-4, "\(cmp)")
    }

    @Test("elboGradient is ∇λ of log p(x|z(λ, ε)) − KL(λ) for fixed ε (Float64 differences)",
          arguments: Activation.allCases)
    func elboGradientMatchesReference(activation: Activation) {
        let s = Setup(activation: activation)
        let d = Self.shape.latentDim
        s.drawAndScore()
        s.latents.backward(rows: s.rows, params: s.params, toLatent: true)
        let g = HostMatrix(rows: Self.b, cols: 2 * d)
        s.latents.elboGradient(start: Self.start, lambda: s.lambda.matrix, into: g.matrix)

        let eps = (0..<Self.b).map { s.epsilon($0) }
        let lam0 = (0..<Self.b).flatMap { s.lambda.rowDouble($0) }
        var cmp = GradientComparison()
        for i in 0..<lam0.count {
            let fd = centralDifference({ s.referenceELBO($0, eps: eps) }, at: lam0, index: i, step: 1e-6)
            cmp.add(index: i, analytic: Double(g[i / (2 * d), i % (2 * d)]), reference: fd)
        }
        #expect(cmp.checked == Self.b * 2 * d)
        cmp.report(#function)
        #expect(cmp.worst <= 1e-4, "\(cmp)")
    }

    @Test("elboGradient matches differences of the workspace's own ELBO after re-drawing")
    func elboGradientMatchesRedrawnDifferences() {
        // End to end in Float32: perturb λ, draw again (same ε), score, and difference
        // f = Σ log p(x|z) − KL as computed by the library.
        let s = Setup(activation: .tanh)
        let d = Self.shape.latentDim
        s.drawAndScore()
        s.latents.backward(rows: s.rows, params: s.params, toLatent: true)
        let g = HostMatrix(rows: Self.b, cols: 2 * d)
        s.latents.elboGradient(start: Self.start, lambda: s.lambda.matrix, into: g.matrix)

        func f() -> Double {
            s.drawAndScore()
            var total = 0.0
            for i in 0..<Self.b {
                let lam = s.lambda.matrix.row(i)
                total += Double(s.latents.logLikelihood[Self.start + i])
                    - Double(Gaussian.klToStandard(mean: lam, logVariance: lam + d, count: d))
            }
            return total
        }
        let h: Float = 1e-2
        var cmp = GradientComparison()
        for i in 0..<Self.b {
            for c in 0..<(2 * d) {
                let saved = s.lambda[i, c]
                s.lambda[i, c] = saved + h
                let up = f()
                s.lambda[i, c] = saved - h
                let down = f()
                s.lambda[i, c] = saved
                let fd = (up - down) / (2 * Double(h))
                cmp.add(index: i * 2 * d + c, analytic: Double(g[i, c]), reference: fd)
            }
        }
        cmp.report(#function)
        #expect(cmp.worst <= 2e-2, "\(cmp)")
    }
}
