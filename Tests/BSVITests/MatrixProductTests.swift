import BSVI
import CKernels
import Foundation
import Testing

/// `multiply` and `accumulateTransposedProduct` (each kernel path's own products, and BLAS), the
/// transposed kernels the SVI loop back-propagates through, and the finiteness scan of the
/// step exchange, each against a plain Float64 reference, on every kernel path.
@Suite("Matrix products and transposes")
struct MatrixProductTests {
    /// Shapes for every edge of the kernels: register blocks of every height from 1 to 13 rows on
    /// AVX-512 and 1 to 6 on AVX2 (m rows are cut into ⌈m / 13⌉ or ⌈m / 6⌉ blocks of nearly equal
    /// height: 16 into two of 8, 20 into two of 10, 25 into 12 and 13, 100 into 12s and 13s), widths
    /// below, at and above the 16- and 32-column strips, inner sizes below, at and above AVX-512's
    /// 256-deep chunks and the weight gradients' 256-row ones (AVX2's products take up to 800 in one
    /// chunk: `chunkedSumsAreSequentialFMAs` crosses them). A forward product's last 33–40 columns
    /// are one strip on AVX-512, in blocks of at most 8 rows: n = 33–40 and 200 give it every height
    /// from 1 to 8 (m = 1, 2, 3, 7, 9 into 4 and 5, 11 into 5 and 6, 25 into 6s and 7, 16 into 8s).
    static let shapes = [(1, 1, 1), (2, 3, 5), (3, 8, 17), (4, 20, 24), (5, 4, 16), (6, 16, 16), (7, 17, 3), (9, 7, 33),
                         (11, 9, 40), (13, 50, 31), (16, 70, 40), (20, 120, 17), (25, 257, 33), (50, 200, 50),
                         (12, 33, 200), (100, 49, 784), (24, 600, 48), (1, 5, 36), (2, 9, 38), (3, 12, 35), (7, 30, 39)]
    /// The weight gradients' (m, rows, n) also cross chunks with row blocks of two heights on both
    /// paths (58: 11 and 12 rows on AVX-512, 5 and 6 on AVX2; A is packed row by row of A into
    /// every block's panel) and with a single block (m = 5, which then fetches each next strip).
    static let weightGradientShapes = shapes + [(58, 600, 50), (5, 300, 17)]

    /// The product paths a kernel path offers: its own kernel (if any) and BLAS.
    static func usesKernel(on path: KernelPath) -> [Bool] { onPath(path) { KernelPath.activeHasProducts } ? [true, false] : [false] }

