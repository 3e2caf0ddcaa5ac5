/// Shape of the generative model and its inference network.
public struct ModelShape: Sendable, Equatable, Codable {
    public var inputDim: Int
    public var latentDim: Int
    /// Hidden widths in encoder order; the decoder uses them reversed.
    public var hiddenDims: [Int]
    public var activation: Activation

    public init(inputDim: Int, latentDim: Int, hiddenDims: [Int], activation: Activation) {
        self.inputDim = inputDim
        self.latentDim = latentDim
        self.hiddenDims = hiddenDims
        self.activation = activation
    }
}

/// The VAE's parameters as one flat vector: encoder x → (μ, log σ²), decoder z → Bernoulli
/// logits, and optionally the BSVI mixture logits α (π = softmax(α)).
public struct VAEModel {
    public let shape: ModelShape
    public let layout: ParameterLayout
    public let encoder: MLP
    public let decoder: MLP
    /// Present only for bsvi with learned π: k+1 logits.
    public let piLogits: ParameterTensor?

    public init(shape: ModelShape, piCount: Int = 0) {
        self.shape = shape
        var layout = ParameterLayout()
        encoder = MLP(prefix: "encoder", sizes: [shape.inputDim] + shape.hiddenDims + [2 * shape.latentDim],
                      activation: shape.activation, layout: &layout)
        decoder = MLP(prefix: "decoder", sizes: [shape.latentDim] + shape.hiddenDims.reversed() + [shape.inputDim],
                      activation: shape.activation, layout: &layout)
        piLogits = piCount > 0 ? layout.add("pi/logits", shape: [piCount]) : nil
        self.layout = layout
    }

    /// Floats in the flat parameter vector (the tensors and the gaps between them, ParameterLayout).
    public var vectorLength: Int { layout.vectorLength }

    /// Deterministic initialization from the seed (π logits start at 0: uniform π).
    public func makeInitialParameters(seed: UInt64) -> FloatBuffer {
        let p = FloatBuffer(count: layout.vectorLength)
        encoder.initialize(p, seed: seed, streamKey: 1)
        decoder.initialize(p, seed: seed, streamKey: 2)
        return p
    }
}
