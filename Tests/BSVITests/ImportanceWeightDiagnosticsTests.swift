import BSVI
import Foundation
import Testing

/// The effective sample size (Σw)²/Σw² and the largest normalised weight max w / Σw that the
/// streaming LogSumExpAccumulator keeps in its single pass, against their definitions computed
/// in two passes, and the sampler's per-example diagnostics against its own log weights.
@Suite("Importance-weight diagnostics")
struct ImportanceWeightDiagnosticsTests {
    /// The definitions, two passes over the list in Float64 (log space, so ±1000 is fine).
    struct TwoPass {
        let logSum: Double, logSumOfSquares: Double, effectiveSampleSize: Double, largestNormalizedWeight: Double
        init(_ logWeights: [Double]) {
            logSum = logSumExp(logWeights)
            logSumOfSquares = logSumExp(logWeights.map { 2 * $0 })
            effectiveSampleSize = exp(2 * logSum - logSumOfSquares)
            largestNormalizedWeight = exp(logWeights.max()! - logSum)
        }
    }

    static func accumulate(_ logWeights: [Double]) -> LogSumExpAccumulator {
        var acc = LogSumExpAccumulator()
        for v in logWeights { acc.add(v) }
        return acc
    }

    @Test("equal weights: ESS = K (fraction 1) and the largest weight is 1/K, at any scale", arguments: [0.0, 1000, -1000, -812.25])
    func equalWeights(logWeight: Double) {
        for k in [1, 2, 7, 5000] {
            let acc = Self.accumulate([Double](repeating: logWeight, count: k))
            #expect(abs(acc.effectiveSampleSize - Double(k)) <= 1e-12 * Double(k), "K = \(k): ESS \(acc.effectiveSampleSize)")
            #expect(abs(acc.largestNormalizedWeight - 1 / Double(k)) <= 1e-15, "K = \(k)")
            let estimate = ImportanceEstimate(acc, samples: k)
            #expect(abs(estimate.essFraction - 1) <= 1e-12)
            #expect(abs(estimate.logLikelihood - logWeight) <= 1e-9)
        }
    }

    @Test("one dominant weight: ESS ≈ 1 (fraction ≈ 1/K) and the largest weight ≈ 1, wherever it comes in the stream")
    func oneDominantWeight() {
        let k = 1000
        for position in [0, 499, 999] {
            var logWeights = [Double](repeating: -1000, count: k)
            logWeights[position] = 0
            let estimate = ImportanceEstimate(Self.accumulate(logWeights), samples: k)
            // The other 999 weights are e^−1000 of it: below any Float64 resolution.
            #expect(abs(estimate.essFraction - 1 / Double(k)) <= 1e-15, "position \(position): \(estimate.essFraction)")
            #expect(estimate.maxWeight == 1, "position \(position)")
        }
        // A weight 20 nats above 99 equal others: ESS and max weight follow the closed forms.
        let others = exp(-20.0) * 99
        let acc = Self.accumulate([Double](repeating: -20, count: 99) + [0])
        let expectedESS = (1 + others) * (1 + others) / (1 + exp(-40.0) * 99)
        #expect(abs(acc.effectiveSampleSize - expectedESS) <= 1e-13)
        #expect(abs(acc.largestNormalizedWeight - 1 / (1 + others)) <= 1e-15)
    }