    /// On the vector paths every entry of a product is one chain of FMAs in order of the inner
    /// index, from the bias (or zero, or what C held), whatever the chunk lengths: a chunk stores
    /// its sums in C and the next reloads them exactly. So AVX2's 800-deep chunks and AVX-512's
    /// 256-deep ones give the same bits, which this checks against the chain itself, past both
    /// lengths: C = A·B + bias, C = A·Bᵀ, and C += Aᵀ·diag(w)·B with its bias gradient (each weighted
    /// row w·B[r] rounded once, as the kernels pack it).
    @Test("the vector kernels' sums are FMA chains in order of the inner index, across chunks",
          arguments: KernelPath.supported.filter { onPath($0) { KernelPath.activeHasProducts } },
          [(9, 1000, 40), (13, 850, 17), (7, 1700, 20), (3, 257, 33)])
    func chunkedSumsAreSequentialFMAs(path: KernelPath, shape: (m: Int, k: Int, n: Int)) {
        let (m, k, n) = shape
        var values = TestValues(seed: UInt64(m * 5_000_000 + k * 1000 + n))
        let a = FloatBuffer(values.floats(m * k, -1, 1)), b = FloatBuffer(values.floats(k * n, -1, 1))
        let bt = FloatBuffer(count: n * k)
        for p in 0..<k { for j in 0..<n { bt[j * k + p] = b[p * n + j] } }
        let bias = FloatBuffer(values.floats(n, -1, 1)), weights = FloatBuffer(values.floats(k, 0, 2))
        let start = values.floats(k * n, -1, 1)  // C's first m × n for the weight gradient (m ≤ k)
        let forward = FloatBuffer(count: m * n), backward = FloatBuffer(count: m * n)
        let gradient = FloatBuffer(Array(start[0..<(m * n)])), biasGradient = FloatBuffer(Array(bias.array))
        onPath(path) {
            multiply(a.matrix(rows: m, cols: k), b.matrix(rows: k, cols: n), into: forward.matrix(rows: m, cols: n),
                     addingToEveryRow: UnsafePointer(bias.base))
            multiply(a.matrix(rows: m, cols: k), transposeOf: bt.matrix(rows: n, cols: k), into: backward.matrix(rows: m, cols: n))
            // A here is `a` read as k × m: rows of the gradient's sum are a's p-th m values.
            accumulateTransposedProduct(a.matrix(rows: k, cols: m), b.matrix(rows: k, cols: n), into: gradient.matrix(rows: m, cols: n),
                                        biasGradient: biasGradient.base, rowWeights: UnsafePointer(weights.base))
        }
        var differing = [0, 0, 0, 0]
        for j in 0..<n {
            var g = bias[j]
            for p in 0..<k { g += weights[p] * b[p * n + j] }
            if g.bitPattern != biasGradient[j].bitPattern { differing[3] += 1 }
            for i in 0..<m {
                var s = bias[j], t: Float = 0, u = start[i * n + j]
                for p in 0..<k {
                    s = s.addingProduct(a[i * k + p], b[p * n + j])
                    t = t.addingProduct(a[i * k + p], b[p * n + j])
                    u = u.addingProduct(a[p * m + i], weights[p] * b[p * n + j])
                }
                if s.bitPattern != forward[i * n + j].bitPattern { differing[0] += 1 }
                if t.bitPattern != backward[i * n + j].bitPattern { differing[1] += 1 }
                if u.bitPattern != gradient[i * n + j].bitPattern { differing[2] += 1 }
            }
        }
        #expect(differing == [0, 0, 0, 0], "m=\(m) k=\(k) n=\(n): entries off the FMA chain in A·B + bias, A·Bᵀ, the weight gradient, its bias gradient")
    }

