import CBLAS
import CKernels

/// A non-owning, row-major, contiguous Float32 matrix view. The memory belongs to a
/// `FloatBuffer`; views are cheap values that slice rows without copying.
public struct Matrix {
    public let base: UnsafeMutablePointer<Float>
    public let rows: Int
    public let cols: Int

    public init(_ base: UnsafeMutablePointer<Float>, rows: Int, cols: Int) {
        self.base = base
        self.rows = rows
        self.cols = cols
    }

    public var count: Int { rows * cols }

    @inline(__always)
    public subscript(row: Int, col: Int) -> Float {
        get { base[row * cols + col] }
        nonmutating set { base[row * cols + col] = newValue }
    }

    @inline(__always)
    public func row(_ r: Int) -> UnsafeMutablePointer<Float> { base + r * cols }

    /// Rows `range` as a view of the same memory.
    public func rows(_ range: Range<Int>) -> Matrix {
        precondition(range.lowerBound >= 0 && range.upperBound <= rows, "row range outside the matrix")
        return Matrix(base + range.lowerBound * cols, rows: range.count, cols: cols)
    }

    public func fill(_ value: Float) { base.update(repeating: value, count: count) }

    public func copy(from other: Matrix) {
        precondition(other.rows == rows && other.cols == cols, "matrix copy between different shapes")
        base.update(from: other.base, count: count)
    }

    public var array: [Float] { Array(UnsafeBufferPointer(start: base, count: count)) }
}

/// Runs `body`, one m×k by k×n product of `routine` that is useful work: its multiply-adds
/// counted (MultiplyAddCount) and its time profiled (StepProfile) from one statement of its shape.
@inline(__always)
func usefulProduct<T>(_ routine: ProductRoutine, m: Int, k: Int, n: Int, _ body: () -> T) -> T {
    MultiplyAddCount.record(m: m, k: k, n: n)
    return StepProfile.product(routine, m: m, k: k, n: n, body)
}

/// C = alpha · op(A) · op(B) + beta · C on cblas_sgemm, with shapes checked.
public func gemm(_ a: Matrix, transposeA: Bool = false, _ b: Matrix, transposeB: Bool = false,
                 into c: Matrix, alpha: Float = 1, beta: Float = 0) {
    let m = transposeA ? a.cols : a.rows
    let k = transposeA ? a.rows : a.cols
    let kb = transposeB ? b.cols : b.rows
    let n = transposeB ? b.rows : b.cols
    precondition(k == kb && c.rows == m && c.cols == n,
                 "gemm shape mismatch: (\(m)x\(k)) · (\(kb)x\(n)) into (\(c.rows)x\(c.cols))")
    if m == 0 || n == 0 { return }
    if k == 0 {
        if beta == 0 { c.fill(0) } else if beta != 1 { for i in 0..<c.count { c.base[i] *= beta } }
        return
    }
    usefulProduct(.blas(transposeA: transposeA, transposeB: transposeB), m: m, k: k, n: n) {
        cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a.base, Int32(a.cols), b.base, Int32(b.cols),
                    beta, c.base, Int32(c.cols))
    }
}

/// C = f(A·B + bias): `bias` (c.cols values) added to every row when given, then the
/// `activation` f when given. On the AVX2 and AVX-512 kernel paths this is bsvi_sgemm_nn,
/// which reads B in place instead of packing both operands per call as BLAS does (the SVI loop's
/// products have 50–500 rows and a weight matrix) and applies f to each block of C as it is stored;
/// on the portable path it is cblas_sgemm with the bias copied into C first, then a pass of f.
/// `useKernel: false` forces the BLAS path (tests compare the two).
public func multiply(_ a: Matrix, _ b: Matrix, into c: Matrix, addingToEveryRow bias: UnsafePointer<Float>? = nil,
                     then activation: Activation? = nil, useKernel: Bool = KernelPath.activeHasProducts) {
    precondition(a.cols == b.rows && c.rows == a.rows && c.cols == b.cols,
                 "multiply shape mismatch: (\(a.rows)x\(a.cols)) · (\(b.rows)x\(b.cols)) into (\(c.rows)x\(c.cols))")
    precondition(!useKernel || KernelPath.activeHasProducts, "the \(KernelPath.active) path has no product kernels")
    if c.rows == 0 || c.cols == 0 { return }
    if useKernel {
        usefulProduct(.nn, m: a.rows, k: a.cols, n: b.cols) {
            bsvi_sgemm_nn(Int32(a.rows), Int32(a.cols), Int32(b.cols), a.base, Int32(a.cols), b.base, Int32(b.cols),
                          c.base, Int32(c.cols), bias, activation?.kernel ?? BSVI_ACTIVATION_NONE)
        }
        return
    }
    if let bias {
        StepProfile.elementwise { for r in 0..<c.rows { c.row(r).update(from: bias, count: c.cols) } }
        gemm(a, b, into: c, beta: 1)
    } else {
        gemm(a, b, into: c)
    }
    if let activation { StepProfile.elementwise { activation.apply(c.base, count: c.count) } }
}

