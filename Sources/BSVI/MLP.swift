import CKernels

/// A multilayer perceptron y = f(…f(x·W₀ + b₀)…)·W_L + b_L: hidden layers apply the
/// activation, the output layer is linear. Kernels are [in, out] so a row-major batch of
/// inputs multiplies from the left. Weights live in a flat parameter vector; gradients
/// accumulate into a second vector of the same layout.
public struct MLP {
    public let sizes: [Int]           // [input, hidden…, output]
    public let activation: Activation
    public let kernels: [ParameterTensor]
    public let biases: [ParameterTensor]

    public var layerCount: Int { sizes.count - 1 }
    public var inputSize: Int { sizes[0] }
    public var outputSize: Int { sizes[sizes.count - 1] }

    /// Registers the layers as `<prefix>/dense_i/kernel` and `/bias` in `layout`.
    public init(prefix: String, sizes: [Int], activation: Activation, layout: inout ParameterLayout) {
        precondition(sizes.count >= 2 && sizes.allSatisfy { $0 > 0 }, "MLP needs positive layer sizes")
        self.sizes = sizes
        self.activation = activation
        var k: [ParameterTensor] = [], b: [ParameterTensor] = []
        for i in 0..<(sizes.count - 1) {
            k.append(layout.add("\(prefix)/dense_\(i)/kernel", shape: [sizes[i], sizes[i + 1]]))
            b.append(layout.add("\(prefix)/dense_\(i)/bias", shape: [sizes[i + 1]]))
        }
        kernels = k
        biases = b
    }

    /// Glorot-uniform kernels and zero biases from a counter-based stream.
    public func initialize(_ params: FloatBuffer, seed: UInt64, streamKey: UInt64) {
        for l in 0..<layerCount {
            let stream = RandomStream(seed: seed, purpose: .initialization, streamKey, UInt64(l))
            let limit = (6.0 / Double(sizes[l] + sizes[l + 1])).squareRoot()
            let kernel = kernels[l]
            for i in 0..<kernel.count {
                params[kernel.offset + i] = Float((2 * stream.uniform(UInt64(i)) - 1) * limit)
            }
            for i in 0..<biases[l].count { params[biases[l].offset + i] = 0 }
        }
    }

    func kernel(_ l: Int, in buffer: FloatBuffer) -> Matrix {
        buffer.matrix(rows: sizes[l], cols: sizes[l + 1], offset: kernels[l].offset)
    }

    /// Minimal multiply-adds of one row's forward pass (= one backward-to-input, = one weight gradient).
    public var multiplyAddsPerRow: Int { (0..<layerCount).reduce(0) { $0 + sizes[$1] * sizes[$1 + 1] } }
}

/// Activations and back-propagated errors of an MLP for up to `capacity` rows. Row ranges
/// let one workspace hold several groups (e.g. the k+1 SVI steps of a batch, block by
/// block) whose errors are later reused for one weighted weight-gradient product.
public final class MLPWorkspace {
    public let mlp: MLP
    public let capacity: Int
    /// outputs[l]: layer l's output (hidden: after the activation; last: logits or errors).
    public let outputs: [Matrix]
    /// deltas[l]: ∂objective/∂(pre-activation of layer l). deltas[last] aliases outputs[last]:
    /// the caller overwrites the logits with the output error in one fused pass.
    public let deltas: [Matrix]
    private let storage: [FloatBuffer]

    public init(mlp: MLP, capacity: Int) {
        self.mlp = mlp
        self.capacity = capacity
        var bufs: [FloatBuffer] = [], outs: [Matrix] = [], ds: [Matrix] = []
        for l in 0..<mlp.layerCount {
            let o = FloatBuffer(count: capacity * mlp.sizes[l + 1])
            bufs.append(o)
            outs.append(o.matrix(rows: capacity, cols: mlp.sizes[l + 1]))
            if l == mlp.layerCount - 1 {
                ds.append(outs[l])
            } else {
                let d = FloatBuffer(count: capacity * mlp.sizes[l + 1])
                bufs.append(d)
                ds.append(d.matrix(rows: capacity, cols: mlp.sizes[l + 1]))
            }
        }
        outputs = outs
        deltas = ds
        storage = bufs
    }

    public var output: Matrix { outputs[mlp.layerCount - 1] }
    public var outputDelta: Matrix { deltas[mlp.layerCount - 1] }

    /// Forward pass for workspace rows `rows`, reading `input` (rows.count × input size).
    public func forward(_ input: Matrix, rows: Range<Int>, params: FloatBuffer) {
        forward(input, rows: rows, params: params, layers: mlp.layerCount)
    }

    /// The first `layers` layers of the forward pass; returns the last one's output rows (the
    /// input when `layers` is 0).
    @discardableResult
    public func forward(_ input: Matrix, rows: Range<Int>, params: FloatBuffer, layers: Int) -> Matrix {
        precondition(input.rows == rows.count && input.cols == mlp.inputSize, "MLP input shape mismatch")
        precondition(layers >= 0 && layers <= mlp.layerCount)
        var x = input
        for l in 0..<layers {
            let y = outputs[l].rows(rows)
            multiply(x, mlp.kernel(l, in: params), into: y, addingToEveryRow: params.base + mlp.biases[l].offset,
                     then: l < mlp.layerCount - 1 ? mlp.activation : nil)
            x = y
        }
        return x
    }