    /// C = f(A·B + bias); C's padding (a sentinel row after C) must stay untouched.
    @Test("multiply (kernel and BLAS) equals the Float64 product, with and without bias and fused activation",
          arguments: KernelPath.supported, shapes)
    func product(path: KernelPath, shape: (m: Int, k: Int, n: Int)) {
        let (m, k, n) = shape
        var values = TestValues(seed: UInt64(m * 1_000_000 + k * 1000 + n))
        let a = FloatBuffer(values.floats(m * k, -1, 1))
        let b = FloatBuffer(values.floats(k * n, -1, 1))
        let bias = FloatBuffer(values.floats(n, -1, 1))
        for useKernel in Self.usesKernel(on: path) {
            for (useBias, activation) in [(false, nil), (true, nil), (true, .tanh), (false, .relu), (true, .softplus)] as [(Bool, Activation?)] {
                // One sentinel row after C: a store past the last row or column would land there.
                let c = FloatBuffer(count: (m + 1) * n)
                for i in 0..<c.count { c[i] = .nan }
                onPath(path) {
                    multiply(a.matrix(rows: m, cols: k), b.matrix(rows: k, cols: n), into: c.matrix(rows: m, cols: n),
                             addingToEveryRow: useBias ? UnsafePointer(bias.base) : nil, then: activation, useKernel: useKernel)
                }
                var worst = 0.0
                for i in 0..<m {
                    for j in 0..<n {
                        var s = useBias ? Double(bias[j]) : 0
                        for p in 0..<k { s += Double(a[i * k + p]) * Double(b[p * n + j]) }
                        if let activation { s = Reference.activation(activation, s) }  // f' ≤ 1: errors do not grow
                        // Float32 accumulation of k products of magnitude ≤ 1.
                        // `!(e <= worst)` also catches NaN: an unwritten cell still holds the NaN fill.
                        let e = abs(Double(c[i * n + j]) - s) / (Double(k).squareRoot() + 1)
                        if !(e <= worst) { worst = e }
                    }
                }
                #expect(worst < 1e-6, "m=\(m) k=\(k) n=\(n) bias=\(useBias) f=\(String(describing: activation)) kernel=\(useKernel): scaled error \(worst)")
                for j in 0..<n { #expect(c[m * n + j].isNaN, "wrote past C's last row at column \(j)") }
            }
        }
    }

    /// C = A·Bᵀ from B itself: the Float64 product, and on a kernel path bit for bit what
    /// `multiply` gives with an explicit Bᵀ (so holding transposes or not never changes a run).
    @Test("multiply(transposeOf:) (kernel and BLAS) equals the Float64 product; the kernel's bits are multiply's on Bᵀ",
          arguments: KernelPath.supported, shapes)
    func productWithTranspose(path: KernelPath, shape: (m: Int, k: Int, n: Int)) {
        let (m, k, n) = shape
        var values = TestValues(seed: UInt64(m * 3_000_000 + k * 1000 + n))
        let a = FloatBuffer(values.floats(m * k, -1, 1))
        let b = FloatBuffer(values.floats(n * k, -1, 1))  // n × k: the product reads it transposed
        let bt = FloatBuffer(count: k * n)
        for j in 0..<n { for p in 0..<k { bt[p * n + j] = b[j * k + p] } }
        for useKernel in Self.usesKernel(on: path) {
            let c = FloatBuffer(count: (m + 1) * n), viaTranspose = FloatBuffer(count: m * n)
            for i in 0..<c.count { c[i] = .nan }
            onPath(path) {
                multiply(a.matrix(rows: m, cols: k), transposeOf: b.matrix(rows: n, cols: k), into: c.matrix(rows: m, cols: n),
                         useKernel: useKernel)
                multiply(a.matrix(rows: m, cols: k), bt.matrix(rows: k, cols: n), into: viaTranspose.matrix(rows: m, cols: n),
                         useKernel: useKernel)
            }
            var worst = 0.0, differentBits = 0
            for i in 0..<m {
                for j in 0..<n {
                    var s = 0.0
                    for p in 0..<k { s += Double(a[i * k + p]) * Double(b[j * k + p]) }
                    let e = abs(Double(c[i * n + j]) - s) / (Double(k).squareRoot() + 1)
                    if !(e <= worst) { worst = e }
                    if c[i * n + j].bitPattern != viaTranspose[i * n + j].bitPattern { differentBits += 1 }
                }
            }
            #expect(worst < 1e-6, "m=\(m) k=\(k) n=\(n) kernel=\(useKernel): scaled error \(worst)")
            if useKernel { #expect(differentBits == 0, "m=\(m) k=\(k) n=\(n): \(differentBits) entries differ from multiply on Bᵀ") }
            for j in 0..<n { #expect(c[m * n + j].isNaN, "wrote past C's last row at column \(j)") }
        }
    }

    /// bsvi_sgemm_nt itself, with row strides wider than the rows (A k+3, B k+5, C n+7) and k = 0:
    /// bit for bit bsvi_sgemm_nn on an explicit Bᵀ, and C's padding untouched.
    @Test("bsvi_sgemm_nt with padded strides equals bsvi_sgemm_nn on Bᵀ bit for bit, padding untouched",
          arguments: KernelPath.supported, [(3, 0, 5), (1, 1, 1), (7, 9, 17), (13, 600, 37), (25, 1000, 47), (12, 257, 100)])
    func ntKernelWithStrides(path: KernelPath, shape: (m: Int, k: Int, n: Int)) {
        let (m, k, n) = shape
        guard onPath(path, { KernelPath.activeHasProducts }) else { return }
        let lda = k + 3, ldb = k + 5, ldc = n + 7
        var values = TestValues(seed: UInt64(m * 5_000_000 + k * 1000 + n))
        let a = FloatBuffer(values.floats(m * lda, -1, 1)), b = FloatBuffer(values.floats(n * ldb, -1, 1))
        let bt = FloatBuffer(count: max(1, k * n))
        for j in 0..<n { for p in 0..<k { bt[p * n + j] = b[j * ldb + p] } }
        let c = FloatBuffer(count: m * ldc), reference = FloatBuffer(count: m * n)
        for i in 0..<c.count { c[i] = .nan }
        onPath(path) {
            bsvi_sgemm_nt(Int32(m), Int32(k), Int32(n), a.base, Int32(lda), b.base, Int32(ldb), c.base, Int32(ldc))
            bsvi_sgemm_nn(Int32(m), Int32(k), Int32(n), a.base, Int32(lda), bt.base, Int32(n), reference.base, Int32(n), nil,
                          BSVI_ACTIVATION_NONE)
        }
        var differentBits = 0, paddingWritten = 0
        for i in 0..<m {
            for j in 0..<n where c[i * ldc + j].bitPattern != reference[i * n + j].bitPattern { differentBits += 1 }
            for j in n..<ldc where !c[i * ldc + j].isNaN { paddingWritten += 1 }
        }
        #expect(differentBits == 0, "m=\(m) k=\(k) n=\(n): \(differentBits) entries differ from bsvi_sgemm_nn on Bᵀ")
        #expect(paddingWritten == 0, "m=\(m) k=\(k) n=\(n): \(paddingWritten) padding cells written")
        if k == 0 { #expect((0..<m).allSatisfy { i in (0..<n).allSatisfy { c[i * ldc + $0] == 0 } }, "k = 0 must give C = 0") }
    }

    /// B where a weight matrix in the parameter vector puts it: `offset` floats past a cache line,
    /// so that every strip row spans two lines (the AVX2 products then read a copy of each strip;
    /// product_drivers.inc, strip_to_read). The products with B there — plain, with bias and tanh,
    /// and the output layer fused with the likelihood — must give the bits of B on a cache line.
    @Test("bsvi_sgemm_nn and the fused likelihood give the same bits with B off a cache line",
          arguments: KernelPath.supported, [(13, 200, 784), (7, 600, 48), (100, 49, 37), (12, 257, 100), (2, 5, 16)])
    func productsWithBOffALine(path: KernelPath, shape: (m: Int, k: Int, n: Int)) {
        let (m, k, n) = shape
        guard onPath(path, { KernelPath.activeHasProducts }) else { return }
        var values = TestValues(seed: UInt64(m * 7_000_000 + k * 1000 + n))
        let a = FloatBuffer(values.floats(m * k, -1, 1)), bValues = values.floats(k * n, -0.3, 0.3)
        let bias = FloatBuffer(values.floats(n, -0.5, 0.5)), x = FloatBuffer(values.bits(2 * n))
        /// C = A·B (+ bias, tanh) and the fused log-likelihoods, with B `offset` floats into its buffer.
        func products(offset: Int, ldb: Int) -> (plain: [UInt32], activated: [UInt32], likelihood: [UInt32]) {
            let storage = FloatBuffer(count: offset + k * ldb + 16)
            precondition(UInt(bitPattern: storage.base) % 64 == 0, "FloatBuffer starts on a cache line")
            for p in 0..<k { for j in 0..<n { storage[offset + p * ldb + j] = bValues[p * n + j] } }
            let b = storage.base + offset
            let plain = FloatBuffer(count: m * n), activated = FloatBuffer(count: m * n), ll = FloatBuffer(count: m)
            onPath(path) {
                bsvi_sgemm_nn(Int32(m), Int32(k), Int32(n), a.base, Int32(k), b, Int32(ldb), plain.base, Int32(n), nil,
                              BSVI_ACTIVATION_NONE)
                bsvi_sgemm_nn(Int32(m), Int32(k), Int32(n), a.base, Int32(k), b, Int32(ldb), activated.base, Int32(n), bias.base,
                              BSVI_ACTIVATION_TANH)
                bsvi_sgemm_nn_bernoulli_log_likelihood(Int32(m), Int32(k), Int32(n), a.base, Int32(k), b, Int32(ldb), bias.base,
                                                       x.base, Int32(n), 2, ll.base)
            }
            return (plain.array.map(\.bitPattern), activated.array.map(\.bitPattern), ll.array.map(\.bitPattern))
        }
        // Row strides that keep every row off a line with it (a multiple of 16 floats), and the
        // model's own n.
        let ldb = (n + 15) / 16 * 16
        let aligned = products(offset: 0, ldb: ldb)
        for offset in [1, 4, 12] {
            for stride in Set([ldb, n]) {
                let shifted = products(offset: offset, ldb: stride)
                #expect(shifted.plain == aligned.plain, "m=\(m) k=\(k) n=\(n), B \(offset) floats off a line, ldb \(stride)")
                #expect(shifted.activated == aligned.activated, "with bias and tanh: m=\(m) k=\(k) n=\(n), offset \(offset)")
                #expect(shifted.likelihood == aligned.likelihood, "fused likelihood: m=\(m) k=\(k) n=\(n), offset \(offset)")
            }
        }
    }

    /// C += Σ_r w_r A[r]ᵀ B[r] and the bias gradient Σ_r w_r B[r], with and without row weights
    /// (including zero and denormal-sized weights), accumulating onto what C already holds.
    @Test("accumulateTransposedProduct (kernel and BLAS) equals the Float64 weighted sum",
          arguments: KernelPath.supported, weightGradientShapes)
    func transposedProduct(path: KernelPath, shape: (m: Int, rows: Int, n: Int)) {
        let (m, rows, n) = shape
        var values = TestValues(seed: UInt64(m * 7_000_000 + rows * 1000 + n))
        let a = FloatBuffer(values.floats(rows * m, -1, 1))
        let b = FloatBuffer(values.floats(rows * n, -1, 1))
        let start = values.floats(m * n, -1, 1), biasStart = values.floats(n, -1, 1)
        let weights = FloatBuffer((0..<rows).map { r in r % 5 == 0 ? 0 : r % 7 == 0 ? 1e-39 : Float(values.uniform(0, 2)) })
        for useKernel in Self.usesKernel(on: path) {
            for weighted in [false, true] {
                let c = FloatBuffer(count: (m + 1) * n), bias = FloatBuffer(count: n + 1)
                for i in 0..<c.count { c[i] = i < m * n ? start[i] : .nan }
                for j in 0...n { bias[j] = j < n ? biasStart[j] : .nan }
                onPath(path) {
                    accumulateTransposedProduct(a.matrix(rows: rows, cols: m), b.matrix(rows: rows, cols: n),
                                                into: c.matrix(rows: m, cols: n), biasGradient: bias.base,
                                                rowWeights: weighted ? UnsafePointer(weights.base) : nil, useKernel: useKernel)
                }
                var worst = 0.0
                for j in 0..<n {
                    var g = Double(biasStart[j])
                    for r in 0..<rows { g += (weighted ? Double(weights[r]) : 1) * Double(b[r * n + j]) }
                    let e = abs(Double(bias[j]) - g) / (Double(rows).squareRoot() + 1)
                    if !(e <= worst) { worst = e }
                    for i in 0..<m {
                        var s = Double(start[i * n + j])
                        for r in 0..<rows { s += (weighted ? Double(weights[r]) : 1) * Double(a[r * m + i]) * Double(b[r * n + j]) }
                        let e = abs(Double(c[i * n + j]) - s) / (Double(rows).squareRoot() + 1)
                        if !(e <= worst) { worst = e }
                    }
                }
                #expect(worst < 2e-6, "m=\(m) rows=\(rows) n=\(n) weighted=\(weighted) kernel=\(useKernel): scaled error \(worst)")
                for j in 0..<n { #expect(c[m * n + j].isNaN, "wrote past C's last row at column \(j)") }
                #expect(bias[n].isNaN, "wrote past the bias gradient")
            }
        }
    }

    /// With `overwrite`, C and the bias gradient are written, never read: NaN in them beforehand
    /// must not show, and the bits must be those of accumulating into zeros, on every row chunk
    /// (600 rows are chunks of 256, 256 and 88, of which only the first starts from zero) and with
    /// no rows at all (an empty sum: zeros).
    @Test("accumulateTransposedProduct with overwrite gives the bits of accumulating into zeros, whatever C held",
          arguments: KernelPath.supported, weightGradientShapes + [(3, 0, 17), (40, 0, 33)])
    func transposedProductOverwrites(path: KernelPath, shape: (m: Int, rows: Int, n: Int)) {
        let (m, rows, n) = shape
        var values = TestValues(seed: UInt64(m * 5_000_000 + rows * 1000 + n))
        let a = FloatBuffer(values.floats(rows * m, -1, 1))
        let b = FloatBuffer(values.floats(rows * n, -1, 1))
        let weights = FloatBuffer(values.floats(rows, 0, 2))
        for useKernel in Self.usesKernel(on: path) {
            for weighted in [false, true] {
                func product(startingFrom start: Float, overwrite: Bool) -> (c: [Float], bias: [Float]) {
                    let c = FloatBuffer([Float](repeating: start, count: m * n)), bias = FloatBuffer([Float](repeating: start, count: n))
                    onPath(path) {
                        accumulateTransposedProduct(a.matrix(rows: rows, cols: m), b.matrix(rows: rows, cols: n),
                                                    into: c.matrix(rows: m, cols: n), biasGradient: bias.base,
                                                    rowWeights: weighted ? UnsafePointer(weights.base) : nil, overwrite: overwrite,
                                                    useKernel: useKernel)
                    }
                    return (c.array, bias.array)
                }
                let added = product(startingFrom: 0, overwrite: false), written = product(startingFrom: .nan, overwrite: true)
                let label = "m=\(m) rows=\(rows) n=\(n) weighted=\(weighted) kernel=\(useKernel)"
                func differing(_ x: [Float], _ y: [Float]) -> Int { zip(x, y).filter { $0.bitPattern != $1.bitPattern }.count }
                #expect(differing(written.c, added.c) == 0, "C differs from the accumulation into zeros: \(label)")
                #expect(differing(written.bias, added.bias) == 0, "bias gradient differs: \(label)")
                if rows == 0 { #expect(written.c.allSatisfy { $0 == 0 } && written.bias.allSatisfy { $0 == 0 }, "no rows: \(label)") }
            }
        }
    }

    @Test("transpose is exact for tile-aligned and ragged shapes",
          arguments: KernelPath.supported, [(1, 1), (8, 8), (9, 17), (50, 200), (200, 784), (23, 5)])
    func transpose(path: KernelPath, shape: (rows: Int, cols: Int)) {
        let (rows, cols) = shape
        var values = TestValues(seed: UInt64(rows * 1000 + cols))
        let mlp = MLPForTranspose.make(rows: rows, cols: cols)
        let params = FloatBuffer(values.floats(mlp.layout.vectorLength, -2, 2))
        let t = TransposedKernels(mlp: mlp.mlp)
        #expect(!t.holds(params))
        onPath(path) { t.update(from: params) }
        #expect(t.holds(params))
        let w = params.matrix(rows: rows, cols: cols, offset: mlp.mlp.kernels[0].offset)
        let wt = t.kernel(0)
        #expect(wt.rows == cols && wt.cols == rows)
        var mismatches = 0
        withExtendedLifetime(params) {
            for i in 0..<rows { for j in 0..<cols where wt[j, i] != w[i, j] { mismatches += 1 } }
        }
        #expect(mismatches == 0)
    }

    /// Back-propagation through the stored Wᵀ must give what the product from W itself gives (the
    /// same bits on a kernel path, BLAS's within rounding on the portable one), and a
    /// TransposedKernels taken from another buffer must not be used.
    @Test("backward through TransposedKernels equals backward from W itself", arguments: KernelPath.supported)
    func backwardPaths(path: KernelPath) {
        var values = TestValues(seed: 7)
        var layout = ParameterLayout()
        let mlp = MLP(prefix: "decoder", sizes: [5, 23, 40, 37], activation: .tanh, layout: &layout)
        let params = FloatBuffer(values.floats(layout.vectorLength, -0.5, 0.5))
        let other = FloatBuffer(values.floats(layout.vectorLength, -0.5, 0.5))
        let rows = 9
        let inputBuffer = FloatBuffer(values.floats(rows * 5, -1, 1))
        let input = inputBuffer.matrix(rows: rows, cols: 5)
        let error = values.floats(rows * 37, -1, 1)

        func run(_ transposed: TransposedKernels?) -> [Float] { onPath(path) { runOnPath(transposed) } }
        func runOnPath(_ transposed: TransposedKernels?) -> [Float] {
            let work = MLPWorkspace(mlp: mlp, capacity: rows)
            work.forward(input, rows: 0..<rows, params: params)
            for i in 0..<error.count { work.outputDelta.base[i] = error[i] }
            let dx = FloatBuffer(count: rows * 5)
            work.backward(rows: 0..<rows, params: params, inputGradient: dx.matrix(rows: rows, cols: 5),
                          transposed: transposed)
            return dx.array + work.deltas[0].array + work.deltas[1].array
        }
        // Matrix is a view: the buffers behind `input` must outlive every run.
        defer { withExtendedLifetime(inputBuffer) {} }
        let reference = run(nil)
        let fresh = TransposedKernels(mlp: mlp)
        onPath(path) { fresh.update(from: params) }
        let viaTranspose = run(fresh)
        let worst = zip(reference, viaTranspose).map { abs($0 - $1) }.max() ?? .nan
        #expect(worst < 1e-5, "largest difference \(worst)")
        if onPath(path, { KernelPath.activeHasProducts }) {
            #expect(viaTranspose.map(\.bitPattern) == reference.map(\.bitPattern), "the kernel path's two routes differ in bits")
        }
        let stale = TransposedKernels(mlp: mlp)
        stale.update(from: other)
        #expect(run(stale) == reference, "kernels of another buffer were used")
    }

    @Test("maxMagnitude is max |x|, ∞ for ±∞ and NaN for a NaN anywhere, including the tail; allFinite follows",
          arguments: KernelPath.supported, [1, 15, 16, 17, 63, 64, 65, 100, 1001])
    func finiteness(path: KernelPath, count: Int) {
        let p = FloatBuffer(count: count)
        for i in 0..<count { p[i] = Float(i) * 1e30 - 3e32 }
        p[0] = 1e-40  // denormals are finite (with or without flushing)
        func allFinite(_ p: UnsafePointer<Float>, count: Int) -> Bool { onPath(path) { BSVI.allFinite(p, count: count) } }
        func maxMagnitude(_ p: UnsafePointer<Float>, count: Int) -> Float { onPath(path) { BSVI.maxMagnitude(p, count: count) } }
        #expect(allFinite(p.base, count: count))
        #expect(maxMagnitude(p.base, count: count) == p.array.map(abs).max()!)
        for position in Set([0, count / 2, count - 1]) {
            for bad in [Float.nan, .infinity, -.infinity] {
                let saved = p[position]
                p[position] = bad
                #expect(!allFinite(p.base, count: count), "\(bad) at \(position) of \(count)")
                let m = maxMagnitude(p.base, count: count)
                #expect(bad.isNaN ? m.isNaN : m == .infinity, "max |x| with \(bad) at \(position) of \(count): \(m)")
                p[position] = saved
            }
            // The largest magnitude wins whether it is positive or negative.
            let saved = p[position]
            p[position] = -4e37
            #expect(maxMagnitude(p.base, count: count) == 4e37)
            p[position] = saved
        }
        p[count - 1] = .greatestFiniteMagnitude
        #expect(allFinite(p.base, count: count), "a large finite value is finite")
    }
}

/// A one-layer MLP whose kernel is rows × cols, to exercise TransposedKernels on any shape.
private struct MLPForTranspose {
    let mlp: MLP
    let layout: ParameterLayout
    static func make(rows: Int, cols: Int) -> MLPForTranspose {
        var layout = ParameterLayout()
        let mlp = MLP(prefix: "t", sizes: [rows, cols], activation: .tanh, layout: &layout)
        return MLPForTranspose(mlp: mlp, layout: layout)
    }
}
