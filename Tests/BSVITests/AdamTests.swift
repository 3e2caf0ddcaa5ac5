import BSVI
import CKernels
import Foundation
import Testing

/// Adam on a flat parameter vector (minimizing): p ← p − lr · m̂ / (√v̂ + ε).
@Suite("Adam optimizer")
struct AdamTests {
    @Test("the first step from zero state moves every parameter by lr against the gradient's sign")
    func firstStep() {
        let start: [Float] = [0.5, -1, 2, 0, 3, -0.25]
        let gradient: [Float] = [3, -0.02, 1e-3, -40, 0, 7]
        let params = FloatBuffer(start)
        let adam = Adam(parameterCount: start.count, learningRate: 0.01)
        gradient.withUnsafeBufferPointer { adam.update(params, gradient: $0.baseAddress!) }
        #expect(adam.step == 1)
        for i in 0..<start.count {
            let g = Double(gradient[i])
            // Bias-corrected: m̂ = g, v̂ = g², so the step is lr·g/(|g| + ε).
            let expected = Double(start[i]) - 0.01 * g / (abs(g) + 1e-8)
            #expect(abs(Double(params[i]) - expected) <= 1e-6, "parameter \(i)")
            if g != 0 { #expect(abs(abs(Double(params[i] - start[i])) - 0.01) <= 1e-5) }
        }
        #expect(params[4] == start[4])
    }

    @Test("gradientScale scales the gradient before the moments")
    func gradientScale() {
        let g: [Float] = [2, -4, 0.5]
        let p1 = FloatBuffer([1, 1, 1]), p2 = FloatBuffer([1, 1, 1])
        let a1 = Adam(parameterCount: 3, learningRate: 0.1), a2 = Adam(parameterCount: 3, learningRate: 0.1)
        let scaled = g.map { $0 * -0.25 }
        for _ in 0..<3 {
            g.withUnsafeBufferPointer { a1.update(p1, gradient: $0.baseAddress!, gradientScale: -0.25) }
            scaled.withUnsafeBufferPointer { a2.update(p2, gradient: $0.baseAddress!) }
        }
        #expect(p1.array == p2.array)
        #expect(a1.firstMoment.array == a2.firstMoment.array)
        // A negative scale turns ascent gradients into descent: parameters rise.
        #expect(p1[0] > 1 && p1[1] < 1)
    }

    @Test("three steps follow the Adam recurrences computed in Float64")
    func recurrences() {
        let lr = 0.05, b1 = 0.8, b2 = 0.99, eps = 1e-6
        let adam = Adam(parameterCount: 2, learningRate: Float(lr), beta1: Float(b1), beta2: Float(b2), epsilon: Float(eps))
        let params = FloatBuffer([0.3, -0.7])
        let gradients: [[Float]] = [[1, -2], [-0.5, -1], [0.25, 3]]
        var p = [0.3, -0.7], m = [0.0, 0], v = [0.0, 0]
        for (t, g) in gradients.enumerated() {
            g.withUnsafeBufferPointer { adam.update(params, gradient: $0.baseAddress!) }
            let step = Double(t + 1)
            for i in 0..<2 {
                m[i] = b1 * m[i] + (1 - b1) * Double(g[i])
                v[i] = b2 * v[i] + (1 - b2) * Double(g[i]) * Double(g[i])
                p[i] -= lr * (m[i] / (1 - pow(b1, step))) / ((v[i] / (1 - pow(b2, step))).squareRoot() + eps)
                #expect(abs(Double(adam.firstMoment[i]) - m[i]) <= 1e-6)
                #expect(abs(Double(adam.secondMoment[i]) - v[i]) <= 1e-6)
                #expect(abs(Double(params[i]) - p[i]) <= 1e-6, "step \(t + 1) parameter \(i)")
            }
        }
        #expect(adam.step == 3)
    }

    /// The vectorized update (8 lanes, plus the tail) rounds every operation as the scalar
    /// Float32 formula does: the results are bit-identical, so no CPU path changes a run.
    @Test("a long vector matches the scalar Float32 formula bit for bit", arguments: [1, 7, 8, 1001])
    func vectorizedMatchesScalar(count: Int) {
        var values = TestValues(seed: UInt64(count))
        let start = values.floats(count, -1, 1)
        let gradients = (0..<3).map { _ in values.floats(count, -5, 5) }
        let params = FloatBuffer(start)
        let adam = Adam(parameterCount: count, learningRate: 0.01)
        var p = start, m = [Float](repeating: 0, count: count), v = m
        let b1: Float = 0.9, b2: Float = 0.999, eps: Float = 1e-8, scale: Float = -0.3
        for (t, g) in gradients.enumerated() {
            g.withUnsafeBufferPointer { adam.update(params, gradient: $0.baseAddress!, gradientScale: scale) }
            let c1 = 1 - Float(pow(Double(b1), Double(t + 1))), c2 = 1 - Float(pow(Double(b2), Double(t + 1)))
            let stepSize = 0.01 / c1, inverseC2 = 1 / c2
            for i in 0..<count {
                let gi = g[i] * scale
                m[i] = b1 * m[i] + (1 - b1) * gi
                v[i] = b2 * v[i] + (1 - b2) * gi * gi
                p[i] = p[i] - stepSize * m[i] / ((v[i] * inverseC2).squareRoot() + eps)
            }
        }
        #expect(params.array == p)
        #expect(adam.firstMoment.array == m)
        #expect(adam.secondMoment.array == v)
    }

    /// `bench`'s floor for the update: it must touch exactly Adam's arrays, all n entries of each
    /// (the partial last vector included) and nothing past them.
    @Test("the traffic pass reads p, m, v, g and writes p, m, v over all n entries, none past", arguments: [1, 17, 37])
    func trafficPassTouchesAdamsArrays(count: Int) {
        var values = TestValues(seed: 40 + UInt64(count))
        let p0 = values.floats(count + 1, -1, 1), m0 = values.floats(count + 1, -1, 1)
        let v0 = values.floats(count + 1, 0, 1), g = values.floats(count + 1, -1, 1)
        let p = FloatBuffer(p0), m = FloatBuffer(m0), v = FloatBuffer(v0)
        g.withUnsafeBufferPointer { bsvi_update_traffic(count, p.base, m.base, v.base, $0.baseAddress!) }
        for i in 0..<count {  // x·0.5 is exact, so fused or not each value is rounded once: equal bits
            let mi = m0[i] * 0.5 + g[i]
            #expect(m[i] == mi && v[i] == v0[i] * 0.5 + g[i] && p[i] == p0[i] * 0.5 + mi, "entry \(i)")
        }
        #expect(p[count] == p0[count] && m[count] == m0[count] && v[count] == v0[count])
        #expect(Adam.trafficFloorSeconds(parameterCount: 100_000, repeats: 2) > 0)
    }

    @Test("minimizes an ill-conditioned quadratic")
    func minimizesQuadratic() {
        // f(p) = Σ a_i (p_i − t_i)², curvatures over four orders of magnitude.
        let a: [Float] = [100, 1, 0.01, 5]
        let target: [Float] = [1, -2, 0.5, 3]
        let params = FloatBuffer([-3, 4, -1, 0])
        let adam = Adam(parameterCount: 4, learningRate: 0.05)
        var gradient = [Float](repeating: 0, count: 4)
        func loss() -> Float { (0..<4).reduce(0) { $0 + a[$1] * (params[$1] - target[$1]) * (params[$1] - target[$1]) } }
        let initial = loss()
        for _ in 0..<3000 {
            for i in 0..<4 { gradient[i] = 2 * a[i] * (params[i] - target[i]) }
            gradient.withUnsafeBufferPointer { adam.update(params, gradient: $0.baseAddress!) }
        }
        for i in 0..<4 { #expect(abs(params[i] - target[i]) <= 1e-2, "parameter \(i) = \(params[i])") }
        #expect(loss() < 1e-4 * initial)
    }
}
