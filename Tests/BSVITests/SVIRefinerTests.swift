import BSVI
import Foundation
import Testing

/// The per-example update rules of SVI refinement (ascent): sgd, heavy-ball momentum, Adam,
/// and the per-example gradient-norm clip.
@Suite("SVI refinement update rules")
struct SVIRefinerTests {
    static let latentDim = 2
    static let width = 4

    static func lambdaStart() -> [Float] { [0.1, -0.2, -1, 0.3, 1.5, 0.4, -0.6, -2] }
    static let g1: [Float] = [2, -1, 0.5, 0.25, -0.3, 0.1, 4, -3]
    static let g2: [Float] = [-1, 0.5, 0.5, 2, 0.2, -0.4, 1, 1]

    /// Applies the gradients in order to a 2-row λ; returns λ after each step.
    static func run(_ settings: RefinementSettings, gradients: [[Float]], refiner: SVIRefiner? = nil) -> [[Float]] {
        let r = refiner ?? SVIRefiner(settings: settings, batchCapacity: 3, latentDim: latentDim)
        let lambda = HostMatrix(rows: 2, cols: width, values: lambdaStart())
        var states: [[Float]] = []
        for (t, g) in gradients.enumerated() {
            let grad = HostMatrix(rows: 2, cols: width, values: g)
            r.apply(gradient: grad.matrix, to: lambda.matrix, step: t + 1)
            states.append(lambda.buffer.array)
        }
        return states
    }

    @Test("sgd: λ ← λ + η·g exactly")
    func sgd() {
        let eta: Float = 0.125
        let states = Self.run(RefinementSettings(steps: 2, learningRate: eta, rule: .sgd), gradients: [Self.g1, Self.g2])
        let l0 = Self.lambdaStart()
        let l1 = (0..<8).map { l0[$0] + eta * Self.g1[$0] }
        let l2 = (0..<8).map { l1[$0] + eta * Self.g2[$0] }
        #expect(states[0] == l1)
        #expect(states[1] == l2)
    }

