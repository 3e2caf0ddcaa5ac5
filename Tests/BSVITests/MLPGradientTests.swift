import BSVI
import Foundation
import Testing

/// MLPWorkspace forward/backward against a Float64 reference and central differences of the
/// scalar objective J = Σ_r Σ_o c_ro · y_ro (the caller writes c into `outputDelta`, which
/// aliases the output).
@Suite("MLP forward and backward passes")
struct MLPGradientTests {
    static let hiddenShapes: [[Int]] = [[5], [4, 3], [18]]
    static let inputSize = 6
    static let outputSize = 3
    static let batch = 3
    /// The workspace is larger than the batch and the batch sits at rows 2..<5, so every
    /// pass is also checked for honouring its row range.
    static let capacity = 7
    static let rows = 2..<5

    /// Float32 gradients against exact Float64 central differences: the only error left is
    /// Float32 rounding (~1e-6 relative on these short sums); a wrong term is O(1).
    static let tolerance = 1e-4
    static let step = 1e-6

    struct Setup {
        let mlp: MLP
        let params: FloatBuffer
        let input: HostMatrix
        let c: [Double]
    }

    /// A random MLP, input batch and objective weights. For relu the parameters are redrawn
    /// until no hidden pre-activation lies within 1e-3 of the kink and both signs occur, so
    /// the finite differences are of a smooth function and the mask is exercised.
    static func setup(_ activation: Activation, hidden: [Int], seed: UInt64) -> Setup {
        var layout = ParameterLayout()
        let mlp = MLP(prefix: "net", sizes: [inputSize] + hidden + [outputSize], activation: activation,
                      layout: &layout)
        var values = TestValues(seed: seed, key: 2)
        let input = HostMatrix(rows: batch, cols: inputSize, values: values.floats(batch * inputSize, -1.5, 1.5))
        let c = values.floats(batch * outputSize, -1, 1).map(Double.init)
        for attempt in 0..<200 {
            var pv = TestValues(seed: seed &+ UInt64(attempt) &* 1000, key: 3)
            let params = FloatBuffer(pv.floats(layout.vectorLength, -1, 1))
            if activation != .relu { return Setup(mlp: mlp, params: params, input: input, c: c) }
            var pre = [Double]()
            for r in 0..<batch {
                _ = Reference.forward(mlp, params: params.doubles, input: input.rowDouble(r)) { pre += $0 }
            }
            if pre.allSatisfy({ abs($0) > 1e-3 }) && pre.contains(where: { $0 < 0 }) && pre.contains(where: { $0 > 0 }) {
                return Setup(mlp: mlp, params: params, input: input, c: c)
            }
        }
        fatalError("no relu parameters away from the kink")
    }

    static func objective(_ s: Setup, params: [Double], input: [[Double]], weights: [Double]? = nil) -> Double {
        var j = 0.0
        for r in 0..<batch {
            let y = Reference.forward(s.mlp, params: params, input: input[r])
            for o in 0..<outputSize { j += (weights?[r] ?? 1) * s.c[r * outputSize + o] * y[o] }
        }
        return j
    }

    static func inputRows(_ s: Setup) -> [[Double]] { (0..<batch).map { s.input.rowDouble($0) } }

    @Test("forward matches the Float64 reference", arguments: Activation.allCases, hiddenShapes)
    func forwardMatchesReference(activation: Activation, hidden: [Int]) {
        let s = Self.setup(activation, hidden: hidden, seed: 11)
        let ws = MLPWorkspace(mlp: s.mlp, capacity: Self.capacity)
        ws.output.fill(.nan)
        ws.forward(s.input.matrix, rows: Self.rows, params: s.params)
        for r in 0..<Self.batch {
            let expected = Reference.forward(s.mlp, params: s.params.doubles, input: s.input.rowDouble(r))
            for o in 0..<Self.outputSize {
                let got = Double(ws.output[Self.rows.lowerBound + r, o])
                #expect(abs(got - expected[o]) <= 1e-5 * max(1, abs(expected[o])), "row \(r) output \(o)")
            }
        }
        // Rows outside the range are untouched.
        for r in 0..<Self.capacity where !Self.rows.contains(r) {
            #expect(ws.output[r, 0].isNaN)
        }
    }

