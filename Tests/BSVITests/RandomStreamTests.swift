import BSVI
import Foundation
import Testing

/// The counter-based random streams: pure functions of (seed, purpose, keys, counter), with
/// the right distributions. Statistical checks use bounds of ~5 standard errors (or a χ²
/// quantile at p ≈ 1e-6), so they fail only when the distribution is wrong.
@Suite("Counter-based random streams")
struct RandomStreamTests {
    static let draws = 100_000

    /// Upper χ² quantile for `df` degrees of freedom at one-sided normal score z (Wilson–Hilferty).
    static func chiSquareCritical(df: Int, z: Double = 4.75) -> Double {
        let k = Double(df), a = 2 / (9 * k)
        return k * pow(1 - a + z * a.squareRoot(), 3)
    }

    static func chiSquare(_ counts: [Int]) -> Double {
        let n = Double(counts.reduce(0, +)), e = n / Double(counts.count)
        return counts.reduce(0.0) { $0 + (Double($1) - e) * (Double($1) - e) / e }
    }

    static func normals(_ stream: RandomStream, count: Int, counterOffset: UInt64 = 0) -> [Float] {
        var out = [Float](repeating: .nan, count: count)
        out.withUnsafeMutableBufferPointer { stream.fillNormals($0.baseAddress!, count: count, counterOffset: counterOffset) }
        return out
    }

    @Test("the same inputs give the same numbers; any changed input gives different ones")
    func pureFunction() {
        let a = RandomStream(seed: 42, purpose: .trainingNoise, 3, 5, 7)
        let b = RandomStream(seed: 42, purpose: .trainingNoise, 3, 5, 7)
        #expect(a.key == b.key)
        #expect((0..<64).map { a.bits($0) } == (0..<64).map { b.bits($0) })
        #expect((0..<64).map { a.uniform($0) } == (0..<64).map { b.uniform($0) })
        #expect(Self.normals(a, count: 33) == Self.normals(b, count: 33))
        #expect(a.permutation(count: 50) == b.permutation(count: 50))

        let variants = [
            RandomStream(seed: 43, purpose: .trainingNoise, 3, 5, 7),
            RandomStream(seed: 42, purpose: .evaluationNoise, 3, 5, 7),
            RandomStream(seed: 42, purpose: .trainingNoise, 4, 5, 7),
            RandomStream(seed: 42, purpose: .trainingNoise, 3, 6, 7),
            RandomStream(seed: 42, purpose: .trainingNoise, 3, 5, 8),
            RandomStream(seed: 42, purpose: .trainingNoise, 5, 3, 7),  // keys are ordered
        ]
        let reference = (0..<16).map { a.bits($0) }
        for v in variants {
            #expect(v.key != a.key)
            let bits = (0..<16).map { v.bits($0) }
            #expect(Set(bits).isDisjoint(with: reference))
        }
        // Every purpose has its own stream for the same seed and keys.
        let purposes: [RandomPurpose] = [.initialization, .shuffle, .trainingNoise, .evaluationNoise,
                                         .evaluationRefinementNoise, .binarization, .sampling]
        #expect(Set(purposes.map { RandomStream(seed: 1, purpose: $0).key }).count == purposes.count)
        // Keys that look alike are not adjacent streams: stream (a, n) and (a, n + 1) share no values.
        let s0 = RandomStream(seed: 1, purpose: .trainingNoise, 0, 1), s1 = RandomStream(seed: 1, purpose: .trainingNoise, 0, 2)
        #expect(Set((0..<1000).map { s0.bits($0) }).isDisjoint(with: (0..<1000).map { s1.bits($0) }))
        // Distinct counters give distinct 64-bit values.
        #expect(Set((0..<UInt64(Self.draws)).map { a.bits($0) }).count == Self.draws)
    }

    @Test("uniforms lie in (0, 1) with mean ½ and variance 1/12")
    func uniforms() {
        let s = RandomStream(seed: 9, purpose: .sampling, 1)
        var sum = 0.0, sumSq = 0.0, lowQuarter = 0
        for i in 0..<UInt64(Self.draws) {
            let u = s.uniform(i)
            #expect(u > 0 && u < 1)
            sum += u
            sumSq += u * u
            if u < 0.25 { lowQuarter += 1 }
        }
        let n = Double(Self.draws), mean = sum / n, variance = sumSq / n - mean * mean
        #expect(abs(mean - 0.5) <= 5 * (1.0 / 12 / n).squareRoot())
        #expect(abs(variance - 1.0 / 12) <= 5 * (1.0 / 180 / n).squareRoot())
        #expect(abs(Double(lowQuarter) / n - 0.25) <= 5 * (0.25 * 0.75 / n).squareRoot())
    }