    @Test("clipNorm caps each example's step norm at η·clip and leaves small gradients alone")
    func clipping() {
        let eta: Float = 0.5, clip: Float = 1
        // Row 0 has norm √(4+1+0.25+0.0625) > 1; row 1 has norm < 1.
        let g: [Float] = [2, -1, 0.5, 0.25, 0.3, -0.2, 0.1, 0.4]
        let gradient = HostMatrix(rows: 2, cols: Self.width, values: g)
        let lambda = HostMatrix(rows: 2, cols: Self.width, values: Self.lambdaStart())
        let refiner = SVIRefiner(settings: RefinementSettings(steps: 1, learningRate: eta, rule: .sgd, clipNorm: clip),
                                 batchCapacity: 2, latentDim: Self.latentDim)
        refiner.apply(gradient: gradient.matrix, to: lambda.matrix, step: 1)
        let l0 = Self.lambdaStart()
        let norm0 = (0..<4).reduce(Float(0)) { $0 + g[$1] * g[$1] }.squareRoot()
        var stepNorm: Float = 0
        for c in 0..<4 {
            let step = lambda[0, c] - l0[c]
            stepNorm += step * step
            // Direction preserved.
            #expect(abs(step - eta * g[c] / norm0) <= 1e-6)
        }
        #expect(abs(stepNorm.squareRoot() - eta * clip) <= 1e-6)
        for c in 0..<4 { #expect(lambda[1, c] == l0[4 + c] + eta * g[4 + c]) }
        // The clip rescales the gradient in place (documented).
        let clippedNorm = (0..<4).reduce(Float(0)) { $0 + gradient[0, $1] * gradient[0, $1] }.squareRoot()
        #expect(abs(clippedNorm - clip) <= 1e-6)
        #expect(gradient.row(1) == Array(g[4..<8]))
    }

    @Test("clipNorm scales a gradient whose squared norm overflows Float down to the clip, not to zero")
    func clippingHugeGradient() {
        let eta: Float = 1, clip: Float = 1
        // Row 0: ‖g‖ ≈ 2e19 > √FLT_MAX, so Σ g² is +∞ in Float; row 1: an ordinary gradient.
        let g: [Float] = [2e19, 1, -3, 0.5, 0.3, -0.2, 0.1, 0.4]
        let gradient = HostMatrix(rows: 2, cols: Self.width, values: g)
        let lambda = HostMatrix(rows: 2, cols: Self.width, values: [Float](repeating: 0, count: 8))
        let refiner = SVIRefiner(settings: RefinementSettings(steps: 1, learningRate: eta, rule: .sgd, clipNorm: clip),
                                 batchCapacity: 2, latentDim: Self.latentDim)
        refiner.apply(gradient: gradient.matrix, to: lambda.matrix, step: 1)
        let norm = (0..<4).reduce(0.0) { $0 + Double(g[$1]) * Double(g[$1]) }.squareRoot()
        for c in 0..<4 {
            let expected = Double(g[c]) / norm
            #expect(abs(Double(lambda[0, c]) - expected) <= 1e-6 * max(1, abs(expected)), "λ[0, \(c)] = \(lambda[0, c]), expected \(expected)")
        }
        #expect(lambda[0, 0] > 0.99)
        for c in 0..<4 { #expect(lambda[1, c] == g[4 + c]) }

        // Entries near Float's largest: even a·‖g/a‖ = 2e38 would overflow; each is clipped to ½.
        let huge = HostMatrix(rows: 1, cols: Self.width, values: [Float](repeating: 1e38, count: 4))
        let at = HostMatrix(rows: 1, cols: Self.width, values: [Float](repeating: 0, count: 4))
        refiner.apply(gradient: huge.matrix, to: at.matrix, step: 1)
        for c in 0..<4 { #expect(abs(at[0, c] - 0.5) <= 1e-6, "λ[0, \(c)] = \(at[0, c])") }
    }

    @Test("clipping applies before momentum and Adam too", arguments: [RefinementRule.momentum, .adam])
    func clippingWithState(rule: RefinementRule) {
        let clip: Float = 0.5
        let clipped = RefinementSettings(steps: 2, learningRate: 0.1, rule: rule, momentum: 0.7, clipNorm: clip)
        let unclipped = RefinementSettings(steps: 2, learningRate: 0.1, rule: rule, momentum: 0.7)
        // Pre-clipping the gradients by hand must give the same trajectory.
        func clipRows(_ g: [Float]) -> [Float] {
            var out = g
            for r in 0..<2 {
                let n = (0..<4).reduce(Float(0)) { $0 + g[4 * r + $1] * g[4 * r + $1] }.squareRoot()
                if n > clip { for c in 0..<4 { out[4 * r + c] = g[4 * r + c] * (clip / n) } }
            }
            return out
        }
        let a = Self.run(clipped, gradients: [Self.g1, Self.g2])
        let b = Self.run(unclipped, gradients: [clipRows(Self.g1), clipRows(Self.g2)])
        for t in 0..<2 { for i in 0..<8 { #expect(abs(a[t][i] - b[t][i]) <= 1e-6) } }
    }

    @Test("momentum: m ← βm + g, λ ← λ + η·m for two steps")
    func momentum() {
        let eta = 0.2, beta = 0.6
        let states = Self.run(RefinementSettings(steps: 2, learningRate: Float(eta), rule: .momentum, momentum: Float(beta)),
                              gradients: [Self.g1, Self.g2])
        let l0 = Self.lambdaStart().map(Double.init)
        for i in 0..<8 {
            let m1 = Double(Self.g1[i])
            let l1 = l0[i] + eta * m1
            let m2 = beta * m1 + Double(Self.g2[i])
            let l2 = l1 + eta * m2
            #expect(abs(Double(states[0][i]) - l1) <= 1e-6)
            #expect(abs(Double(states[1][i]) - l2) <= 1e-6)
        }
    }

    @Test("adam: bias-corrected moments, β₁ = momentum, β₂ = 0.999, ε = 1e-8, for two steps")
    func adam() {
        let eta = 0.05, b1 = 0.8, b2 = 0.999, eps = 1e-8
        let states = Self.run(RefinementSettings(steps: 2, learningRate: Float(eta), rule: .adam, momentum: Float(b1)),
                              gradients: [Self.g1, Self.g2])
        let l0 = Self.lambdaStart().map(Double.init)
        for i in 0..<8 {
            var m = 0.0, v = 0.0, l = l0[i]
            for (t, g) in [Self.g1[i], Self.g2[i]].map(Double.init).enumerated() {
                m = b1 * m + (1 - b1) * g
                v = b2 * v + (1 - b2) * g * g
                let step = Double(t + 1)
                l += eta * (m / (1 - pow(b1, step))) / ((v / (1 - pow(b2, step))).squareRoot() + eps)
                #expect(abs(Double(states[t][i]) - l) <= 1e-5, "step \(t + 1) coordinate \(i)")
            }
        }
        // First step is ±η per coordinate.
        for i in 0..<8 { #expect(abs(abs(Double(states[0][i]) - l0[i]) - eta) <= 1e-5) }
    }

    @Test("reset clears the optimizer state; rows keep independent state", arguments: [RefinementRule.momentum, .adam])
    func resetAndIndependence(rule: RefinementRule) {
        let settings = RefinementSettings(steps: 2, learningRate: 0.1, rule: rule, momentum: 0.9)
        let refiner = SVIRefiner(settings: settings, batchCapacity: 2, latentDim: Self.latentDim)
        _ = Self.run(settings, gradients: [Self.g1, Self.g2], refiner: refiner)
        refiner.reset()
        let fresh = Self.run(settings, gradients: [Self.g2], refiner: refiner)
        let expected = Self.run(settings, gradients: [Self.g2])
        #expect(fresh == expected)
        // Row 1 with row 0's gradient changed: row 1's trajectory is unaffected.
        var other = Self.g1
        for c in 0..<4 { other[c] = -3 * other[c] }
        let a = Self.run(settings, gradients: [Self.g1, Self.g2])
        let b = Self.run(settings, gradients: [other, Self.g2])
        #expect(Array(a[1][4..<8]) == Array(b[1][4..<8]))
        #expect(Array(a[1][0..<4]) != Array(b[1][0..<4]))
    }
}
