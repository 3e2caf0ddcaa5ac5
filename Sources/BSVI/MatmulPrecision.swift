import CKernels

/// How the evaluator's decoder multiplies, named as PyTorch's float32 matmul precisions:
/// - `highest`: float32 products (the default; the same bits on every CPU and kernel path);
/// - `high`: each factor split into two bfloat16 numbers, hi + lo, and hi·hi + hi·lo + lo·hi summed
///   in float32 on AMX tiles (each product within ≈ 2⁻¹⁶ of float32's, not the same bits);
/// - `medium`: one bfloat16 per factor (≈ 2⁻⁸), sums in float32, on AMX tiles or AVX512_BF16 vectors.
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

    /// bfloat16 multiply-adds per multiply-add of the product, nil for float32: 3 for a hi + lo
    /// split (hi·hi, hi·lo and lo·hi), 1 for hi alone. What a bfloat16 precision's useful rate is
    /// multiplied by before it is set against its unit's peak.
    public var bfloat16ProductsPerMultiplyAdd: Int? { bfloat16Split.map { $0 == 1 ? 3 : 1 } }

    /// The units that can multiply at this precision, the faster first: none for float32. high
    /// runs on tiles only: on VDPBF16PS its three products take 1.5 instructions per float32
    /// multiply-add, slower than `highest` (docs/benchmarks.md, stop 57).
    public var units: [BFloat16Unit] {
        switch self {
        case .highest: return []
        case .high: return [.tiles]
        case .medium: return [.tiles, .vectors]
        }
    }

    /// The unit this process multiplies on at this precision: the first of `units` it has.
    public var unit: BFloat16Unit? { units.first { $0.isAvailable } }

    /// Why this process cannot evaluate at this precision (nil: it can). high needs AMX tiles
    /// with bfloat16, medium those or AVX512_BF16; both the avx512 kernel path, whose element-wise
    /// passes they use.
    public var unavailableReason: String? {
        guard self != .highest else { return nil }
        if unit == nil {
            let needs = units.map(\.hardware).joined(separator: ", or ")
            let instead = self == .high && BFloat16Unit.vectors.isAvailable
                ? "use --matmul-precision highest (on AVX512_BF16 alone high would run slower than highest) or medium"
                : "use --matmul-precision highest (the default)"
            return "--matmul-precision \(rawValue) needs \(needs); this CPU (\(KernelPath.cpuDescription)) has none usable: \(instead)"
        }
        if KernelPath.active != .avx512 {
            return "--matmul-precision \(rawValue) runs on the avx512 kernel path, and BSVI_KERNELS chose \(KernelPath.active.rawValue): "
                + "unset BSVI_KERNELS, or use --matmul-precision highest"
        }
        return nil
    }
}

/// The hardware that multiplies bfloat16 factors for `MatmulPrecision.high` and `.medium`. Both
/// read the same packed weights (`bsvi_bf16_pack`) and add exact products into float32 sums, in
/// different orders, so their bits differ.
public enum BFloat16Unit: String, CaseIterable, Codable, Sendable {
    /// AMX tiles, TDPBF16PS (Intel Xeon Sapphire Rapids and later): 14× the FMA peak on the
    /// Intel model 207 (docs/benchmarks.md, stop 56).
    case tiles
    /// AVX512_BF16's VDPBF16PS on 512-bit vectors (AMD Zen 4 and later, Intel Cooper Lake): two
    /// multiply-adds a 32-bit lane, 2× the FMA's where it issues at the FMA's rate.
    case vectors

    public var isAvailable: Bool {
        switch self {
        case .tiles: return bsvi_amx_bf16_available() != 0
        case .vectors: return bsvi_avx512_bf16_available() != 0
        }
    }

    /// The unit in reports: "AMX tiles", "AVX512_BF16 vectors".
    public var displayName: String { self == .tiles ? "AMX tiles" : "AVX512_BF16 vectors" }

