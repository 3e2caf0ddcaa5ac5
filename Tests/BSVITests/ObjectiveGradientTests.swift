import BSVI
import Foundation
import Testing

/// BatchObjective.accumulate against a Float64 re-implementation of each method's objective
/// (DESIGN.md §2), with the noise ε read back from the objective's workspace.
///
/// vae, iwae: bound is a deterministic function of all parameters for fixed noise, so the
/// whole gradient must be its total derivative.
/// svi, bsvi: the decoder gradient is ∇θ of bound with the refined samples z_j (and hence
/// log p(z_j) − log q(z_j; λ_j)) held constant; π-logit gradients are ∂bound/∂α; the
/// encoder gradient is ∇φ of the one-sample analytic-KL ELBO at λ₀ (elboInitial).
///
/// The gradient checks run on every hidden activation (tanh, relu, softplus) and with one and
/// two hidden layers (`networks`): the objective's own passes — the encoder's back-propagation on
/// its transposed kernels, the decoder's to z in every SVI step, the buffer's weighted weight
/// gradients — differ by activation and by depth.
@Suite("BatchObjective gradients")
struct ObjectiveGradientTests {
    static let shape = ModelShape(inputDim: 18, latentDim: 2, hiddenDims: [5], activation: .tanh)

    /// The hidden layers and activation of a fixture's encoder and decoder (input 18, latent 2).
    struct Network: Sendable, CustomTestStringConvertible {
        let activation: Activation
        let hidden: [Int]
        var testDescription: String { "\(activation) \(hidden.map(String.init).joined(separator: "-"))" }
        var shape: ModelShape {
            var s = ObjectiveGradientTests.shape
            s.activation = activation
            s.hiddenDims = hidden
            return s
        }
    }

    static let tanhOneLayer = Network(activation: .tanh, hidden: [5])
    static let networks: [Network] = [[5], [5, 4]].flatMap { hidden in Activation.allCases.map { Network(activation: $0, hidden: hidden) } }

    /// relu's kink: a fixture's hidden pre-activations (encoder on x, decoder on every sample z)
    /// all lie at least this far from 0, so central differences of step `step` (which move a
    /// pre-activation by ~1e-6) never cross it. The Float32 differences' larger step is checked
    /// coordinate by coordinate instead (`crossesKink`).
    static let kinkMargin = 1e-3
    static let ids = [4, 9, 1]
    static let noise = NoiseSource(seed: 99, purpose: .trainingNoise, context: 1)
    /// Float32 analytic gradients vs exact Float64 differences: Float32 rounding is ~1e-5
    /// relative here; any missing or wrong term is O(1).
    static let tolerance = 1e-3
    static let step = 1e-6

    struct Case: Sendable, CustomTestStringConvertible {
        let settings: ObjectiveSettings
        var testDescription: String {
            let s = settings
            switch s.method {
            case .vae: return "vae n=\(s.vaeSamples)"
            case .iwae: return "iwae k=\(s.k)"
            case .svi: return "svi k=\(s.k) η=\(s.refinement.learningRate) \(s.refinement.rule)"
            case .bsvi: return "bsvi π=\(s.pi) k=\(s.k) η=\(s.refinement.learningRate) \(s.refinement.rule)"
            }
        }

        static func make(_ method: TrainingMethod, k: Int, vaeSamples: Int = 1, pi: PiMode = .uniform,
                         eta: Float = 0, rule: RefinementRule = .sgd) -> Case {
            Case(settings: ObjectiveSettings(method: method, k: k, vaeSamples: vaeSamples, pi: pi,
                                             refinement: RefinementSettings(steps: k, learningRate: eta, rule: rule,
                                                                            momentum: 0.5, clipNorm: 0)))
        }
    }

    static let sampledCases: [Case] = [
        .make(.vae, k: 1, vaeSamples: 1), .make(.vae, k: 1, vaeSamples: 3),
        .make(.iwae, k: 1), .make(.iwae, k: 4),
    ]

