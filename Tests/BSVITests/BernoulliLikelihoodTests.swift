import BSVI
import CKernels
import Foundation
import Testing

/// log p(x|a) = Σ x a − softplus(a) and its error x − sigmoid(a), for extreme and ordinary
/// logits, on every kernel path. (The kernels' e^−|a| is clamped at e^−87.3 ≈ 1.2e-38, so a
/// term that is exactly 0 in real arithmetic may come out as ±1.2e-38.)
@Suite("Bernoulli likelihood")
struct BernoulliLikelihoodTests {
    static let clampedExp = 1.3e-38

    /// Both kernels on one row: the evaluation's log-likelihood, the fused one and the error.
    static func evaluate(x: [Float], logits: [Float], path: KernelPath) -> (logLikelihood: Float, fused: Float, error: [Float]) {
        let xs = HostMatrix(rows: 1, cols: x.count, values: x)
        let a = HostMatrix(rows: 1, cols: logits.count, values: logits)
        var ll: Float = .nan, fused: Float = .nan
        onPath(path) {
            Bernoulli.logLikelihood(x: xs.matrix, logits: a.matrix, into: &ll)
            Bernoulli.logLikelihoodAndError(x: xs.matrix, logitsToError: a.matrix, into: &fused)
        }
        return (ll, fused, a.row(0))
    }

    @Test("several rows against one x row (row r reads x row r mod b), on every path", arguments: KernelPath.supported)
    func rowsCycleThroughX(path: KernelPath) {
        var values = TestValues(seed: 23)
        let b = 3, rows = 7, width = 50
        let x = HostMatrix(rows: b, cols: width, values: values.bits(b * width))
        let a = HostMatrix(rows: rows, cols: width, values: values.floats(rows * width, -8, 8))
        let original = (0..<rows).map { a.rowDouble($0) }
        var ll = [Float](repeating: .nan, count: rows), fused = ll
        onPath(path) {
            Bernoulli.logLikelihood(x: x.matrix, logits: a.matrix, into: &ll)
            Bernoulli.logLikelihoodAndError(x: x.matrix, logitsToError: a.matrix, into: &fused)
        }
        for r in 0..<rows {
            let expected = Reference.bernoulliLogLikelihood(x: x.rowDouble(r % b), logits: original[r])
            #expect(abs(Double(ll[r]) - expected) <= 1e-5 * max(1, abs(expected)), "row \(r)")
            #expect(abs(Double(fused[r]) - expected) <= 1e-5 * max(1, abs(expected)), "row \(r)")
            for c in 0..<width {
                #expect(abs(Double(a[r, c]) - (x.rowDouble(r % b)[c] - Reference.sigmoid(original[r][c]))) <= 1e-6)
            }
        }
    }

    @Test("the error alone (no likelihood wanted) has the bits of the fused pass's error, on every path",
          arguments: KernelPath.supported)
    func errorAlone(path: KernelPath) {
        var values = TestValues(seed: 29)
        let b = 2, rows = 5, width = 37
        let x = HostMatrix(rows: b, cols: width, values: values.bits(b * width))
        var logits = values.floats(rows * width, -30, 30)
        logits[3] = 0
        logits[4] = -0.0
        logits[5] = 100
        logits[6] = -100
        let fused = HostMatrix(rows: rows, cols: width, values: logits)
        let alone = HostMatrix(rows: rows, cols: width, values: logits)
        var ll = [Float](repeating: .nan, count: rows)
        onPath(path) {
            Bernoulli.logLikelihoodAndError(x: x.matrix, logitsToError: fused.matrix, into: &ll)
            Bernoulli.logLikelihoodAndError(x: x.matrix, logitsToError: alone.matrix, into: nil)
        }
        #expect(alone.buffer.array.map(\.bitPattern) == fused.buffer.array.map(\.bitPattern))
        #expect(alone.buffer.array != logits, "the logits were replaced by errors")
    }

    @Test("logits ±1000 give exact, finite log-likelihoods and errors", arguments: KernelPath.supported,
          [(Float(1), Float(1000), Float(0), Float(0)), (0, 1000, -1000, -1), (1, -1000, -1000, 1), (0, -1000, 0, 0)])
    func extremeLogits(path: KernelPath, values: (x: Float, a: Float, expected: Float, expectedError: Float)) {
        let r = Self.evaluate(x: [values.x], logits: [values.a], path: path)
        #expect(abs(Double(r.logLikelihood - values.expected)) <= Self.clampedExp)
        #expect(abs(Double(r.fused - values.expected)) <= Self.clampedExp)
        #expect(abs(Double(r.error[0] - values.expectedError)) <= Self.clampedExp)
    }