    @Test("streaming Σw², ESS and max weight equal the two-pass definitions on random log weights with ±1000 and −∞")
    func streamingEqualsTwoPass() {
        var values = TestValues(seed: 21)
        var lists: [[Double]] = [[1000, -1000], [-1000, 1000, 1000], [1000, 999, -1000, -.infinity], [-.infinity, -3, -.infinity], [7]]
        for n in [2, 10, 100, 5000] {
            lists.append((0..<n).map { _ in values.uniform(-30, 30) })
            lists.append((0..<n).map { _ in values.uniform(-2000, 2000) })
            // Mostly moderate values with a few extremes at random places.
            lists.append((0..<n).map { _ in
                let u = values.uniform(0, 1)
                return u < 0.02 ? 1000 : u < 0.04 ? -1000 : u < 0.05 ? -.infinity : values.uniform(-5, 5)
            })
        }
        for list in lists where list.contains(where: { $0 > -.infinity }) {
            let expected = TwoPass(list)
            for order in [list, list.reversed(), list.sorted(), list.sorted().reversed()] {
                let acc = Self.accumulate(order)
                #expect(abs(acc.logSumOfSquares - expected.logSumOfSquares) <= 1e-12 * max(1, abs(expected.logSumOfSquares)),
                        "Σw² of a list of \(list.count)")
                #expect(abs(acc.effectiveSampleSize - expected.effectiveSampleSize) <= 1e-10 * expected.effectiveSampleSize,
                        "ESS of a list of \(list.count): \(acc.effectiveSampleSize) vs \(expected.effectiveSampleSize)")
                #expect(abs(acc.largestNormalizedWeight - expected.largestNormalizedWeight) <= 1e-12,
                        "max weight of a list of \(list.count)")
                #expect(acc.effectiveSampleSize >= 1 - 1e-12 && acc.effectiveSampleSize <= Double(list.count) * (1 + 1e-12))
            }
        }
    }

    @Test("all weights zero: ESS 0 and largest weight 1 (nothing to average), finite for JSON")
    func allWeightsZero() {
        let acc = Self.accumulate([-.infinity, -.infinity])
        #expect(acc.effectiveSampleSize == 0)
        #expect(acc.largestNormalizedWeight == 1)
        #expect(acc.logSumOfSquares == -.infinity)
    }

    @Test("the sampler's per-example ESS and max weight are those of its own K log weights (two passes), for any chunk")
    func samplerDiagnosticsMatchItsLogWeights() {
        let m = LatentOneModel(seed: 8)
        let lambda = m.encoderLambda()
        let k = 300
        let noise = NoiseSource(seed: 8, purpose: .evaluationNoise, context: 0)
        let workspace = LatentWorkspace(model: m.model, capacity: k)
        for i in [0, 5, 15] {
            let xi = HostMatrix(rows: 1, cols: 4, values: m.x.row(i))
            let li = HostMatrix(rows: 1, cols: 2, values: lambda.row(i))
            for s in 0..<k { workspace.draw(lambda: li.matrix, start: s, slot: s, exampleIDs: [m.ids[i]], noise: noise) }
            workspace.scoreLogWeights(rows: 0..<k, x: xi.matrix, lambda: li.matrix, params: m.params)
            let expected = TwoPass((0..<k).map { Double(workspace.logWeight[$0]) })
            // The check means something only if the weights are far from equal and far from one-hot.
            #expect(expected.effectiveSampleSize < 0.99 * Double(k) && expected.effectiveSampleSize > 2)
            for chunk in [1, 64, 300] {
                let sampler = ImportanceSampler(model: m.model, samples: k, batchCapacity: 1,
                                                refinement: RefinementSettings(steps: 0, learningRate: 0, rule: .sgd), chunk: chunk)
                let e = sampler.importanceSampledEstimates(x: xi.matrix, ids: [m.ids[i]], lambda: li.matrix, noise: noise,
                                                           params: m.params)[0]
                #expect(abs(e.logLikelihood - (expected.logSum - log(Double(k)))) <= 1e-9 * max(1, abs(e.logLikelihood)))
                #expect(abs(e.essFraction - expected.effectiveSampleSize / Double(k)) <= 1e-9 * e.essFraction, "chunk \(chunk)")
                #expect(abs(e.maxWeight - expected.largestNormalizedWeight) <= 1e-9 * e.maxWeight, "chunk \(chunk)")
            }
        }
    }

    @Test("evaluate's per-example values add up to the batch sums the ELBO functions give")
    func evaluatePerExampleMatchesSums() {
        let m = LatentOneModel(seed: 9)
        let refinement = RefinementSettings(steps: 3, learningRate: 0.05, rule: .sgd)
        let sampler = ImportanceSampler(model: m.model, samples: 100, batchCapacity: 16, refinement: refinement, chunk: 40, elboSamples: 30)
        let perExample = sampler.evaluate(x: m.x.matrix, exampleIDs: m.ids, seed: 3, params: m.params)
        #expect(perExample.count == 16)
        // Each example alone (batch 1) gets the very same bits: noise is keyed by example id, and
        // a batch never changes an example's arithmetic (the distributed evaluation relies on it:
        // its parts depend on timing).
        let single = ImportanceSampler(model: m.model, samples: 100, batchCapacity: 1, refinement: refinement, chunk: 40, elboSamples: 30)
        for i in [0, 7, 15] {
            let xi = HostMatrix(rows: 1, cols: 4, values: m.x.row(i))
            let alone = single.evaluate(x: xi.matrix, exampleIDs: [m.ids[i]], seed: 3, params: m.params)[0]
            let together = perExample[i]
            for (a, b) in [(alone.estimate.logLikelihood, together.estimate.logLikelihood), (alone.elboInitial, together.elboInitial),
                           (alone.elboRefined, together.elboRefined), (alone.estimate.essFraction, together.estimate.essFraction),
                           (alone.estimate.maxWeight, together.estimate.maxWeight)] {
                #expect(a.bitPattern == b.bitPattern, "example \(i): \(a) vs \(b)")
            }
        }
    }
}