    static let refinedCases: [Case] = {
        var cases: [Case] = []
        for (k, eta, rule) in [(0, Float(0), RefinementRule.sgd), (3, 0, .sgd), (3, 0.05, .sgd), (2, 0.03, .adam),
                               (2, 0.02, .momentum)] {
            cases.append(.make(.svi, k: k, eta: eta, rule: rule))
            for pi in PiMode.allCases { cases.append(.make(.bsvi, k: k, pi: pi, eta: eta, rule: rule)) }
        }
        return cases
    }()

    /// One model, batch and objective; `run` returns the statistics and the accumulated gradient.
    final class Fixture {
        let model: VAEModel
        let params: FloatBuffer
        let x: HostMatrix
        let objective: BatchObjective
        let settings: ObjectiveSettings
        let network: Network
        var b: Int { x.rows }

        /// For relu the parameters are redrawn (as in MLPGradientTests) until every hidden
        /// pre-activation of the run lies `kinkMargin` or more from the kink and both signs occur:
        /// the finite differences are then of a smooth function, and the mask is exercised.
        init(settings: ObjectiveSettings, network: Network = ObjectiveGradientTests.tanhOneLayer, seed: UInt64 = 1) {
            self.settings = settings
            self.network = network
            model = VAEModel(shape: network.shape, piCount: settings.piCount)
            params = randomParameters(model: model, seed: seed)
            var values = TestValues(seed: seed, key: 5)
            let ids = ObjectiveGradientTests.ids
            x = HostMatrix(rows: ids.count, cols: model.shape.inputDim, values: values.bits(ids.count * model.shape.inputDim))
            objective = BatchObjective(model: model, settings: settings, batchCapacity: 4)
            guard network.activation == .relu else { return }
            for attempt in 0..<200 {
                if attempt > 0 { params.copy(from: randomParameters(model: model, seed: seed &+ UInt64(attempt) &* 1000)) }
                _ = run()
                let pre = preActivations(params.doubles, z: (0..<(settings.rowsPerExample * b)).map { self.z(row: $0) })
                if pre.allSatisfy({ abs($0) >= ObjectiveGradientTests.kinkMargin }) && pre.contains(where: { $0 < 0 })
                    && pre.contains(where: { $0 > 0 }) { return }
            }
            fatalError("no relu parameters away from the kink")
        }

        /// Every hidden pre-activation of the reference passes at `p`: the encoder on each x, the
        /// decoder on each of `z`.
        func preActivations(_ p: [Double], z: [[Double]]) -> [Double] {
            var pre = [Double]()
            for i in 0..<b { _ = Reference.forward(model.encoder, params: p, input: x.rowDouble(i)) { pre += $0 } }
            for zr in z { _ = Reference.forward(model.decoder, params: p, input: zr) { pre += $0 } }
            return pre
        }

        /// Whether moving coordinate `i` by ±h flips a hidden pre-activation of the library's
        /// recomputed passes: the encoder on x and the decoder on z = μ + σε at λ₀ of the moved
        /// parameters, for the noise ε of every workspace row (row r belongs to example r mod b).
        func crossesKink(_ p: [Double], index i: Int, step h: Double, eps: [[Double]]) -> Bool {
            func signs(_ q: [Double]) -> [Bool] {
                let lambda = (0..<b).map { lambda0(q, example: $0) }
                let z = eps.indices.map { Reference.reparameterize(lambda[$0 % b], eps[$0]) }
                return preActivations(q, z: z).map { $0 > 0 }
            }
            var plus = p, minus = p
            plus[i] += h
            minus[i] -= h
            let at = signs(p)
            return signs(plus) != at || signs(minus) != at
        }