    @Test("extreme logits stay exact in full vectors and in the partial last vector", arguments: KernelPath.supported, [16, 37, 64])
    func extremeLogitsVectorized(path: KernelPath, count: Int) {
        // Cycle through the four (x, ±1000) cases, and ±88..±90 around exp's clamping range.
        let cases: [(x: Float, a: Float)] = [(1, 1000), (0, 1000), (1, -1000), (0, -1000), (1, 90), (0, -89), (1, -88), (0, 87)]
        let x = (0..<count).map { cases[$0 % cases.count].x }
        let a = (0..<count).map { cases[$0 % cases.count].a }
        let r = Self.evaluate(x: x, logits: a, path: path)
        let expected = Reference.bernoulliLogLikelihood(x: x.map(Double.init), logits: a.map(Double.init))
        // Float32 summation of terms of size ~1000: a few ulps of the total.
        let tolerance = 4 * Double(Float(expected).ulp) * Double(count).squareRoot()
        #expect(r.logLikelihood.isFinite && r.fused.isFinite)
        #expect(abs(Double(r.logLikelihood) - expected) <= tolerance, "\(r.logLikelihood) vs \(expected)")
        #expect(abs(Double(r.fused) - expected) <= tolerance, "\(r.fused) vs \(expected)")
        for d in 0..<count {
            let e = Double(x[d]) - Reference.sigmoid(Double(a[d]))
            #expect(abs(Double(r.error[d]) - e) <= 1e-7, "error \(d): \(r.error[d]) vs \(e)")
        }
    }

    @Test("image-sized rows (784 pixels): both passes match Float64 within Float32 summation error", arguments: KernelPath.supported)
    func imageRows(path: KernelPath) {
        var values = TestValues(seed: 22)
        for _ in 0..<10 {
            let x = values.bits(784)
            let a = values.floats(784, -30, 30)
            let r = Self.evaluate(x: x, logits: a, path: path)
            let expected = Reference.bernoulliLogLikelihood(x: x.map(Double.init), logits: a.map(Double.init))
            // 1e-6 nats per pixel (the documented bound of the product form) plus a few ulps of
            // the total for the Float32 accumulation of 784 terms.
            let tolerance = 1e-6 * 784 + 4 * Double(Float(expected).ulp)
            #expect(abs(Double(r.logLikelihood) - expected) <= tolerance, "\(r.logLikelihood) vs \(expected)")
            #expect(abs(Double(r.fused) - expected) <= tolerance, "\(r.fused) vs \(expected)")
        }
    }

    /// The evaluator's output layer fused with the likelihood (logits never stored) gives the
    /// bits of the product followed by the likelihood pass: shapes with ragged strips and row
    /// blocks, x rows cycling, no bias, inner dimensions past one chunk (256 on AVX-512, 800 on
    /// AVX2), and rows long enough to fold the per-lane product (> 64 vectors).
    @Test("the output layer fused with the likelihood gives the bits of the two passes, on every product path",
          arguments: KernelPath.supported.filter { onPath($0) { KernelPath.activeHasProducts } },
          [(m: 500, k: 200, n: 784, xRows: 1, bias: true), (13, 50, 33, 3, true), (1, 7, 17, 1, false),
           (25, 300, 40, 2, true), (9, 1000, 40, 2, true), (12, 200, 1100, 1, true), (37, 0, 16, 1, true)])
    func fusedOutputLayer(path: KernelPath, shape: (m: Int, k: Int, n: Int, xRows: Int, bias: Bool)) {
        var values = TestValues(seed: UInt64(shape.m * 1000 + shape.n))
        let h = HostMatrix(rows: shape.m, cols: shape.k, values: values.floats(shape.m * shape.k, -1, 1))
        let w = HostMatrix(rows: shape.k, cols: shape.n, values: values.floats(shape.k * shape.n, -0.3, 0.3))
        let bias = values.floats(shape.n, -2, 2)
        let x = HostMatrix(rows: shape.xRows, cols: shape.n, values: values.bits(shape.xRows * shape.n))
        let logits = HostMatrix(rows: shape.m, cols: shape.n)
        var twoPasses = [Float](repeating: .nan, count: shape.m), fused = twoPasses
        onPath(path) {
            bias.withUnsafeBufferPointer { b in
                let b = shape.bias ? b.baseAddress : nil
                multiply(h.matrix, w.matrix, into: logits.matrix, addingToEveryRow: b)
                Bernoulli.logLikelihood(x: x.matrix, logits: logits.matrix, into: &twoPasses)
                if let b {
                    Bernoulli.outputLayerLogLikelihood(hidden: h.matrix, kernel: w.matrix, bias: b, x: x.matrix, into: &fused)
                } else {
                    bsvi_sgemm_nn_bernoulli_log_likelihood(Int32(shape.m), Int32(shape.k), Int32(shape.n), h.matrix.base,
                                                           Int32(shape.k), w.matrix.base, Int32(shape.n), nil, x.matrix.base,
                                                           Int32(shape.n), Int32(shape.xRows), &fused)
                }
            }
        }
        #expect(fused.allSatisfy { $0.isFinite })
        #expect(fused.map { $0.bitPattern } == twoPasses.map { $0.bitPattern }, "fused \(fused.prefix(4)) vs \(twoPasses.prefix(4))")
        // And both are the likelihood of the Float64 product.
        for r in [0, shape.m - 1] {
            let a = (0..<shape.n).map { c in (0..<shape.k).reduce(shape.bias ? Double(bias[c]) : 0) { $0 + Double(h[r, $1]) * Double(w[$1, c]) } }
            let expected = Reference.bernoulliLogLikelihood(x: x.rowDouble(r % shape.xRows), logits: a)
            #expect(abs(Double(fused[r]) - expected) <= 1e-5 * max(1, abs(expected)), "row \(r)")
        }
    }

