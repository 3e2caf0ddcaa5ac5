import Foundation

/// Optional timing of the step's parts for `bsvi-dist bench`: matrix products (every gemm, also
/// per routine and shape) and element-wise passes (activations, likelihood, sampling, per-row
/// scaling). Off by default; when off each probe is one predictable branch. Single-threaded:
/// only `bench` turns it on, around steps that run on its one thread (the tally's array is not
/// safe to append to from two threads at once).
public enum StepProfile {
    nonisolated(unsafe) public static var enabled = false
    nonisolated(unsafe) public static var gemmNanoseconds: UInt64 = 0
    nonisolated(unsafe) public static var elementwiseNanoseconds: UInt64 = 0
    /// The products timed since the last reset, one entry per routine and shape (calls with and
    /// without bias, activation or `overwrite` share it), in the order each first ran. A step has
    /// a few dozen distinct shapes at most, so a linear search costs less than a dictionary's
    /// hashing and is far below a product's microseconds.
    nonisolated(unsafe) public private(set) static var products: [ProductTally] = []

    public static func reset() {
        gemmNanoseconds = 0
        elementwiseNanoseconds = 0
        products.removeAll(keepingCapacity: true)
    }

    @inline(__always)
    static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

    /// Times `body`, one call of `routine` on an m×k by k×n product, into the products' total and
    /// into that routine and shape's tally.
    @inline(__always)
    public static func product<T>(_ routine: ProductRoutine, m: Int, k: Int, n: Int, _ body: () -> T) -> T {
        guard enabled else { return body() }
        let t = now()
        defer { record(ProductShape(routine: routine, m: m, k: k, n: n), nanoseconds: now() &- t) }
        return body()
    }

    private static func record(_ shape: ProductShape, nanoseconds: UInt64) {
        gemmNanoseconds &+= nanoseconds
        if let i = products.firstIndex(where: { $0.shape == shape }) {
            products[i].calls += 1
            products[i].nanoseconds &+= nanoseconds
        } else {
            products.append(ProductTally(shape: shape, calls: 1, nanoseconds: nanoseconds))
        }
    }

    @inline(__always)
    public static func elementwise<T>(_ body: () -> T) -> T {
        guard enabled else { return body() }
        let t = now()
        defer { elementwiseNanoseconds &+= now() &- t }
        return body()
    }
}

/// Which routine ran a product (`bench --products` and its JSON name them so).
public enum ProductRoutine: String, Codable, Sendable {
    /// bsvi_sgemm_nn: C = f(A·B + bias), the forward products, and the SVI steps' δ·Wᵀ through
    /// a transpose of W held for the step.
    case nn
    /// bsvi_sgemm_nt: C = A·Bᵀ, back-propagation's δ·Wᵀ.
    case nt
    /// bsvi_sgemm_tn_accumulate: C (+)= Aᵀ·diag(w)·B, the weight gradients (m × n from k rows).
    case tn
    /// bsvi_sgemm_nn_bernoulli_log_likelihood: the output layer and its likelihood in one pass.
    case nnLikelihood = "nn_likelihood"
    /// bsvi_amx_bf16_linear: the evaluator's decoder on AMX tiles (eval --matmul-precision high|medium).
    case tileBF16 = "tile_bf16"
    /// bsvi_avx512_bf16_linear: the evaluator's decoder on AVX512_BF16 vectors (medium, without tiles).
    case vectorBF16 = "vector_bf16"
    /// cblas_sgemm on the portable path (or where a caller asks for BLAS), by transposes.
    case blasNN = "blas_nn", blasNT = "blas_nt", blasTN = "blas_tn", blasTT = "blas_tt"
    /// cblas_sgemv or its loop: a weight-gradient product's bias gradient on the BLAS path (m = 1).
    /// Not useful work in the benchmark's count (the kernels fold it into packing).
    case blasBiasGradient = "blas_bias_gradient"

    static func blas(transposeA: Bool, transposeB: Bool) -> ProductRoutine {
        switch (transposeA, transposeB) {
        case (false, false): .blasNN
        case (false, true): .blasNT
        case (true, false): .blasTN
        case (true, true): .blasTT
        }
    }
}

/// A routine and the m×k by k×n shape of its product (m·k·n multiply-adds a call).
public struct ProductShape: Equatable, Sendable {
    public var routine: ProductRoutine
    public var m: Int, k: Int, n: Int
    public var multiplyAdds: Int { m * k * n }
}

/// How often a product of one routine and shape ran, and for how long in all.
public struct ProductTally: Sendable {
    public var shape: ProductShape
    public var calls: Int
    public var nanoseconds: UInt64
}
