import BSVI
import Foundation
import Testing

/// ObjectiveSettings.usefulMultiplyAddsPerExample (the benchmark's "useful work") against the
/// multiply-adds of the products BatchObjective.accumulate actually issues, counted by
/// MultiplyAddCount on every kernel path.
///
/// The implementation issues exactly the minimal products, so counted = useful × b with no
/// excess term: the encoder's input layer is never back-propagated (no input gradient for x);
/// the SVI steps' activations and errors stay in their blocks, so the decoder's weight gradients
/// are one product per layer over the rows that need them (no second forward or backward pass
/// for the buffer); the backward at λ_k stops at the first hidden layer (nothing moves λ_k) unless
/// k = 0, where it is λ₀'s and goes to z for the encoder's gradient; svi's weight gradients cover
/// block k only. A product added to any of these paths breaks the equality.
@Suite("Multiply-add accounting of the objectives")
struct MultiplyAddCountTests {
    static let shape = ModelShape(inputDim: 12, latentDim: 3, hiddenDims: [7, 5], activation: .tanh)
    static let refinement = RefinementSettings(steps: 3, learningRate: 0.01, rule: .sgd)
    static let batch = 5

    @Test("multiplyAddsPerRow is Σ n_l·n_{l+1}")
    func perRow() {
        let model = VAEModel(shape: Self.shape)
        #expect(model.encoder.multiplyAddsPerRow == 12 * 7 + 7 * 5 + 5 * 6)
        #expect(model.decoder.multiplyAddsPerRow == 3 * 5 + 5 * 7 + 7 * 12)
    }

    static let methods: [ObjectiveSettings] = [
        ObjectiveSettings(method: .vae, k: 1, vaeSamples: 1, refinement: refinement),
        ObjectiveSettings(method: .vae, k: 1, vaeSamples: 3, refinement: refinement),
        ObjectiveSettings(method: .iwae, k: 4, refinement: refinement),
        ObjectiveSettings(method: .svi, k: 0, refinement: refinement),
        ObjectiveSettings(method: .svi, k: 3, refinement: refinement),
        ObjectiveSettings(method: .bsvi, k: 0, pi: .uniform, refinement: refinement),
        ObjectiveSettings(method: .bsvi, k: 3, pi: .learned, refinement: refinement),
    ]

    @Test("one batch issues exactly usefulMultiplyAddsPerExample × b multiply-adds",
          arguments: methods, KernelPath.supported)
    func batchMatchesUsefulWork(settings: ObjectiveSettings, path: KernelPath) {
        let model = VAEModel(shape: Self.shape, piCount: settings.piCount)
        let params = randomParameters(model: model, seed: 3)
        var values = TestValues(seed: 4)
        let x = HostMatrix(rows: Self.batch, cols: Self.shape.inputDim, values: values.bits(Self.batch * Self.shape.inputDim))
        // Capacity above the batch: the count must follow the rows used, not the workspace.
        let objective = BatchObjective(model: model, settings: settings, batchCapacity: 8)
        let counted = onPath(path) {
            MultiplyAddCount.counting {
                objective.accumulate(x: x.matrix, exampleIDs: Array(0..<Self.batch),
                                     noise: NoiseSource(seed: 1, purpose: .trainingNoise, context: 0), params: params,
                                     grads: FloatBuffer(count: model.vectorLength))
            }.multiplyAdds
        }
        #expect(counted == settings.usefulMultiplyAddsPerExample(model: model) * Self.batch,
                "\(settings.method) k=\(settings.k) on \(path)")
    }
}

/// The counting hook itself: what it counts, once, and only on the counting thread.
@Suite("Multiply-add counter")
struct MultiplyAddCounterTests {
    static let a = HostMatrix(rows: 6, cols: 4, values: (0..<24).map { Float($0) / 10 })
    static let b = HostMatrix(rows: 4, cols: 3, values: (0..<12).map { Float($0) / 7 })
    static let bias: [Float] = [1, 2, 3]

    @Test("m·k·n per product: gemm (both transposes), multiply on the kernel and on BLAS, weight gradients")
    func countsEachProductOnce() {
        let c = HostMatrix(rows: 6, cols: 3), g = HostMatrix(rows: 4, cols: 3), biasGradient = FloatBuffer(count: 3)
        let weights: [Float] = [1, 0.5, 2, 1, 1, 3]
        func count(_ body: () -> Void) -> Int { MultiplyAddCount.counting(body).multiplyAdds }
        #expect(count { gemm(Self.a.matrix, Self.b.matrix, into: c.matrix) } == 6 * 4 * 3)
        #expect(count { gemm(Self.a.matrix, transposeA: true, c.matrix, into: g.matrix) } == 4 * 6 * 3)
        for path in KernelPath.supported {
            onPath(path) {
                // The BLAS fallback of multiply goes through gemm: still counted once.
                Self.bias.withUnsafeBufferPointer { bias in
                    #expect(count { multiply(Self.a.matrix, Self.b.matrix, into: c.matrix, addingToEveryRow: bias.baseAddress,
                                             then: .tanh) } == 6 * 4 * 3)
                    #expect(count { multiply(Self.a.matrix, Self.b.matrix, into: c.matrix, addingToEveryRow: bias.baseAddress,
                                             useKernel: false) } == 6 * 4 * 3)
                }
                weights.withUnsafeBufferPointer { w in
                    #expect(count { accumulateTransposedProduct(Self.a.matrix, c.matrix, into: g.matrix, biasGradient: biasGradient.base,
                                                                rowWeights: w.baseAddress) } == 4 * 6 * 3)
                }
            }
        }
        // Empty products issue nothing.
        #expect(count { multiply(Self.a.matrix.rows(0..<0), Self.b.matrix, into: c.matrix.rows(0..<0)) } == 0)
    }

    @Test("nested scopes each see their own products; products on another thread are not counted")
    func scopes() {
        let c = HostMatrix(rows: 6, cols: 3)
        let outer = MultiplyAddCount.counting {
            gemm(Self.a.matrix, Self.b.matrix, into: c.matrix)
            let inner = MultiplyAddCount.counting { gemm(Self.a.matrix, Self.b.matrix, into: c.matrix) }.multiplyAdds
            #expect(inner == 72)
            // Another thread's products, issued while this one counts, stay out of this count.
            let done = DispatchSemaphore(value: 0)
            Thread {
                let d = HostMatrix(rows: 6, cols: 3)
                for _ in 0..<10 { gemm(Self.a.matrix, Self.b.matrix, into: d.matrix) }
                done.signal()
            }.start()
            done.wait()
        }.multiplyAdds
        #expect(outer == 2 * 72)
    }
}
