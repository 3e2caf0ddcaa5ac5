import BSVI
import Foundation
import Testing

/// The run-time choice of kernels, and the paths agreeing on identical inputs: a whole bsvi
/// objective (encoder, SVI refinement, buffer weights, every gradient) and the importance-
/// sampling evaluator, computed on each path this machine has.
///
/// Stated tolerances: the AVX2 and AVX-512 paths perform the same operations in the same order
/// on every value and must agree bit for bit. The portable path has no FMA and leaves the products
/// to BLAS (another summation order): its gradients must agree within 2e-5 of the largest entry
/// of each tensor, its sums within 1e-6 relative, and its log-likelihoods within 5e-5 nats (measured on
/// this test's inputs, 2026-12-01: 4e-6, 2e-8 and 7e-6).
@Suite("Kernel paths")
struct KernelPathTests {
    @Test("BSVI_KERNELS: unset picks the best path; a known path is used; unknown text is refused")
    func configureFromEnvironment() throws {
        let previous = KernelPath.active
        defer { try? KernelPath.select(previous) }
        #expect(try KernelPath.configure(environment: [:]) == KernelPath.best)
        for path in KernelPath.supported {
            #expect(try KernelPath.configure(environment: ["BSVI_KERNELS": path.rawValue]) == path)
            #expect(KernelPath.active == path)
        }
        #expect(throws: KernelPathError.unknown("sse9")) { try KernelPath.configure(environment: ["BSVI_KERNELS": "sse9"]) }
        #expect(KernelPath.supported.contains(.portable))
        #expect(KernelPath.supported.last == KernelPath.best)
    }

    @Test("a path the CPU lacks is refused with a message naming the CPU and what it supports")
    func unsupportedPathIsRefused() {
        let message = "\(KernelPathError.unsupported(.avx512, cpu: "Old CPU"))"
        #expect(message.contains("BSVI_KERNELS=avx512") && message.contains("Old CPU") && message.contains("portable"))
        for path in KernelPath.allCases where !path.isSupported {
            #expect(throws: KernelPathError.unsupported(path, cpu: KernelPath.cpuModel)) { try KernelPath.select(path) }
        }
    }

    @Test("the FMA peak loop reports a positive rate on every path, widest not below narrowest")
    func fmaPeak() {
        let rates = KernelPath.supported.map { $0.fmaPeakGigaflops(seconds: 0.02) }
        #expect(rates.allSatisfy { $0 > 0.1 })
    }

    @Test("the peak is the best of five equal windows: a window in which the core was taken away does not lower it")
    func peakIsTheBestWindow() {
        var windows: [Double] = []
        let rates = [100.0, 40.0, 170.0, 169.0, 90.0]
        let best = bestOfPeakWindows(seconds: 0.25) { seconds in
            windows.append(seconds)
            return rates[windows.count - 1]
        }
        #expect(best == 170)
        #expect(windows == Array(repeating: 0.05, count: 5))
    }

    /// One bsvi objective (784-pixel model, k = 4, learned π) on `path`.
    static func objective(on path: KernelPath, rule: RefinementRule) -> (stats: ObjectiveSums, gradient: [Float], model: VAEModel) {
        let settings = ObjectiveSettings(method: .bsvi, k: 4, pi: .learned,
                                         refinement: RefinementSettings(steps: 4, learningRate: rule == .adam ? 0.05 : 0.002, rule: rule))
        let model = VAEModel(shape: ModelShape(inputDim: 784, latentDim: 50, hiddenDims: [200, 200], activation: .tanh),
                             piCount: settings.piCount)
        let params = model.makeInitialParameters(seed: 4)
        var values = TestValues(seed: 12)
        let b = 21
        let x = HostMatrix(rows: b, cols: 784, values: values.bits(b * 784, probabilityOfOne: 0.3))
        let grads = FloatBuffer(count: model.vectorLength)
        let stats = onPath(path) {
            BatchObjective(model: model, settings: settings, batchCapacity: b)
                .accumulate(x: x.matrix, exampleIDs: Array(100..<(100 + b)), noise: NoiseSource(seed: 5, purpose: .trainingNoise, context: 2),
                            params: params, grads: grads)
        }
        return (stats, grads.array, model)
    }

    @Test("AVX2 and AVX-512 give the same bits for a whole bsvi objective (sgd and adam refinement)",
          .enabled(if: KernelPath.avx512.isSupported && KernelPath.avx2.isSupported, "needs a CPU with AVX-512"),
          arguments: [RefinementRule.sgd, .adam])
    func vectorPathsAgreeExactly(rule: RefinementRule) throws {
        let a = Self.objective(on: .avx2, rule: rule), b = Self.objective(on: .avx512, rule: rule)
        #expect(a.stats == b.stats)
        let differing = zip(a.gradient, b.gradient).filter { $0.bitPattern != $1.bitPattern }.count
        #expect(differing == 0, "\(differing) of \(a.gradient.count) gradient entries differ")
    }

    @Test("the portable path agrees with the widest one within the stated tolerance",
          .enabled(if: KernelPath.best != .portable, "only one path on this CPU"))
    func portableAgrees() throws {
        let wide = Self.objective(on: .best, rule: .sgd), portable = Self.objective(on: .portable, rule: .sgd)
        for (a, b) in [(wide.stats.bound, portable.stats.bound), (wide.stats.elboInitial, portable.stats.elboInitial),
                       (wide.stats.elboRefined, portable.stats.elboRefined)] {
            #expect(abs(a - b) <= 1e-6 * abs(a), "\(a) vs \(b)")
            if ProcessInfo.processInfo.environment["BSVI_TEST_VERBOSE"] != nil { print("[paths] sums: \(abs(a - b) / abs(a))") }
        }
        for tensor in wide.model.layout.tensors {
            let range = tensor.range
            let scale = range.map { abs(wide.gradient[$0]) }.max() ?? 0
            let worst = range.map { abs(wide.gradient[$0] - portable.gradient[$0]) }.max() ?? 0
            #expect(worst <= 2e-5 * scale, "\(tensor.name): largest difference \(worst), largest entry \(scale)")
            if ProcessInfo.processInfo.environment["BSVI_TEST_VERBOSE"] != nil { print("[paths] \(tensor.name): \(worst / scale)") }
        }
    }

    @Test("the importance-sampled log-likelihood agrees across paths within 5e-5 nats")
    func evaluationAgrees() {
        let model = VAEModel(shape: ModelShape(inputDim: 784, latentDim: 50, hiddenDims: [200, 200], activation: .tanh))
        let params = model.makeInitialParameters(seed: 8)
        var values = TestValues(seed: 13)
        let x = HostMatrix(rows: 1, cols: 784, values: values.bits(784, probabilityOfOne: 0.3))
        let results = KernelPath.supported.map { path in
            onPath(path) {
                ImportanceSampler(model: model, samples: 300, batchCapacity: 1,
                                  refinement: RefinementSettings(steps: 2, learningRate: 0.002, rule: .sgd), chunk: 128)
                    .evaluate(x: x.matrix, exampleIDs: [7], seed: 3, params: params).sums
            }
        }
        if ProcessInfo.processInfo.environment["BSVI_TEST_VERBOSE"] != nil { print("[paths] log-likelihoods: \(results.map(\.bound))") }
        for r in results.dropFirst() {
            #expect(abs(r.bound - results[0].bound) <= 5e-5, "\(r.bound) vs \(results[0].bound)")
            #expect(abs(r.elboRefined - results[0].elboRefined) <= 1e-6 * abs(results[0].elboRefined))
        }
    }
}
