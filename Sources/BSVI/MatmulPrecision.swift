import CKernels

/// How the evaluator's decoder multiplies, named as PyTorch's float32 matmul precisions:
/// - `highest`: float32 products (the default; the same bits on every CPU and kernel path);
/// - `high`: each factor split into two bfloat16 numbers, hi + lo, and hi·hi + hi·lo + lo·hi summed
///   in float32 on AMX tiles (each product within ≈ 2⁻¹⁶ of float32's, not the same bits);
/// - `medium`: one bfloat16 per factor (≈ 2⁻⁸), sums in float32.
/// Only the importance samples' and the ELBOs' decoder passes change; the encoder and the SVI
/// refinement stay float32 (docs/evaluation.md has the measured effect on log p̂).
public enum MatmulPrecision: String, CaseIterable, Codable, Sendable {
    case highest, high, medium

    /// The factors' split: nil for float32 products, else 1 for hi + lo, 0 for hi alone.
    var bfloat16Split: Int32? {
        switch self {
        case .highest: return nil
        case .high: return 1
        case .medium: return 0
        }
    }

    /// Tile multiply-adds per multiply-add of the product, nil for float32: 3 for a hi + lo split
    /// (hi·hi, hi·lo and lo·hi), 1 for hi alone. What a tile precision's useful rate is multiplied
    /// by before it is set against the tiles' peak.
    public var tileProductsPerMultiplyAdd: Int? { bfloat16Split.map { $0 == 1 ? 3 : 1 } }

    /// The AMX tiles' bfloat16 peak in GFLOP/s over about `seconds` (nil without usable tiles):
    /// the yardstick of the high and medium products, as the FMA peak is float32's, and read the
    /// same way, as the best of five windows. On the shared Intel host one window reads either
    /// about 1,000 or about 2,500 GFLOP/s, flipping within seconds (docs/benchmarks.md, stop 58);
    /// a yardstick read in a slow window would put `high`'s fraction of it 2.5× too high.
    /// `window` reads one window (the tile loop; a test's stand-in).
    public static func tilePeakGigaflops(seconds: Double, window: (Double) -> Double = { bsvi_amx_bf16_peak_gflops($0) }) -> Double? {
        guard bsvi_amx_bf16_available() != 0 else { return nil }
        return bestOfPeakWindows(seconds: seconds, window)
    }

    /// Why this process cannot evaluate at this precision (nil: it can). high and medium need AMX
    /// tiles with bfloat16 (Intel Sapphire Rapids and later) and the avx512 kernel path, whose
    /// element-wise passes they use.
    public var unavailableReason: String? {
        guard self != .highest else { return nil }
        if bsvi_amx_bf16_available() == 0 {
            return "--matmul-precision \(rawValue) needs AMX tiles with bfloat16 (Intel Xeon Sapphire Rapids or later, and an OS that enables them); "
                + "this CPU (\(KernelPath.cpuDescription)) has none usable: use --matmul-precision highest (the default)"
        }
        if KernelPath.active != .avx512 {
            return "--matmul-precision \(rawValue) runs on the avx512 kernel path, and BSVI_KERNELS chose \(KernelPath.active.rawValue): "
                + "unset BSVI_KERNELS, or use --matmul-precision highest"
        }
        return nil
    }
}

/// The decoder's forward pass and Bernoulli likelihood with its products on AMX tiles in
/// bfloat16 (`MatmulPrecision.high`, `.medium`), for evaluation only: `pack` takes the weights
/// once per set of parameters; `logLikelihood` then scores rows of latents.
public final class TileDecoder {
    public let mlp: MLP
    public let precision: MatmulPrecision
    public let capacity: Int
    private let split: Int32
    private let packed: [FloatBuffer]
    /// Each layer's output for up to `capacity` rows: hidden activations, then the logits.
    private let outputs: [Matrix]
    private let storage: [FloatBuffer]

    public init(mlp: MLP, precision: MatmulPrecision, capacity: Int) {
        guard let split = precision.bfloat16Split else { preconditionFailure("TileDecoder is for bfloat16 precisions") }
        precondition(precision.unavailableReason == nil, precision.unavailableReason ?? "")
        self.mlp = mlp
        self.precision = precision
        self.capacity = capacity
        self.split = split
        let sizes = mlp.sizes
        packed = (0..<mlp.layerCount).map { l in
            FloatBuffer(count: bsvi_bf16_packed_words(Int32(sizes[l]), Int32(sizes[l + 1]), split))
        }
        let buffers = (0..<mlp.layerCount).map { FloatBuffer(count: capacity * sizes[$0 + 1]) }
        storage = buffers
        outputs = (0..<mlp.layerCount).map { buffers[$0].matrix(rows: capacity, cols: sizes[$0 + 1]) }
    }

    /// Packs the decoder's weights and biases from `params` (call again when they change).
    public func pack(_ params: FloatBuffer) {
        for l in 0..<mlp.layerCount {
            let kernel = mlp.kernel(l, in: params)
            bsvi_bf16_pack(Int32(kernel.rows), Int32(kernel.cols), kernel.base, Int32(kernel.cols),
                           params.base + mlp.biases[l].offset, split, packed[l].base)
        }
    }

    /// log p(x|z) for each row of `z` (at most `capacity`), row r against x row (r mod x.rows).
    public func logLikelihood(z: Matrix, x: Matrix, into out: UnsafeMutablePointer<Float>) {
        precondition(z.rows <= capacity && z.cols == mlp.inputSize && x.cols == mlp.outputSize, "decoder shapes")
        var input = z
        for l in 0..<mlp.layerCount {
            let y = outputs[l].rows(0..<z.rows)
            let activation = l < mlp.layerCount - 1 ? mlp.activation.kernel : BSVI_ACTIVATION_NONE
            usefulProduct(.tileBF16, m: input.rows, k: input.cols, n: y.cols) {
                bsvi_amx_bf16_linear(Int32(input.rows), Int32(input.cols), Int32(y.cols), input.base, Int32(input.cols),
                                     packed[l].base, split, y.base, Int32(y.cols), activation)
            }
            input = y
        }
        StepProfile.elementwise { Bernoulli.logLikelihood(x: x, logits: input, into: out) }
    }
}