    /// Logits at 0 make every factor of the evaluation's per-lane product 1 + e⁰ = 2: without
    /// folding the product into the sum every 64 vectors, 2^(D/16) overflows from D ≈ 2048.
    @Test("long rows (up to 40,000 pixels) do not overflow the product form", arguments: KernelPath.supported, [2048, 5000, 40_000])
    func longRows(path: KernelPath, count: Int) {
        var values = TestValues(seed: UInt64(count))
        let x = values.bits(count)
        for a in [[Float](repeating: 0, count: count), values.floats(count, -0.5, 0.5)] {
            let r = Self.evaluate(x: x, logits: a, path: path)
            let expected = Reference.bernoulliLogLikelihood(x: x.map(Double.init), logits: a.map(Double.init))
            let tolerance = 1e-6 * Double(count) + 4 * Double(Float(expected).ulp)
            #expect(r.logLikelihood.isFinite && r.fused.isFinite)
            #expect(abs(Double(r.logLikelihood) - expected) <= tolerance, "\(r.logLikelihood) vs \(expected)")
            #expect(abs(Double(r.fused) - expected) <= tolerance, "\(r.fused) vs \(expected)")
        }
    }

    /// Training and evaluation compute log p(x|z) with the same operations in the same order (the
    /// per-lane product form, stop 60), so a row's value is the same float in both: the bound a run
    /// optimizes and the likelihood it reports cannot drift apart. Lengths with a partial last
    /// vector, an odd number of vectors (AVX2 takes two a step), and more than 64 vectors (a fold).
    @Test("the training pass gives the evaluation pass's bits, on every path", arguments: KernelPath.supported,
          [1, 15, 16, 33, 784, 1031, 2048])
    func trainingMatchesEvaluation(path: KernelPath, count: Int) {
        var values = TestValues(seed: UInt64(1000 + count))
        for range in [(-3.0, 3.0), (-40.0, 40.0)] {
            let x = values.bits(count)
            let a = values.floats(count, range.0, range.1)
            let r = Self.evaluate(x: x, logits: a, path: path)
            #expect(r.logLikelihood.isFinite)
            #expect(r.fused.bitPattern == r.logLikelihood.bitPattern, "training \(r.fused) vs evaluation \(r.logLikelihood)")
        }
    }

    @Test("a row of mixed extreme logits sums exactly", arguments: KernelPath.supported)
    func mixedRow(path: KernelPath) {
        let x: [Float] = [1, 0, 1, 0, 1, 0]
        let a: [Float] = [1000, 1000, -1000, -1000, 0, 0]
        let r = Self.evaluate(x: x, logits: a, path: path)
        let expected = -2000 - 2 * log(2.0)
        #expect(r.logLikelihood.isFinite && r.fused.isFinite)
        #expect(abs(Double(r.logLikelihood) - expected) <= 2 * Double(Float(expected).ulp))
        #expect(abs(Double(r.fused) - expected) <= 2 * Double(Float(expected).ulp))
        for (e, expectedError) in zip(r.error, [Float(0), -1, 1, 0, 0.5, -0.5]) {
            #expect(abs(Double(e - expectedError)) <= Self.clampedExp)
        }
    }

    @Test("ordinary logits: log-likelihood and error match the Float64 formulas; the fused pass agrees",
          arguments: KernelPath.supported)
    func ordinaryLogits(path: KernelPath) {
        var values = TestValues(seed: 21)
        for _ in 0..<20 {
            // 40 = two 16-lane vectors and a partial vector of 8.
            let x = values.bits(40)
            let a = values.floats(40, -25, 25)
            let r = Self.evaluate(x: x, logits: a, path: path)
            let expected = Reference.bernoulliLogLikelihood(x: x.map(Double.init), logits: a.map(Double.init))
            #expect(abs(Double(r.logLikelihood) - expected) <= 1e-5 * max(1, abs(expected)))
            #expect(abs(Double(r.fused) - Double(r.logLikelihood)) <= 1e-5 * max(1, abs(expected)))
            for d in 0..<40 {
                let e = Double(x[d]) - Reference.sigmoid(Double(a[d]))
                #expect(abs(Double(r.error[d]) - e) <= 1e-6)
                // The error is the derivative of the log-likelihood w.r.t. the logit.
                let h = 1e-6
                var up = a.map(Double.init), down = up
                up[d] += h
                down[d] -= h
                let xd = x.map(Double.init)
                let fd = (Reference.bernoulliLogLikelihood(x: xd, logits: up) - Reference.bernoulliLogLikelihood(x: xd, logits: down)) / (2 * h)
                #expect(abs(Double(r.error[d]) - fd) <= 1e-5)
            }
        }
    }
}
