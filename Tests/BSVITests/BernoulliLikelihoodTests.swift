import BSVI
import Foundation
import Testing

/// log p(x|a) = Σ x a − softplus(a) and its error x − sigmoid(a), for extreme and ordinary logits.
@Suite("Bernoulli likelihood")
struct BernoulliLikelihoodTests {
    static func evaluate(x: [Float], logits: [Float]) -> (logLikelihood: Float, fused: Float, error: [Float]) {
        var errors = logits
        let ll = x.withUnsafeBufferPointer { xp in
            logits.withUnsafeBufferPointer { Bernoulli.logLikelihood(x: xp.baseAddress!, logits: $0.baseAddress!, count: x.count) }
        }
        let fused = x.withUnsafeBufferPointer { xp in
            errors.withUnsafeMutableBufferPointer {
                Bernoulli.logLikelihoodAndError(x: xp.baseAddress!, logitsToError: $0.baseAddress!, count: x.count)
            }
        }
        return (ll, fused, errors)
    }

    @Test("logits ±1000 give exact, finite log-likelihoods and errors",
          arguments: [(Float(1), Float(1000), Float(0), Float(0)), (0, 1000, -1000, -1),
                      (1, -1000, -1000, 1), (0, -1000, 0, 0)])
    func extremeLogits(x: Float, a: Float, expected: Float, expectedError: Float) {
        let r = Self.evaluate(x: [x], logits: [a])
        #expect(r.logLikelihood == expected)
        #expect(r.fused == expected)
        #expect(r.error == [expectedError])
    }

    @Test("a row of mixed extreme logits sums exactly")
    func mixedRow() {
        let x: [Float] = [1, 0, 1, 0, 1, 0]
        let a: [Float] = [1000, 1000, -1000, -1000, 0, 0]
        let r = Self.evaluate(x: x, logits: a)
        let expected = -2000 - 2 * log(2.0)
        #expect(r.logLikelihood.isFinite && r.fused.isFinite)
        #expect(abs(Double(r.logLikelihood) - expected) <= 2 * Double(Float(expected).ulp))
        #expect(abs(Double(r.fused) - expected) <= 2 * Double(Float(expected).ulp))
        #expect(r.error == [0, -1, 1, 0, 0.5, -0.5])
    }

    @Test("ordinary logits: log-likelihood and error match the Float64 formulas; the fused pass agrees")
    func ordinaryLogits() {
        var values = TestValues(seed: 21)
        for _ in 0..<20 {
            let x = values.bits(12)
            let a = values.floats(12, -25, 25)
            let r = Self.evaluate(x: x, logits: a)
            let expected = Reference.bernoulliLogLikelihood(x: x.map(Double.init), logits: a.map(Double.init))
            #expect(abs(Double(r.logLikelihood) - expected) <= 1e-5 * max(1, abs(expected)))
            #expect(abs(Double(r.fused) - Double(r.logLikelihood)) <= 1e-5 * max(1, abs(expected)))
            for d in 0..<12 {
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