    /// What a user's CPU needs for this unit (error messages).
    var hardware: String {
        switch self {
        case .tiles: return "AMX tiles with bfloat16 (Intel Xeon Sapphire Rapids or later, and an OS that enables them)"
        case .vectors: return "AVX512_BF16 (AMD Zen 4 or later, Intel Xeon Cooper Lake)"
        }
    }

    /// This unit's bfloat16 peak in GFLOP/s over about `seconds` (nil where it is unavailable):
    /// the yardstick of its products, as the FMA peak is float32's, and read the same way, as
    /// the best of five windows. On the shared Intel host one window of the tiles reads either
    /// about 1,000 or about 2,500 GFLOP/s, flipping within seconds (docs/benchmarks.md, stop 58);
    /// a yardstick read in a slow window would put `high`'s fraction of it 2.5× too high.
    /// `window` reads one window (the unit's register-only loop; a test's stand-in).
    public func peakGigaflops(seconds: Double, window: ((Double) -> Double)? = nil) -> Double? {
        guard isAvailable else { return nil }
        let unit = self
        return bestOfPeakWindows(seconds: seconds, window ?? { unit == .tiles ? bsvi_amx_bf16_peak_gflops($0) : bsvi_avx512_bf16_peak_gflops($0) })
    }

    /// C = f(A·B + bias) at `split` from B as `bsvi_bf16_pack` packed it (the vectors: split 0 only).
    func linear(_ a: Matrix, packed: UnsafePointer<Float>, split: Int32, into c: Matrix, activation: bsvi_activation) {
        switch self {
        case .tiles:
            usefulProduct(.tileBF16, m: a.rows, k: a.cols, n: c.cols) {
                bsvi_amx_bf16_linear(Int32(a.rows), Int32(a.cols), Int32(c.cols), a.base, Int32(a.cols), packed, split,
                                     c.base, Int32(c.cols), activation)
            }
        case .vectors:
            precondition(split == 0, "VDPBF16PS runs medium only")
            usefulProduct(.vectorBF16, m: a.rows, k: a.cols, n: c.cols) {
                bsvi_avx512_bf16_linear(Int32(a.rows), Int32(a.cols), Int32(c.cols), a.base, Int32(a.cols), packed,
                                        c.base, Int32(c.cols), activation)
            }
        }
    }
}

/// The decoder's forward pass and Bernoulli likelihood with its products in bfloat16
/// (`MatmulPrecision.high`, `.medium`) on a `BFloat16Unit`, for evaluation only: `pack` takes the
/// weights once per set of parameters; `logLikelihood` then scores rows of latents.
public final class BFloat16Decoder {
    public let mlp: MLP
    public let precision: MatmulPrecision
    public let unit: BFloat16Unit
    public let capacity: Int
    private let split: Int32
    private let packed: [FloatBuffer]
    /// Each layer's output for up to `capacity` rows: hidden activations, then the logits.
    private let outputs: [Matrix]
    private let storage: [FloatBuffer]

    /// `unit`: the one `precision` prefers here when nil (a test's choice otherwise).
    public init(mlp: MLP, precision: MatmulPrecision, capacity: Int, unit: BFloat16Unit? = nil) {
        guard let split = precision.bfloat16Split else { preconditionFailure("BFloat16Decoder is for bfloat16 precisions") }
        precondition(precision.unavailableReason == nil, precision.unavailableReason ?? "")
        let unit = unit ?? precision.unit!
        precondition(precision.units.contains(unit) && unit.isAvailable, "\(precision.rawValue) on \(unit.rawValue): not here")
        self.mlp = mlp
        self.precision = precision
        self.unit = unit
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
            unit.linear(input, packed: packed[l].base, split: split, into: y, activation: activation)
            input = y
        }
        StepProfile.elementwise { Bernoulli.logLikelihood(x: x, logits: input, into: out) }
    }
}