        /// `grads` (from the last `run`) against central differences of the library's own bound in
        /// Float32 at `coordinates`, the noise held fixed. relu: a step that crosses the kink
        /// differences two linear pieces, so such a coordinate is left out.
        func endToEndComparison(grads: FloatBuffer, coordinates: [Int], step h: Float) -> GradientComparison {
            let eps = (0..<(settings.rowsPerExample * b)).map { epsilon(row: $0) }, p0 = params.doubles
            let probe = FloatBuffer(count: params.count)
            var cmp = GradientComparison()
            for i in coordinates {
                if network.activation == .relu && crossesKink(p0, index: i, step: Double(h), eps: eps) { continue }
                probe.copy(from: params)
                probe[i] = params[i] + h
                let up = run(params: probe).0.bound
                probe[i] = params[i] - h
                let down = run(params: probe).0.bound
                cmp.add(index: i, analytic: Double(grads[i]), reference: (up - down) / (2 * Double(h)))
            }
            return cmp
        }

        func run(params p: FloatBuffer? = nil) -> (ObjectiveSums, FloatBuffer) {
            let grads = FloatBuffer(count: model.vectorLength)
            let stats = objective.accumulate(x: x.matrix, exampleIDs: ObjectiveGradientTests.ids,
                                             noise: ObjectiveGradientTests.noise, params: p ?? params, grads: grads)
            return (stats, grads)
        }

        /// ε of workspace row r (as left by the last `run`).
        func epsilon(row r: Int) -> [Double] {
            (0..<model.shape.latentDim).map { Double(objective.latents.epsilon[r, $0]) }
        }

        func z(row r: Int) -> [Double] {
            (0..<model.shape.latentDim).map { Double(objective.latents.z[r, $0]) }
        }

        func lambda0(_ p: [Double], example i: Int) -> [Double] {
            Reference.forward(model.encoder, params: p, input: x.rowDouble(i))
        }

        /// vae: mean_s log p(x|z_s) − KL; iwae: log mean_s w_s; at λ₀(φ), ε fixed.
        func sampledBound(_ p: [Double], eps: [[[Double]]]) -> Double {
            var total = 0.0
            let n = settings.rowsPerExample
            for i in 0..<b {
                let lam = lambda0(p, example: i)
                if settings.method == .vae {
                    var ll = 0.0
                    for s in 0..<n {
                        ll += Reference.logLikelihood(model: model, params: p, x: x.rowDouble(i),
                                                      z: Reference.reparameterize(lam, eps[s][i]))
                    }
                    total += ll / Double(n) - Reference.kl(lam)
                } else {
                    let lw = (0..<n).map { Reference.logWeight(model: model, params: p, x: x.rowDouble(i), lambda: lam, eps: eps[$0][i]) }
                    total += Reference.logSumExp(lw) - log(Double(n))
                }
            }
            return total
        }

        /// One-sample analytic-KL ELBO at λ₀(φ) with the given slot-0 noise.
        func initialELBO(_ p: [Double], eps: [[Double]]) -> Double {
            var total = 0.0
            for i in 0..<b {
                total += Reference.elbo(model: model, params: p, x: x.rowDouble(i), lambda: lambda0(p, example: i), eps: eps[i])
            }
            return total
        }

        /// log π_j from the parameter vector, as DESIGN.md defines the three modes.
        func logPi(_ p: [Double]) -> [Double] {
            let k = settings.k
            switch settings.pi {
            case .uniform: return [Double](repeating: -log(Double(k + 1)), count: k + 1)
            case .last: return (0...k).map { $0 == k ? 0 : -.infinity }
            case .learned:
                let t = model.piLogits!
                let alpha = (0..<t.count).map { p[t.offset + $0] }
                let lse = Reference.logSumExp(alpha)
                return alpha.map { $0 - lse }
            }
        }

        /// svi: Σ_i log w_ik; bsvi: Σ_i log Σ_j π_j w_ij; with z_ij and the density terms
        /// log p(z) − log q(z; λ_j) fixed, so a function of θ (and α) only.
        func refinedBound(_ p: [Double], z: [[[Double]]], densityTerms c: [[Double]]) -> Double {
            let k = settings.k
            var total = 0.0
            for i in 0..<b {
                let logW = (0...k).map { j in
                    Reference.logLikelihood(model: model, params: p, x: x.rowDouble(i), z: z[j][i]) + c[j][i]
                }
                if settings.method == .svi {
                    total += logW[k]
                } else {
                    let lp = logPi(p)
                    total += Reference.logSumExp((0...k).map { lp[$0] + logW[$0] })
                }
            }
            return total
        }
    }