    @Test("weight and bias gradients match finite differences (all coordinates)",
          arguments: Activation.allCases, hiddenShapes)
    func weightGradients(activation: Activation, hidden: [Int]) {
        let s = Self.setup(activation, hidden: hidden, seed: 21)
        let ws = MLPWorkspace(mlp: s.mlp, capacity: Self.capacity)
        ws.forward(s.input.matrix, rows: Self.rows, params: s.params)
        for r in 0..<Self.batch {
            for o in 0..<Self.outputSize { ws.outputDelta[Self.rows.lowerBound + r, o] = Float(s.c[r * Self.outputSize + o]) }
        }
        ws.backward(rows: Self.rows, params: s.params, inputGradient: nil)
        // accumulate must add to what is already there.
        var prior = TestValues(seed: 5, key: 9)
        let initial = prior.floats(s.params.count, -3, 3)
        let grads = FloatBuffer(initial)
        ws.accumulateWeightGradients(input: s.input.matrix, rows: Self.rows, grads: grads)

        let p0 = s.params.doubles, x = Self.inputRows(s)
        var cmp = GradientComparison()
        for i in 0..<p0.count {
            let fd = centralDifference({ Self.objective(s, params: $0, input: x) }, at: p0, index: i, step: Self.step)
            cmp.add(index: i, analytic: Double(grads[i]) - Double(initial[i]), reference: fd)
        }
        #expect(cmp.checked == s.params.count)
        cmp.report(#function)
        #expect(cmp.worst <= Self.tolerance, "\(cmp)")
    }

    @Test("input gradient matches finite differences", arguments: Activation.allCases, hiddenShapes)
    func inputGradient(activation: Activation, hidden: [Int]) {
        let s = Self.setup(activation, hidden: hidden, seed: 31)
        let ws = MLPWorkspace(mlp: s.mlp, capacity: Self.capacity)
        ws.forward(s.input.matrix, rows: Self.rows, params: s.params)
        for r in 0..<Self.batch {
            for o in 0..<Self.outputSize { ws.outputDelta[Self.rows.lowerBound + r, o] = Float(s.c[r * Self.outputSize + o]) }
        }
        let g = HostMatrix(rows: Self.batch, cols: Self.inputSize)
        ws.backward(rows: Self.rows, params: s.params, inputGradient: g.matrix)

        let p = s.params.doubles
        var cmp = GradientComparison()
        for r in 0..<Self.batch {
            let x0 = s.input.rowDouble(r)
            for c in 0..<Self.inputSize {
                let fd = centralDifference({ row in
                    var rows = Self.inputRows(s)
                    rows[r] = row
                    return Self.objective(s, params: p, input: rows)
                }, at: x0, index: c, step: Self.step)
                cmp.add(index: r * Self.inputSize + c, analytic: Double(g[r, c]), reference: fd)
            }
        }
        cmp.report(#function)
        #expect(cmp.worst <= Self.tolerance, "\(cmp)")
    }

    @Test("row weights turn the weight gradient into a row-weighted sum", arguments: Activation.allCases)
    func weightedRows(activation: Activation) {
        let s = Self.setup(activation, hidden: [4, 3], seed: 41)
        let rowWeights: [Double] = [0.25, -1.5, 2]
        let ws = MLPWorkspace(mlp: s.mlp, capacity: Self.capacity)
        ws.forward(s.input.matrix, rows: Self.rows, params: s.params)
        for r in 0..<Self.batch {
            for o in 0..<Self.outputSize { ws.outputDelta[Self.rows.lowerBound + r, o] = Float(s.c[r * Self.outputSize + o]) }
        }
        ws.backward(rows: Self.rows, params: s.params, inputGradient: nil)
        let grads = FloatBuffer(count: s.params.count)
        let weights = FloatBuffer(rowWeights.map(Float.init))
        ws.accumulateWeightGradients(input: s.input.matrix, rows: Self.rows, grads: grads, rowWeights: weights.base)

        let p0 = s.params.doubles, x = Self.inputRows(s)
        var cmp = GradientComparison()
        for i in 0..<p0.count {
            let fd = centralDifference({ Self.objective(s, params: $0, input: x, weights: rowWeights) },
                                       at: p0, index: i, step: Self.step)
            cmp.add(index: i, analytic: Double(grads[i]), reference: fd)
        }
        cmp.report(#function)
        #expect(cmp.worst <= Self.tolerance, "\(cmp)")
    }

    @Test("activation derivatives written through the output equal f'(pre)", arguments: Activation.allCases)
    func activationDerivative(activation: Activation) {
        let pre: [Float] = [-6, -2.5, -0.7, -0.1, 0.2, 0.9, 3, 7]
        var y = pre
        activation.apply(&y, count: y.count)
        var delta = [Float](repeating: 1, count: pre.count)
        y.withUnsafeBufferPointer { out in
            delta.withUnsafeMutableBufferPointer { d in
                activation.multiplyByDerivative(d.baseAddress!, output: out.baseAddress!, count: pre.count)
            }
        }
        for i in 0..<pre.count {
            let v = Double(pre[i])
            #expect(abs(Double(y[i]) - Reference.activation(activation, v)) <= 1e-6 * max(1, abs(v)))
            let h = 1e-6
            let derivative = (Reference.activation(activation, v + h) - Reference.activation(activation, v - h)) / (2 * h)
            #expect(abs(Double(delta[i]) - derivative) <= 1e-5, "\(activation) at \(v)")
        }
    }
}
