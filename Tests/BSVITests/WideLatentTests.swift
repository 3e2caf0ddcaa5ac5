import BSVI
import Foundation
import Testing

/// The latent kernels (draw_latents, log_weights, kl_to_standard, elbo_gradient, refine_step) at
/// latent dimensions where they take their full-vector branches: d = 16 (one whole 16-lane
/// vector, one block of normals), d = 33 and d = 50 (whole vectors plus a partial one, and a second
/// block of 32 normals per noise slot). The tests with d ≤ 5 see only partial vectors, and the
/// kernel-path comparisons run one source on every path, so a bug shared by the paths would pass
/// them: here each result is held to a Float64 reference (TestSupport's `Reference`) or to
/// central differences.
@Suite("Latent kernels at wide latent dimensions")
struct WideLatentTests {
    static let dimensions = [16, 33, 50]
    static let inputDim = 12
    static let b = 3
    static let ids = [8, 31, 2]
    /// The batch's rows sit at 3..<6 of a 9-row workspace: rows outside must stay untouched.
    static let start = 3
    static let capacity = 9
    static let noise = NoiseSource(seed: 13, purpose: .trainingNoise, context: 5)

    final class Setup {
        let d: Int
        let model: VAEModel
        let params: FloatBuffer
        let x: HostMatrix
        let lambda: HostMatrix
        let latents: LatentWorkspace

        init(latentDim d: Int, activation: Activation = .tanh) {
            self.d = d
            model = VAEModel(shape: ModelShape(inputDim: WideLatentTests.inputDim, latentDim: d, hiddenDims: [6],
                                               activation: activation))
            // Scale 0.3: with 50 latents feeding each hidden unit, the pre-activations stay O(1).
            params = randomParameters(model: model, seed: 17, scale: 0.3)
            var values = TestValues(seed: 18, key: UInt64(d))
            x = HostMatrix(rows: b, cols: WideLatentTests.inputDim, values: values.bits(b * WideLatentTests.inputDim))
            var lam = [Float]()
            for _ in 0..<b { lam += values.floats(d, -1, 1) + values.floats(d, -1.5, 0.5) }
            lambda = HostMatrix(rows: b, cols: 2 * d, values: lam)
            latents = LatentWorkspace(model: model, capacity: WideLatentTests.capacity)
            latents.useParameters(params)
        }

        var rows: Range<Int> { start..<(start + b) }

        func draw(slot: Int, start: Int = WideLatentTests.start) {
            latents.draw(lambda: lambda.matrix, start: start, slot: slot, exampleIDs: ids, noise: noise)
        }

        func epsilon(row r: Int) -> [Double] { (0..<d).map { Double(latents.epsilon[r, $0]) } }
        func z(row r: Int) -> [Double] { (0..<d).map { Double(latents.z[r, $0]) } }

        /// Slot `slot` of example `i`'s stream, as the stream itself draws it.
        func streamNormals(example i: Int, slot: Int) -> [Float] {
            var out = [Float](repeating: .nan, count: d)
            noise.stream(example: ids[i]).fillNormals(&out, count: d,
                                                      counterOffset: UInt64(slot * RandomStream.countersNeeded(forNormals: d)))
            return out
        }

        /// f(λ) = Σ_i log p(x_i | μ_i + exp(ℓ_i/2) ⊙ ε_i) − KL(λ_i) in Float64, for fixed ε.
        func referenceELBO(_ lam: [Double], eps: [[Double]]) -> Double {
            let p = params.doubles
            var f = 0.0
            for i in 0..<b {
                f += Reference.elbo(model: model, params: p, x: x.rowDouble(i), lambda: Array(lam[(i * 2 * d)..<((i + 1) * 2 * d)]),
                                    eps: eps[i])
            }
            return f
        }
    }

    /// Float32 against Float64 for a value summed from terms of total magnitude `scale`: rounding
    /// (2⁻²⁴ a term, ≤ 64 terms a sum) and the kernels' exp (≤ 2e-7 relative) stay below 1e-5 of
    /// the terms' total; a wrong, missing or repeated term (a lane of a vector) is O(1).
    static func close(_ value: Double, _ reference: Double, scale: Double) -> Bool {
        abs(value - reference) <= 1e-5 * max(1, scale)
    }

