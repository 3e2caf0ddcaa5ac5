import BSVI
import Foundation
import Testing

/// Mean, standard error, percentile and paired fraction over examples, against their
/// definitions and hand-computed values.
@Suite("Sample statistics over examples")
struct SampleStatisticsTests {
    @Test("standard error = sample standard deviation (n − 1) / √n, also on a large common offset")
    func standardError() {
        #expect(abs(SampleStatistics.standardError([1, 2, 3, 4]) - (5.0 / 3).squareRoot() / 2) <= 1e-15)
        var values = TestValues(seed: 31)
        for n in [2, 3, 50, 1000] {
            let x = (0..<n).map { _ in -240 + values.uniform(-10, 10) }
            let mean = x.reduce(0, +) / Double(n)
            let variance = x.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(n - 1)
            #expect(abs(SampleStatistics.mean(x) - mean) <= 1e-12 * abs(mean))
            let expected = (variance / Double(n)).squareRoot()
            #expect(abs(SampleStatistics.standardError(x) - expected) <= 1e-10 * expected, "n = \(n)")
        }
        // A constant has no spread; one value has no estimable spread (numpy: std(ddof=1) is nan).
        #expect(SampleStatistics.standardError([-812.25, -812.25, -812.25]) == 0)
        #expect(SampleStatistics.standardError([3]).isNaN)
        #expect(SampleStatistics.mean([]) == 0)
    }

    @Test("percentile interpolates between order statistics at (n − 1)·p/100, as numpy.percentile")
    func percentile() {
        let x: [Double] = [5, 1, 4, 2, 3]
        #expect(SampleStatistics.percentile(x, 0) == 1)
        #expect(SampleStatistics.percentile(x, 100) == 5)
        #expect(SampleStatistics.percentile(x, 50) == 3)
        // (5 − 1)·0.05 = 0.2: one fifth of the way from 1 to 2.
        #expect(abs(SampleStatistics.percentile(x, 5) - 1.2) <= 1e-15)
        // numpy.percentile(range(20), 5) = 0.95
        #expect(abs(SampleStatistics.percentile((0..<20).map(Double.init), 5) - 0.95) <= 1e-15)
        #expect(SampleStatistics.percentile([0.25], 5) == 0.25)
        // numpy.percentile([0.5, nan, 0.1, 0.3], 5) is nan wherever the NaN stands (an example
        // whose σ overflowed); the sort used to give a different number for each position.
        for position in 0..<4 {
            var y: [Double] = [0.5, 0.1, 0.3]
            y.insert(.nan, at: position)
            #expect(SampleStatistics.percentile(y, 5).isNaN, "NaN at \(position)")
        }
    }

    @Test("fraction greater counts strict wins only; a NaN on either side makes it NaN")
    func fractionGreater() {
        #expect(SampleStatistics.fractionGreater([1, 2, 3, 4], [0, 2, 4, 3]) == 0.5)
        #expect(SampleStatistics.fractionGreater([1, 1], [1, 1]) == 0)
        #expect(SampleStatistics.fractionGreater([1, .nan], [0, 0]).isNaN)
        #expect(SampleStatistics.fractionGreater([1, 2], [.nan, 0]).isNaN)
        #expect(SampleStatistics.fractionGreater([.infinity, 1], [0, -.infinity]) == 1)
    }
}