    @Test("normals over 100k draws: mean 0, variance 1, kurtosis 3, two-sided 5% tail")
    func normalMoments() {
        let z = Self.normals(RandomStream(seed: 10, purpose: .trainingNoise, 2), count: Self.draws).map(Double.init)
        let n = Double(z.count)
        let mean = z.reduce(0, +) / n
        let variance = z.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / n
        let fourth = z.reduce(0) { $0 + pow($1 - mean, 4) } / n
        let tail = Double(z.filter { abs($0) > 1.959964 }.count) / n
        #expect(z.allSatisfy { $0.isFinite })
        #expect(abs(mean) <= 5 / n.squareRoot(), "mean \(mean)")
        #expect(abs(variance - 1) <= 5 * (2 / n).squareRoot(), "variance \(variance)")
        #expect(abs(fourth - 3) <= 5 * (96 / n).squareRoot(), "fourth moment \(fourth)")
        #expect(abs(tail - 0.05) <= 5 * (0.05 * 0.95 / n).squareRoot(), "tail \(tail)")
        // No serial correlation at any short lag (Box–Muller partners, neighbouring lanes or
        // blocks): each lag's sample correlation is within 5 standard errors of 0.
        for lag in 1...40 {
            var cross = 0.0
            for i in 0..<(z.count - lag) { cross += (z[i] - mean) * (z[i + lag] - mean) }
            let m = Double(z.count - lag)
            #expect(abs(cross / m / variance) <= 5 / m.squareRoot(), "lag \(lag)")
        }
    }

    @Test("a fill is a prefix of any longer fill; counter offsets address later blocks without overlap")
    func normalsAreAddressable() {
        let s = RandomStream(seed: 11, purpose: .evaluationNoise, 0, 4)
        let all = Self.normals(s, count: 100)
        for count in [0, 1, 5, 16, 17, 31, 32, 33, 64, 99] {
            #expect(Self.normals(s, count: count) == Array(all[0..<count]), "count \(count)")
        }
        // A draw of n normals consumes countersNeeded(forNormals: n) counters; the next draw
        // starts there and continues the same sequence.
        let perDraw = RandomStream.countersNeeded(forNormals: 32)
        #expect(Self.normals(s, count: 32, counterOffset: UInt64(perDraw)) == Array(all[32..<64]))
        #expect(Self.normals(s, count: 36, counterOffset: UInt64(2 * perDraw)) == Array(all[64..<100]))
        #expect(RandomStream.countersNeeded(forNormals: 1) >= 1)
        #expect(RandomStream.countersNeeded(forNormals: 33) >= RandomStream.countersNeeded(forNormals: 32))
        // Slots of small draws (as LatentWorkspace uses them) never share values.
        var seen = Set<Float>()
        let d = 3, step = UInt64(RandomStream.countersNeeded(forNormals: d))
        for slot in UInt64(0)..<200 { seen.formUnion(Self.normals(s, count: d, counterOffset: slot * step)) }
        #expect(seen.count == 200 * d)
        #expect(Set(all).count == all.count)
    }

    @Test("permutation is a permutation of 0..<count", arguments: [0, 1, 2, 3, 17, 1000])
    func permutationIsPermutation(count: Int) {
        for seed in UInt64(0)..<5 {
            let p = RandomStream(seed: seed, purpose: .shuffle, 1).permutation(count: count)
            #expect(p.sorted() == Array(0..<count))
        }
    }

    @Test("index(below:) stays in range and is uniform", arguments: [2, 10, 1000])
    func indexIsUniform(bound: Int) {
        let s = RandomStream(seed: 12, purpose: .shuffle, 3)
        let n = 20_000
        var counts = [Int](repeating: 0, count: min(bound, 10))
        for i in 0..<UInt64(n) {
            let v = s.index(i, below: bound)
            #expect(v >= 0 && v < bound)
            // Bucket into at most 10 equal ranges.
            counts[v * counts.count / bound] += 1
        }
        let chi = Self.chiSquare(counts)
        #expect(chi <= Self.chiSquareCritical(df: counts.count - 1),
                "χ² = \(chi) over \(counts.count) buckets: \(counts)")
    }

    @Test("permutations depend on the stream and are uniform over all orders")
    func permutationIsRandom() {
        // Different seeds or epochs must shuffle differently.
        let shuffles = (UInt64(0)..<10).map { RandomStream(seed: 7, purpose: .shuffle, $0).permutation(count: 100) }
        #expect(Set(shuffles).count == shuffles.count, "distinct epochs gave identical shuffles")
        // Each of the 3! orders of three items is equally likely.
        var counts: [[Int]: Int] = [:]
        let trials = 6000
        for t in 0..<UInt64(trials) { counts[RandomStream(seed: 8, purpose: .shuffle, t).permutation(count: 3), default: 0] += 1 }
        let all = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]].map { counts[$0, default: 0] }
        let chi = Self.chiSquare(all)
        #expect(chi <= Self.chiSquareCritical(df: 5), "χ² = \(chi); counts \(all)")
        // Every item reaches every position of a 10-item shuffle.
        var seen = [[Bool]](repeating: [Bool](repeating: false, count: 10), count: 10)
        for t in UInt64(0)..<500 {
            for (pos, item) in RandomStream(seed: 9, purpose: .shuffle, t).permutation(count: 10).enumerated() { seen[item][pos] = true }
        }
        #expect(seen.allSatisfy { $0.allSatisfy { $0 } })
    }
}