    @Test("draw: ε of a wide row is slot j of the example's stream, z = μ + exp(ℓ/2)·ε, nothing written outside the rows",
          arguments: dimensions)
    func drawIsReparameterized(d: Int) {
        let s = Setup(latentDim: d)
        s.latents.epsilon.fill(.nan)
        s.latents.z.fill(.nan)
        let slot = 3
        s.draw(slot: slot)
        for i in 0..<Self.b {
            let r = Self.start + i
            let eps = s.epsilon(row: r)
            #expect(eps.map(Float.init) == s.streamNormals(example: i, slot: slot), "d = \(d), example \(i)")
            #expect(eps.allSatisfy { $0.isFinite && $0 != 0 }, "d = \(d), example \(i): \(eps)")
            let expected = Reference.reparameterize(s.lambda.rowDouble(i), eps)
            let z = s.z(row: r)
            for c in 0..<d {
                #expect(abs(z[c] - expected[c]) <= 1e-6 * max(1, abs(expected[c])), "d = \(d), example \(i), latent \(c)")
            }
        }
        // The rows of the other blocks are untouched (a partial vector's store stays in its row).
        for r in 0..<Self.capacity where !s.rows.contains(r) {
            for c in 0..<d {
                #expect(s.latents.epsilon[r, c].isNaN && s.latents.z[r, c].isNaN, "d = \(d): row \(r) latent \(c) written")
            }
        }
    }