/// C = A·Bᵀ, B given untransposed (c.cols × a.cols): back-propagation's δ·Wᵀ read from W
/// itself. On the kernel paths this is bsvi_sgemm_nt, the same bits as `multiply` with an
/// explicit Bᵀ (so a caller may hold transposes or not without changing a result); on the
/// portable path it is cblas_sgemm with B transposed.
public func multiply(_ a: Matrix, transposeOf b: Matrix, into c: Matrix, useKernel: Bool = KernelPath.activeHasProducts) {
    precondition(a.cols == b.cols && c.rows == a.rows && c.cols == b.rows,
                 "multiply shape mismatch: (\(a.rows)x\(a.cols)) · (\(b.rows)x\(b.cols))ᵀ into (\(c.rows)x\(c.cols))")
    precondition(!useKernel || KernelPath.activeHasProducts, "the \(KernelPath.active) path has no product kernels")
    if c.rows == 0 || c.cols == 0 { return }
    guard useKernel else { return gemm(a, b, transposeB: true, into: c) }
    usefulProduct(.nt, m: a.rows, k: a.cols, n: b.rows) {
        bsvi_sgemm_nt(Int32(a.rows), Int32(a.cols), Int32(b.rows), a.base, Int32(a.cols), b.base, Int32(b.cols), c.base,
                      Int32(c.cols))
    }
}

/// Weight gradients: C += Σ_r w_r · A[r]ᵀ · B[r] over the rows of A (rows × C.rows) and B
/// (rows × C.cols), w = `rowWeights` (rows values) or 1; with `biasGradient` (C.cols values) also
/// biasGradient += Σ_r w_r · B[r]. A and B are not modified. With `overwrite`, C (and the bias
/// gradient) are set to the sums, whatever they held: the bits of adding into zeros, on the kernel
/// paths without a pass that zeroes them first (the training step's gradient buffer). On the
/// kernel paths this is bsvi_sgemm_tn_accumulate, which applies the weights on the fly; on the
/// portable path the weighted rows of A go through `scratch` (at least A's size; allocated here
/// if nil) into cblas_sgemm, and the bias gradient is a gemv.
public func accumulateTransposedProduct(_ a: Matrix, _ b: Matrix, into c: Matrix, biasGradient: UnsafeMutablePointer<Float>?,
                                        rowWeights: UnsafePointer<Float>?, scratch: FloatBuffer? = nil, overwrite: Bool = false,
                                        useKernel: Bool = KernelPath.activeHasProducts) {
    precondition(a.rows == b.rows && c.rows == a.cols && c.cols == b.cols,
                 "transposed product shape mismatch: (\(a.rows)x\(a.cols))ᵀ · (\(b.rows)x\(b.cols)) into (\(c.rows)x\(c.cols))")
    precondition(!useKernel || KernelPath.activeHasProducts, "the \(KernelPath.active) path has no product kernels")
    if c.count == 0 || (a.rows == 0 && !overwrite) { return }
    if useKernel {  // (with no rows and `overwrite`, the kernel writes the empty sums: zeros)
        usefulProduct(.tn, m: c.rows, k: a.rows, n: c.cols) {
            bsvi_sgemm_tn_accumulate(Int32(c.rows), Int32(c.cols), Int32(a.rows), a.base, Int32(a.cols), b.base, Int32(b.cols),
                                     c.base, Int32(c.cols), biasGradient, rowWeights, overwrite ? 1 : 0)
        }
        return
    }
    if overwrite {
        // Zero first, then add: cblas' β = 0 would also skip reading C, but its gemv's β = 0 may
        // scale a NaN by 0, and this path is not the fast one.
        c.base.update(repeating: 0, count: c.count)
        biasGradient?.update(repeating: 0, count: c.cols)
    }
    if a.rows == 0 { return }
    var weighted: FloatBuffer? = nil
    var left = a
    if let rowWeights {
        let buffer = scratch.flatMap { $0.count >= a.count ? $0 : nil } ?? FloatBuffer(count: a.count)
        left = buffer.matrix(rows: a.rows, cols: a.cols)
        for r in 0..<a.rows {
            let w = rowWeights[r], source = a.row(r), target = left.row(r)
            for j in 0..<a.cols { target[j] = source[j] * w }
        }
        weighted = buffer
    }
    withExtendedLifetime(weighted) {
        gemm(left, transposeA: true, b, into: c, beta: 1)
        guard let biasGradient else { return }
        StepProfile.product(.blasBiasGradient, m: 1, k: b.rows, n: b.cols) {
            if let rowWeights {
                cblas_sgemv(CblasRowMajor, CblasTrans, Int32(b.rows), Int32(b.cols), 1, b.base, Int32(b.cols),
                            rowWeights, 1, 1, biasGradient, 1)
            } else {
                for r in 0..<b.rows {
                    let p = b.row(r)
                    for j in 0..<b.cols { biasGradient[j] += p[j] }
                }
            }
        }
    }
}

/// Sets the OpenBLAS thread count (one thread per MPI rank is what the trainer wants).
public func setBLASThreads(_ count: Int) { openblas_set_num_threads(Int32(count)) }