    /// Back-propagates the output error (already in `outputDelta`) for `rows` through the
    /// hidden layers, and, if `inputGradient` is given, to the input: inputGradient = δ₀·W₀ᵀ.
    /// `transposed`, when it holds these `params`' kernels, turns each δ·Wᵀ into a `multiply`
    /// with the stored Wᵀ (the SVI loop's path, which uses each Wᵀ k times); otherwise δ·Wᵀ is
    /// read from W itself (`multiply(_:transposeOf:into:)`, one pass for a single use). On the
    /// kernel paths both give the same bits; on the portable path both are BLAS (NN on Wᵀ, NT
    /// on W), equal within rounding.
    public func backward(rows: Range<Int>, params: FloatBuffer, inputGradient: Matrix?,
                         transposed: TransposedKernels? = nil) {
        let t = transposed.flatMap { $0.holds(params) ? $0 : nil }
        func propagate(_ l: Int, into below: Matrix) {
            if let t {
                multiply(deltas[l].rows(rows), t.kernel(l), into: below)
            } else {
                multiply(deltas[l].rows(rows), transposeOf: mlp.kernel(l, in: params), into: below)
            }
        }
        for l in stride(from: mlp.layerCount - 1, to: 0, by: -1) {
            let below = deltas[l - 1].rows(rows)
            propagate(l, into: below)
            StepProfile.elementwise {
                mlp.activation.multiplyByDerivative(below.base, output: outputs[l - 1].rows(rows).base, count: below.count)
            }
        }
        if let g = inputGradient { propagate(0, into: g) }
    }

    /// grads += Σ_rows w_r · input_lᵀ · δ_l for every layer (w = `rowWeights`, one per row of
    /// `rows`, or 1), bias gradients included: one product per layer over all `rows`. By linearity
    /// of back-propagation in the output error, weighting the rows here is the same as weighting
    /// the output errors before the backward pass; the stored errors are not modified. With
    /// `overwrite`, this MLP's gradients in `grads` are set (=) instead, whatever they held.
    public func accumulateWeightGradients(input: Matrix, rows: Range<Int>, grads: FloatBuffer,
                                          rowWeights: UnsafePointer<Float>? = nil, overwrite: Bool = false) {
        precondition(input.rows == rows.count && input.cols == mlp.inputSize, "MLP input shape mismatch")
        var x = input
        for l in 0..<mlp.layerCount {
            accumulateTransposedProduct(x, deltas[l].rows(rows), into: mlp.kernel(l, in: grads),
                                        biasGradient: grads.base + mlp.biases[l].offset, rowWeights: rowWeights,
                                        scratch: KernelPath.activeHasProducts ? nil : weightedInputScratch, overwrite: overwrite)
            x = outputs[l].rows(rows)
        }
    }

    /// The portable path's weighted copy of a layer input (BLAS cannot weight rows by itself).
    private lazy var weightedInputScratch = FloatBuffer(count: capacity * mlp.sizes.dropLast().max()!)
}

/// Wᵀ (out × in, row-major) of every kernel of an MLP, so back-propagation's δ·Wᵀ is a plain
/// row-major product that `multiply` runs on strips of Wᵀ in place. Owners call `update(from:)`
/// whenever the parameters may have changed (the svi/bsvi objective and the evaluator's
/// refinement do it on entry to each batch); one transpose per training step replaces the k
/// transposes of the SVI loop's k backward passes (`multiply(_:transposeOf:into:)` transposes
/// W a strip at a time per call).
public final class TransposedKernels {
    public let mlp: MLP
    private let buffers: [FloatBuffer]
    /// The parameter buffer the transposes were taken from (identity, not contents). Weak, so a
    /// new buffer allocated at a freed one's address can never pass for it.
    private weak var source: FloatBuffer?

    public init(mlp: MLP) {
        self.mlp = mlp
        buffers = (0..<mlp.layerCount).map { FloatBuffer(count: mlp.sizes[$0] * mlp.sizes[$0 + 1]) }
    }

    /// Whether these are the transposes of `params` (as of the last `update`).
    public func holds(_ params: FloatBuffer) -> Bool { source === params }

    /// Layer l's Wᵀ: sizes[l+1] × sizes[l].
    public func kernel(_ l: Int) -> Matrix { buffers[l].matrix(rows: mlp.sizes[l + 1], cols: mlp.sizes[l]) }

    public func update(from params: FloatBuffer) {
        for l in 0..<mlp.layerCount {
            let w = mlp.kernel(l, in: params)
            bsvi_transpose(Int32(w.rows), Int32(w.cols), w.base, Int32(w.cols), buffers[l].base, Int32(w.rows))
        }
        source = params
    }
}