    @Test("noise slots j and j + 1 of a wide row never share a counter: no value of one reappears in the other",
          arguments: dimensions)
    func slotsAreDisjoint(d: Int) {
        let s = Setup(latentDim: d)
        // A slot of d > 32 normals spans two blocks of 32 (16 counters each). Were slot j + 1 to
        // start inside slot j's counters (a stride of fewer than countersNeeded(d) counters), its
        // first values would repeat slot j's last ones: with a stride of one block, one value for
        // d = 33 and eighteen for d = 50.
        // Distinct counters give independent continuous values, so any repeat is a shared
        // counter (a chance equality of two Float32 normals has probability ~1e-8 a pair; these
        // are ~1e5 pairs).
        var previous: [[Float]] = []
        for slot in 0..<24 {
            s.draw(slot: slot, start: 0)
            let current = (0..<Self.b).map { r in (0..<d).map { s.latents.epsilon[r, $0] } }
            for i in 0..<Self.b {
                #expect(Set(current[i]).count == d, "d = \(d), example \(i), slot \(slot): a value repeats within the slot")
                if slot > 0 {
                    #expect(Set(previous[i]).isDisjoint(with: current[i]),
                            "d = \(d), example \(i): slots \(slot - 1) and \(slot) share values")
                }
            }
            // Different examples' streams differ too.
            #expect(Set(current).count == Self.b, "d = \(d), slot \(slot)")
            previous = current
        }
    }

    @Test("log w and KL of wide rows match the Float64 reference (two blocks of rows from one λ)",
          arguments: dimensions)
    func logWeightAndKL(d: Int) {
        let s = Setup(latentDim: d, activation: .softplus)
        // Slots 0 and 1 into rows 0..<b and b..<2b, scored together: row r reads λ row r mod b.
        s.draw(slot: 0, start: 0)
        s.draw(slot: 1, start: Self.b)
        let rows = 0..<(2 * Self.b)
        s.latents.score(rows: rows, x: s.x.matrix, lambda: s.lambda.matrix, params: s.params)
        let scored = rows.map { s.latents.logWeight[$0] }
        s.latents.logWeight.zero()
        s.latents.scoreLogWeights(rows: rows, x: s.x.matrix, lambda: s.lambda.matrix, params: s.params)
        let evaluated = rows.map { s.latents.logWeight[$0] }
        let p = s.params.doubles
        for r in rows {
            let i = r % Self.b
            let lam = s.lambda.rowDouble(i), eps = s.epsilon(row: r)
            let z = Reference.reparameterize(lam, eps)
            let logLikelihood = Reference.logLikelihood(model: s.model, params: p, x: s.x.rowDouble(i), z: z)
            let expected = Reference.logWeight(model: s.model, params: p, x: s.x.rowDouble(i), lambda: lam, eps: eps)
            var scale = abs(logLikelihood)
            for c in 0..<d { scale += 0.5 * (abs(lam[d + c]) + eps[c] * eps[c] + z[c] * z[c]) }
            #expect(Self.close(Double(scored[r]), expected, scale: scale), "d = \(d), row \(r): score \(scored[r]) vs \(expected)")
            #expect(Self.close(Double(evaluated[r]), expected, scale: scale),
                    "d = \(d), row \(r): scoreLogWeights \(evaluated[r]) vs \(expected)")
        }

        // KL of the b rows at once, and of one row through the single-row entry point.
        var kl = [Float](repeating: .nan, count: Self.b)
        kl.withUnsafeMutableBufferPointer { Gaussian.klToStandard(lambda: s.lambda.matrix, into: $0.baseAddress!) }
        for i in 0..<Self.b {
            let lam = s.lambda.rowDouble(i)
            let expected = Reference.kl(lam)
            var scale = 0.0
            for c in 0..<d { scale += 0.5 * (exp(lam[d + c]) + lam[c] * lam[c] + 1 + abs(lam[d + c])) }
            #expect(Self.close(Double(kl[i]), expected, scale: scale), "d = \(d), row \(i): KL \(kl[i]) vs \(expected)")
            let row = s.lambda.matrix.row(i)
            let single = Gaussian.klToStandard(mean: row, logVariance: row + d, count: d)
            #expect(Self.close(Double(single), expected, scale: scale), "d = \(d), row \(i): one-row KL \(single) vs \(expected)")
        }
        // At the prior every term is exactly 0.
        let prior = HostMatrix(rows: 2, cols: 2 * d)
        var zero: [Float] = [.nan, .nan]
        zero.withUnsafeMutableBufferPointer { Gaussian.klToStandard(lambda: prior.matrix, into: $0.baseAddress!) }
        #expect(zero == [0, 0], "d = \(d)")
    }

    @Test("elboGradient of wide rows is ∇λ of log p(x|z(λ, ε)) − KL(λ) (Float64 central differences)",
          arguments: dimensions)
    func elboGradient(d: Int) {
        let s = Setup(latentDim: d)
        s.draw(slot: 2)
        s.latents.score(rows: s.rows, x: s.x.matrix, lambda: s.lambda.matrix, params: s.params)
        s.latents.backward(rows: s.rows, params: s.params, toLatent: true)
        // One spare row after the b gradient rows: it must stay untouched.
        let g = HostMatrix(rows: Self.b + 1, cols: 2 * d)
        g.matrix.fill(.nan)
        s.latents.elboGradient(start: Self.start, lambda: s.lambda.matrix, into: g.matrix.rows(0..<Self.b))
        #expect(g.row(Self.b).allSatisfy { $0.isNaN }, "d = \(d): the row after the gradient was written")

        let eps = (0..<Self.b).map { s.epsilon(row: Self.start + $0) }
        let lam0 = (0..<Self.b).flatMap { s.lambda.rowDouble($0) }
        var cmp = GradientComparison()
        for i in 0..<lam0.count {
            let fd = centralDifference({ s.referenceELBO($0, eps: eps) }, at: lam0, index: i, step: 1e-6)
            cmp.add(index: i, analytic: Double(g[i / (2 * d), i % (2 * d)]), reference: fd)
        }
        #expect(cmp.checked == Self.b * 2 * d)
        cmp.report("\(#function) d = \(d)")
        // As LatentELBOGradientTests: Float32 rounding is ~1e-6 relative here; a wrong term is O(1).
        #expect(cmp.worst <= 1e-4, "d = \(d): \(cmp)")
    }

    @Test("refine_step on rows of width 2d: sgd, momentum and Adam with the per-example clip, against Float64",
          arguments: dimensions, RefinementRule.allCases)
    func refineStep(d: Int, rule: RefinementRule) {
        let width = 2 * d, eta = 0.05, beta = 0.7, clip = 1.5
        let settings = RefinementSettings(steps: 2, learningRate: Float(eta), rule: rule, momentum: Float(beta),
                                          clipNorm: Float(clip))
        let refiner = SVIRefiner(settings: settings, batchCapacity: 2, latentDim: d)
        var values = TestValues(seed: 19, key: UInt64(width))
        let start = values.floats(2 * width, -1.5, 1.5)
        // Row 0's gradient has norm ≈ 0.58·√width ≥ 3.3 > clip (clipped); row 1's ≈ 0.006·√width ≤ 0.06 (not).
        let gradients = (0..<2).map { _ in values.floats(width, -1, 1) + values.floats(width, -0.1, 0.1).map { $0 * 0.1 } }
        // A third λ row after the two refined ones must stay untouched.
        let lambda = HostMatrix(rows: 3, cols: width, values: start + [Float](repeating: .nan, count: width))

        var reference = start.map(Double.init)
        var m = [Double](repeating: 0, count: 2 * width), v = m
        for (t, g) in gradients.enumerated() {
            let gradient = HostMatrix(rows: 2, cols: width, values: g)
            refiner.apply(gradient: gradient.matrix, to: lambda.matrix.rows(0..<2), step: t + 1)
            let step = Double(t + 1)
            for r in 0..<2 {
                let row = (0..<width).map { Double(g[r * width + $0]) }
                let norm = row.reduce(0) { $0 + $1 * $1 }.squareRoot()
                let clipped = norm > clip ? row.map { $0 * clip / norm } : row
                #expect((r == 0) == (norm > clip), "d = \(d): the test's gradients must clip row 0 only")
                for c in 0..<width {
                    let i = r * width + c, gc = clipped[c]
                    switch rule {
                    case .sgd:
                        reference[i] += eta * gc
                    case .momentum:
                        m[i] = beta * m[i] + gc
                        reference[i] += eta * m[i]
                    case .adam:
                        m[i] = beta * m[i] + (1 - beta) * gc
                        v[i] = 0.999 * v[i] + 0.001 * gc * gc
                        reference[i] += eta * (m[i] / (1 - pow(beta, step))) / ((v[i] / (1 - pow(0.999, step))).squareRoot() + 1e-8)
                    }
                    // The clip rescales the gradient in place.
                    #expect(abs(Double(gradient[r, c]) - gc) <= 1e-6 * max(1, abs(gc)), "d = \(d), step \(t + 1), row \(r), entry \(c)")
                }
            }
            var worst = 0.0
            for i in 0..<(2 * width) {
                worst = max(worst, abs(Double(lambda[i / width, i % width]) - reference[i]) / max(1, abs(reference[i])))
            }
            // Float32 state and arithmetic against Float64: a few ulps of λ (~1e-7); a lane updated
            // twice, not at all, or with another row's state is off by ~η.
            #expect(worst <= 1e-5, "d = \(d), \(rule), step \(t + 1): worst relative error \(worst)")
        }
        #expect(lambda.row(2).allSatisfy { $0.isNaN }, "d = \(d): the row after the refined ones was written")
    }

    @Test("the SVI loop at wide d: step j draws slot j and moves λ by η·∇ELBO(λ_j) (Float64 reference)",
          arguments: dimensions)
    func refinementFollowsTheRecurrence(d: Int) {
        let s = Setup(latentDim: d)
        let eta: Float = 0.05, k = 3
        let refinement = SVIRefinement(model: s.model, settings: RefinementSettings(steps: k, learningRate: eta, rule: .sgd),
                                       batchCapacity: Self.b)
        let lambda = HostMatrix(rows: Self.b, cols: 2 * d, values: s.lambda.buffer.array)
        var seen: [(lambda: [Double], epsilon: [[Double]], gradient: [Float])] = []
        refinement.run(lambda.matrix, x: s.x.matrix, ids: Self.ids, noise: Self.noise, params: s.params) { step in
            let eps = (0..<Self.b).map { i in (0..<d).map { Double(refinement.latents.epsilon[step.rows.lowerBound + i, $0]) } }
            seen.append((step.lambda.array.map(Double.init), eps, step.elboGradient!.array))
        }
        #expect(seen.count == k)
        let final = lambda.buffer.array.map(Double.init)
        var cmp = GradientComparison(), moves = GradientComparison()
        for (j, step) in seen.enumerated() {
            #expect(step.epsilon.indices.allSatisfy { step.epsilon[$0].map(Float.init) == s.streamNormals(example: $0, slot: j) },
                    "d = \(d), step \(j): ε is not slot \(j)")
            let next = j + 1 < k ? seen[j + 1].lambda : final
            for i in 0..<(Self.b * 2 * d) {
                let fd = centralDifference({ s.referenceELBO($0, eps: step.epsilon) }, at: step.lambda, index: i, step: 1e-6)
                cmp.add(index: i, analytic: Double(step.gradient[i]), reference: fd)
                moves.add(index: i, analytic: (next[i] - step.lambda[i]) / Double(eta), reference: fd)
            }
        }
        cmp.report("\(#function) d = \(d) gradient")
        moves.report("\(#function) d = \(d) step")
        #expect(cmp.worst <= 1e-4, "d = \(d), gradient: \(cmp)")
        // λ_{j+1} − λ_j = η·g rounded to λ's ulp (~1e-7 / η = 2e-6 relative to g).
        #expect(moves.worst <= 1e-4, "d = \(d), step: \(moves)")
    }
}
