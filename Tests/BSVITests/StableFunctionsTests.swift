import BSVI
import Foundation
import Testing

/// softplus, sigmoid, logSumExp and the streaming LogSumExpAccumulator stay finite and exact
/// far outside the range where the naive formulas overflow.
@Suite("Numerically stable functions")
struct StableFunctionsTests {
    /// |a − b| within `ulps` units in the last place of b (Float).
    static func close(_ a: Float, _ b: Double, ulps: Float = 2) -> Bool {
        abs(Double(a) - b) <= Double(ulps * Float(b).ulp) + Double(Float.leastNormalMagnitude)
    }

    @Test("softplus and sigmoid are exact for huge and tiny arguments")
    func softplusAndSigmoid() {
        #expect(softplus(Float(1000)) == 1000)
        #expect(softplus(Float(-1000)) == 0)
        #expect(softplus(Double(1000)) == 1000)
        #expect(softplus(Double(-1000)) == 0)
        #expect(Self.close(softplus(Float(-30)), exp(-30.0)))
        #expect(Self.close(softplus(Float(0)), log(2.0)))
        #expect(sigmoid(Float(1000)) == 1)
        #expect(sigmoid(Float(-1000)) == 0)
        #expect(Self.close(sigmoid(Float(-30)), exp(-30.0) / (1 + exp(-30.0))))
        for a in stride(from: -40.0, through: 40.0, by: 0.73) {
            #expect(Self.close(softplus(Float(a)), Reference.softplus(Double(Float(a))), ulps: 4), "softplus(\(a))")
            #expect(abs(softplus(Double(a)) - log1p(exp(a))) <= 1e-12 * max(1, abs(a)), "softplus(\(a)) Float64")
            #expect(Self.close(sigmoid(Float(a)), Reference.sigmoid(Double(Float(a))), ulps: 4), "sigmoid(\(a))")
        }
    }

    @Test("logSumExp is exact for ±1000 and ignores −∞ entries")
    func logSumExpExtremes() {
        #expect(Self.close(logSumExp([Float(1000), 1000]), 1000 + log(2.0)))
        #expect(Self.close(logSumExp([Float(-1000), -1000]), -1000 + log(2.0)))
        #expect(Self.close(logSumExp([Float(1000), -1000]), 1000))
        #expect(Self.close(logSumExp([Float(-1000), 1000, 1000, 1000]), 1000 + log(3.0)))
        #expect(logSumExp([Float(0), -.infinity]) == 0)
        #expect(Self.close(logSumExp([-Float.infinity, 2, -.infinity, 2]), 2 + log(2.0)))
        #expect(logSumExp([-Float.infinity, -.infinity]) == -.infinity)
        #expect(logSumExp([Float]()) == -.infinity)
        #expect(logSumExp([Float(7)]) == 7)

        #expect(abs(logSumExp([1000.0, 1000]) - (1000 + log(2.0))) <= 1e-12)
        #expect(abs(logSumExp([-1e5, -1e5 + log(3.0)]) - (-1e5 + log(4.0))) <= 1e-9)
        #expect(logSumExp([0.0, -.infinity]) == 0)
        #expect(logSumExp([-Double.infinity]) == -.infinity)
        #expect(logSumExp([Double]()) == -.infinity)
    }

    @Test("logSumExp and the accumulator propagate NaN and do not turn two +∞ terms into NaN")
    func nanAndInfinity() {
        // Swift's max(m, NaN) returns m: without a check a NaN term would read as a zero weight.
        #expect(logSumExp([Float.nan]).isNaN)
        #expect(logSumExp([Float.nan, -.infinity]).isNaN)
        #expect(logSumExp([Float.infinity, .nan]).isNaN)
        #expect(logSumExp([1.0, .nan]).isNaN)
        #expect(logSumExp([Double.nan, -.infinity]).isNaN)
        #expect(logSumExp([Float.infinity, 3]) == .infinity)
        var a = LogSumExpAccumulator()
        a.add(.infinity)
        a.add(.infinity)
        #expect(a.value == .infinity)
        var b = LogSumExpAccumulator()
        b.add(1)
        b.add(.nan)
        #expect(b.value.isNaN)
    }

    @Test("logSumExp agrees with log Σ exp where that is representable, including strided access")
    func logSumExpMatchesNaive() {
        var values = TestValues(seed: 12)
        for trial in 0..<20 {
            let n = 1 + trial
            let x = values.floats(n, -20, 20)
            let naive = log(x.reduce(0.0) { $0 + exp(Double($1)) })
            #expect(Self.close(logSumExp(x), naive, ulps: 8), "n = \(n)")
            #expect(abs(logSumExp(x.map(Double.init)) - naive) <= 1e-12 * max(1, abs(naive)))
            // Stride 3 over an interleaved buffer reads only every third value.
            var interleaved = [Float](repeating: .nan, count: 3 * n)
            for i in 0..<n { interleaved[3 * i] = x[i] }
            let strided = interleaved.withUnsafeBufferPointer { logSumExp($0.baseAddress!, count: n, stride: 3) }
            #expect(strided == logSumExp(x))
        }
    }

    @Test("LogSumExpAccumulator equals logSumExp of the same list in any order")
    func accumulatorMatchesLogSumExp() {
        var values = TestValues(seed: 13)
        var lists: [[Double]] = [
            [1000, 1000], [-1000, -1000, -1000], [1e6, -1e6, 0], [-.infinity, 3, -.infinity],
            [-.infinity, -.infinity], [], [5], [-5000, -5001, -4999.5],
        ]
        for n in [2, 10, 100, 5000] {
            lists.append((0..<n).map { _ in values.uniform(-2000, 2000) })
            lists.append((0..<n).map { _ in values.uniform(-3, 3) })
        }
        for list in lists {
            let expected = logSumExp(list)
            for order in [list, list.reversed(), list.sorted(), list.sorted().reversed()] {
                var acc = LogSumExpAccumulator()
                for v in order { acc.add(v) }
                #expect(acc.count == list.count)
                if expected == -.infinity {
                    #expect(acc.value == -.infinity)
                } else {
                    #expect(abs(acc.value - expected) <= 1e-12 * max(1, abs(expected)), "list of \(list.count)")
                }
            }
        }
        // A mean of S equal weights w is log w exactly: log Σ − log S.
        var acc = LogSumExpAccumulator()
        for _ in 0..<5000 { acc.add(-812.25) }
        #expect(abs(acc.value - log(5000.0) - -812.25) <= 1e-9)
    }
}