    @Test("vae and iwae: bound and its gradient w.r.t. every parameter", arguments: sampledCases, networks)
    func sampledObjective(testCase: Case, network: Network) {
        let f = Fixture(settings: testCase.settings, network: network)
        let (stats, grads) = f.run()
        let n = testCase.settings.rowsPerExample
        let eps = (0..<n).map { s in (0..<f.b).map { f.epsilon(row: s * f.b + $0) } }
        let p0 = f.params.doubles

        let bound = f.sampledBound(p0, eps: eps)
        #expect(stats.examples == f.b)
        #expect(abs(stats.bound - bound) <= 1e-4 * max(1, abs(bound)), "bound \(stats.bound) vs \(bound)")
        if testCase.settings.method == .vae {
            // vae reports its n-sample ELBO (the bound itself) as the ELBO at λ₀.
            #expect(stats.elboInitial == stats.bound)
        } else {
            let elbo0 = f.initialELBO(p0, eps: eps[0])
            #expect(abs(stats.elboInitial - elbo0) <= 1e-4 * max(1, abs(elbo0)))
        }
        #expect(stats.elboRefined == stats.elboInitial)

        var cmp = GradientComparison()
        for i in parameterIndices(f.model) {
            let fd = centralDifference({ f.sampledBound($0, eps: eps) }, at: p0, index: i, step: Self.step)
            cmp.add(index: i, analytic: Double(grads[i]), reference: fd)
        }
        #expect(cmp.checked == f.model.layout.parameterCount)
        cmp.report(#function)
        #expect(cmp.worst <= Self.tolerance, "\(cmp)")
    }

    @Test("vae and iwae: gradient matches Float32 differences of the library's own bound", arguments: sampledCases, networks)
    func sampledObjectiveEndToEnd(testCase: Case, network: Network) {
        // No reference code involved: perturb a parameter, call accumulate again (same noise).
        let f = Fixture(settings: testCase.settings, network: network, seed: 2)
        let (_, grads) = f.run()
        let h: Float = 5e-3
        let coords = coordinateSubset(parameterIndices(f.model), limit: 40, seed: 3)
        let cmp = f.endToEndComparison(grads: grads, coordinates: coords, step: h)
        #expect(cmp.checked >= 30)
        cmp.report(#function)
        #expect(cmp.worst <= 2e-2, "\(cmp)")
    }

    @Test("svi and bsvi: decoder gradient is ∇θ of the bound with λ_j fixed, π-logit gradient is ∂bound/∂α, encoder gradient is ∇φ of the ELBO at λ₀",
          arguments: refinedCases, networks)
    func refinedObjective(testCase: Case, network: Network) {
        let f = Fixture(settings: testCase.settings, network: network)
        let k = testCase.settings.k
        let (stats, grads) = f.run()
        let lat = f.objective.latents
        // Step j's sample sits in block(ofStep: j): j for bsvi; svi keeps λ₀'s and λ_k's only.
        let block = (0...k).map { f.objective.refinement!.block(ofStep: $0) }
        let z = (0...k).map { j in (0..<f.b).map { f.z(row: block[j] * f.b + $0) } }
        let c = (0...k).map { j in (0..<f.b).map { Double(lat.logWeight[block[j] * f.b + $0]) - Double(lat.logLikelihood[block[j] * f.b + $0]) } }
        let eps0 = (0..<f.b).map { f.epsilon(row: $0) }
        let p0 = f.params.doubles

        // Block 0 is the sample at the encoder's λ₀.
        for i in 0..<f.b {
            let z0 = Reference.reparameterize(f.lambda0(p0, example: i), eps0[i])
            for cc in 0..<z0.count { #expect(abs(z[0][i][cc] - z0[cc]) <= 1e-5 * max(1, abs(z0[cc]))) }
        }
        if testCase.settings.refinement.learningRate == 0 {
            // No refinement: every kept sample is one at λ₀ with its own noise (svi keeps λ₀'s
            // and λ_k's only).
            for j in testCase.settings.method == .svi ? [0, k] : Array(0...k) {
                for i in 0..<f.b {
                    let zj = Reference.reparameterize(f.lambda0(p0, example: i), f.epsilon(row: block[j] * f.b + i))
                    for cc in 0..<zj.count { #expect(abs(z[j][i][cc] - zj[cc]) <= 1e-5 * max(1, abs(zj[cc]))) }
                }
            }
        }

        let bound = f.refinedBound(p0, z: z, densityTerms: c)
        #expect(abs(stats.bound - bound) <= 1e-4 * max(1, abs(bound)), "bound \(stats.bound) vs \(bound)")
        let elbo0 = f.initialELBO(p0, eps: eps0)
        #expect(abs(stats.elboInitial - elbo0) <= 1e-4 * max(1, abs(elbo0)))

        var decoderCmp = GradientComparison(), encoderCmp = GradientComparison(), piCmp = GradientComparison()
        for i in parameterIndices(f.model) {
            if isEncoderParameter(f.model, i) {
                let fd = centralDifference({ f.initialELBO($0, eps: eps0) }, at: p0, index: i, step: Self.step)
                encoderCmp.add(index: i, analytic: Double(grads[i]), reference: fd)
            } else {
                let fd = centralDifference({ f.refinedBound($0, z: z, densityTerms: c) }, at: p0, index: i, step: Self.step)
                if isDecoderParameter(f.model, i) {
                    decoderCmp.add(index: i, analytic: Double(grads[i]), reference: fd)
                } else {
                    piCmp.add(index: i, analytic: Double(grads[i]), reference: fd)
                }
            }
        }
        #expect(encoderCmp.checked > 0 && decoderCmp.checked > 0)
        #expect(piCmp.checked == testCase.settings.piCount)
        decoderCmp.report(#function)
        #expect(decoderCmp.worst <= Self.tolerance, "decoder: \(decoderCmp)")
        encoderCmp.report(#function)
        #expect(encoderCmp.worst <= Self.tolerance, "encoder: \(encoderCmp)")
        piCmp.report(#function)
        #expect(piCmp.worst <= Self.tolerance, "π logits: \(piCmp)")
    }

    @Test("svi and bsvi with η = 0: decoder and π gradients match Float32 differences of the library's bound",
          arguments: refinedCases.filter { $0.settings.refinement.learningRate == 0 }, networks)
    func refinedObjectiveEndToEnd(testCase: Case, network: Network) {
        // With η = 0 every λ_j = λ₀, which does not depend on θ or α: bound is then a
        // function of θ and α whose total derivative the objective must return.
        let f = Fixture(settings: testCase.settings, network: network, seed: 2)
        let (_, grads) = f.run()
        let h: Float = 5e-3
        let candidates = parameterIndices(f.model).filter { !isEncoderParameter(f.model, $0) }
        let coords = coordinateSubset(candidates, limit: 40, seed: 4)
        // Every kept sample is z = μ + σε at λ₀ with its row's noise (η = 0).
        let cmp = f.endToEndComparison(grads: grads, coordinates: coords, step: h)
        #expect(cmp.checked >= 30)
        cmp.report(#function)
        #expect(cmp.worst <= 2e-2, "\(cmp)")
    }

    @Test("learned π: ∂/∂α_j = Σ_i (ŵ_ij − π_j), which sums to zero over j")
    func piLogitGradientSumsToZero() {
        let f = Fixture(settings: Case.make(.bsvi, k: 3, pi: .learned, eta: 0.05).settings)
        let (_, grads) = f.run()
        let t = f.model.piLogits!
        #expect(t.count == 4)
        let g = (0..<t.count).map { Double(grads[t.offset + $0]) }
        #expect(abs(g.reduce(0, +)) <= 1e-5 * Double(f.b))
        #expect(g.contains { abs($0) > 1e-3 })
        // Each component lies in (−b, b): it is a sum of b differences of probabilities.
        #expect(g.allSatisfy { abs($0) < Double(f.b) })
    }

    @Test("accumulate adds to the gradient and is additive over examples",
          arguments: [Case.make(.vae, k: 1, vaeSamples: 2), .make(.iwae, k: 3), .make(.svi, k: 2, eta: 0.05),
                      .make(.bsvi, k: 2, pi: .learned, eta: 0.05, rule: .adam)])
    func additiveOverExamples(testCase: Case) {
        let f = Fixture(settings: testCase.settings)
        let (whole, wholeGrads) = f.run()
        // The same examples as two batches ([1] then [0, 2]) into one gradient buffer: the noise
        // is keyed by example id, so the sums must agree with the single batch.
        let grads = FloatBuffer(count: f.model.vectorLength)
        var split = ObjectiveSums()
        for part in [[1], [0, 2]] {
            let xs = HostMatrix(rows: part.count, cols: f.x.cols, values: part.flatMap { f.x.row($0) })
            split.add(f.objective.accumulate(x: xs.matrix, exampleIDs: part.map { Self.ids[$0] }, noise: Self.noise,
                                             params: f.params, grads: grads))
        }
        #expect(split.examples == whole.examples)
        #expect(abs(split.bound - whole.bound) <= 1e-5 * max(1, abs(whole.bound)))
        #expect(abs(split.elboInitial - whole.elboInitial) <= 1e-5 * max(1, abs(whole.elboInitial)))
        #expect(abs(split.elboRefined - whole.elboRefined) <= 1e-5 * max(1, abs(whole.elboRefined)))
        var worst: Float = 0
        for i in 0..<grads.count { worst = max(worst, abs(grads[i] - wholeGrads[i]) / max(1, abs(wholeGrads[i]))) }
        #expect(worst <= 1e-5)
        #expect(wholeGrads.array.contains { $0 != 0 })
    }

    /// The training step never zeroes its gradient buffer: `overwrite` must write every entry
    /// (encoder and decoder through their weight-gradient products, π's logits zeroed first), so
    /// a buffer full of NaN gives the bits of accumulating into zeros. A tensor the objective
    /// forgot would keep its NaN.
    @Test("accumulate with overwrite sets every gradient entry: the bits of accumulating into zeros",
          arguments: [Case.make(.vae, k: 1, vaeSamples: 2), .make(.iwae, k: 3), .make(.svi, k: 2, eta: 0.05), .make(.svi, k: 0),
                      .make(.bsvi, k: 2, pi: .learned, eta: 0.05, rule: .adam), .make(.bsvi, k: 0, pi: .learned),
                      .make(.bsvi, k: 2, eta: 0.05)], KernelPath.supported)
    func overwriteSetsEveryEntry(testCase: Case, path: KernelPath) {
        onPath(path) {
            let f = Fixture(settings: testCase.settings)
            let (addedStats, added) = f.run()
            let written = FloatBuffer([Float](repeating: .nan, count: f.model.vectorLength))
            let writtenStats = f.objective.accumulate(x: f.x.matrix, exampleIDs: Self.ids, noise: Self.noise, params: f.params,
                                                      grads: written, overwrite: true)
            #expect(writtenStats == addedStats)
            for tensor in f.model.layout.tensors {
                let range = tensor.range
                let differing = range.filter { written[$0].bitPattern != added[$0].bitPattern }.count
                #expect(differing == 0, "\(tensor.name): \(differing) of \(tensor.count) entries differ")
            }
            #expect(testCase.settings.pi != .learned || f.model.piLogits != nil, "the learned-π cases must cover π's logits")
        }
    }
}
