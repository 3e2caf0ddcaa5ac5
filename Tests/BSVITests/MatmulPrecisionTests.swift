import BSVI
import CKernels
import Foundation
import Testing

/// `eval --matmul-precision high|medium`: the bfloat16 split of a float32 value, the AMX tile
/// product against a Float64 sum of the same bfloat16 factors, and the tile decoder's
/// log-likelihoods against the Float64 model (TestSupport's `Reference`).
@Suite("bfloat16 products on AMX tiles")
struct MatmulPrecisionTests {
    /// The tiles run here (the products' tests need no more).
    static let amx = bsvi_amx_bf16_available() != 0
    /// The tile decoder runs here: the tiles, and the avx512 path active (the numerics also run
    /// with BSVI_KERNELS=portable).
    static let tileDecoder = MatmulPrecision.high.unavailableReason == nil

    static func split(_ values: [Float]) -> (hi: [Float], lo: [Float]) {
        var hi = [Float](repeating: .nan, count: values.count), lo = hi
        bsvi_bf16_split(values, &hi, &lo, values.count)
        return (hi, lo)
    }

    @Test("hi = bf16(x) rounds to nearest even, lo = bf16(x − hi), and x − hi − lo is below 2⁻¹⁶|x|")
    func splitRounding() {
        // 1 + 2⁻⁸ lies halfway between 1 and 1 + 2⁻⁷: the even neighbour is 1. 1 + 3·2⁻⁸ lies
        // halfway between 1 + 2⁻⁷ (odd) and 1 + 2⁻⁶ (even).
        let e8: Float = 0x1p-8, e20: Float = 0x1p-20
        let inputs: [Float] = [1, 1 + e8, 1 + 3 * e8, -(1 + e8), 1 + e8 + e20]
        let expectedHi: [Float] = [1, 1, 1 + 4 * e8, -1, 1 + 2 * e8]
        // The last lo, −2⁻⁸ + 2⁻²⁰, needs more than bfloat16's 8 bits: it rounds to −2⁻⁸.
        let expectedLo: [Float] = [0, e8, -e8, -e8, -e8]
        let ties = Self.split(inputs)
        #expect(ties.hi == expectedHi)
        #expect(ties.lo == expectedLo)
        // ±∞ and NaN keep their class: the rounding's carry would turn a NaN with a full payload
        // (0x7FFFFFFF, as an invalid operation may leave) into ±0.
        let fullNaN = Float(bitPattern: 0x7FFF_FFFF), negativeFullNaN = Float(bitPattern: 0xFFFF_FFFF)
        let special = Self.split([.infinity, -.infinity, fullNaN, negativeFullNaN])
        #expect(special.hi[0] == .infinity && special.hi[1] == -.infinity && special.hi[2].isNaN && special.hi[3].isNaN)
        var values = TestValues(seed: 11)
        let x = values.floats(4000, -50, 50) + values.floats(1000, -1e-3, 1e-3)
        let (hi, lo) = Self.split(x)
        for i in x.indices {
            let value = Double(x[i]), h = Double(hi[i]), l = Double(lo[i])
            let lowBits = (hi[i].bitPattern | lo[i].bitPattern) & 0xFFFF
            #expect(lowBits == 0, "\(x[i]) is not split into bfloat16 values")
            #expect(abs(value - h) <= abs(value) / 256, "hi of \(x[i]): \(hi[i])")
            #expect(abs(value - h - l) <= abs(value) / 65536, "hi + lo of \(x[i])")
        }
    }

    /// C = f(A·B + bias) by bsvi_amx_bf16_linear, row strides lda = k + 3 and ldc = n + 5.
    static func tileProduct(m: Int, k: Int, n: Int, a: [Float], b: [Float], bias: [Float], split: Int32,
                            activation: bsvi_activation) -> [Float] {
        let lda = k + 3, ldc = n + 5
        var strided = [Float](repeating: 0, count: m * lda)
        for r in 0..<m { for c in 0..<k { strided[r * lda + c] = a[r * k + c] } }
        let packed = FloatBuffer(count: bsvi_bf16_packed_words(Int32(k), Int32(n), split))
        bsvi_bf16_pack(Int32(k), Int32(n), b, Int32(n), bias, split, packed.base)
        var c = [Float](repeating: 7, count: m * ldc)
        bsvi_amx_bf16_linear(Int32(m), Int32(k), Int32(n), strided, Int32(lda), packed.base, split, &c, Int32(ldc), activation)
        for r in 0..<m { #expect(c[(r * ldc + n)..<(r * ldc + ldc)].allSatisfy { $0 == 7 }, "row \(r): columns past n written") }
        return (0..<m).flatMap { r in c[(r * ldc)..<(r * ldc + n)] }
    }

    @Test("the tile product equals the Float64 sum of its bfloat16 factors to float32 rounding; without lo terms it could not",
          .enabled(if: amx, "needs AMX-BF16 tiles"),
          arguments: [(1, 3, 5), (37, 50, 200), (120, 200, 784), (33, 64, 17)])
    func productAgainstFactors(shape: (Int, Int, Int)) {
        let (m, k, n) = shape
        var values = TestValues(seed: UInt64(m * 1000 + k))
        let a = values.floats(m * k, -1, 1), b = values.floats(k * n, -0.3, 0.3), bias = values.floats(n, -1, 1)
        let (aHi, aLo) = Self.split(a), (bHi, bLo) = Self.split(b)
        for split: Int32 in [0, 1] {
            for activation in [BSVI_ACTIVATION_NONE, BSVI_ACTIVATION_TANH] {
                let c = Self.tileProduct(m: m, k: k, n: n, a: a, b: b, bias: bias, split: split, activation: activation)
                var worst = 0.0, worstAgainstFloat32 = 0.0
                for i in 0..<m {
                    for j in 0..<n {
                        var sum = Double(bias[j]), exact = Double(bias[j]), magnitude = abs(Double(bias[j]))
                        for p in 0..<k {
                            let (ah, al, bh, bl) = (Double(aHi[i * k + p]), Double(aLo[i * k + p]), Double(bHi[p * n + j]), Double(bLo[p * n + j]))
                            sum += ah * bh + (split == 1 ? ah * bl + al * bh : 0)
                            exact += Double(a[i * k + p]) * Double(b[p * n + j])
                            magnitude += abs(ah * bh)
                        }
                        let reference = activation == BSVI_ACTIVATION_TANH ? tanh(sum) : sum
                        let full = activation == BSVI_ACTIVATION_TANH ? tanh(exact) : exact
                        // float32 sums of k terms, and the kernels' tanh (within 1e-6).
                        worst = max(worst, abs(Double(c[i * n + j]) - reference) / (magnitude + 1))
                        worstAgainstFloat32 = max(worstAgainstFloat32, abs(Double(c[i * n + j]) - full) / (magnitude + 1))
                    }
                }
                #expect(worst <= 2e-6, "split \(split), activation \(activation.rawValue): \(worst)")
                // The products are bfloat16's, not float32's: high within 2⁻¹⁵ of the exact sum, medium only within 2⁻⁷.
                let bound: Double = split == 1 ? 0x1p-15 : 0x1p-7
                #expect(worstAgainstFloat32 <= bound, "split \(split): \(worstAgainstFloat32) from the float32 product")
                if split == 0 && k >= 50 {
                    let highBound: Double = 0x1p-15
                    #expect(worstAgainstFloat32 > highBound, "medium as exact as high: were lo terms added?")
                }
            }
        }
    }

    static let shape = ModelShape(inputDim: 40, latentDim: 3, hiddenDims: [24, 9], activation: .tanh)

    @Test("a NaN in A reaches its row of C, and only its row, on the tiles (bfloat16's rounding must not turn it into 0)",
          .enabled(if: amx, "needs AMX-BF16 tiles"))
    func nanPropagates() {
        let (m, k, n) = (3, 40, 20)
        var values = TestValues(seed: 12)
        var a = values.floats(m * k, -1, 1)
        let b = values.floats(k * n, -1, 1), bias = values.floats(n, -1, 1)
        a[1 * k + 33] = Float(bitPattern: 0x7FFF_FFFF)  // a NaN whose rounding carry would make it 0
        for split: Int32 in [0, 1] {
            let c = Self.tileProduct(m: m, k: k, n: n, a: a, b: b, bias: bias, split: split, activation: BSVI_ACTIVATION_NONE)
            let poisoned = Array(c[n..<(2 * n)]), others = Array(c[0..<n]) + Array(c[(2 * n)...])
            let allNaN = poisoned.allSatisfy { $0.isNaN }, othersFinite = others.allSatisfy { $0.isFinite }
            #expect(allNaN, "split \(split): row 1 \(poisoned)")
            #expect(othersFinite, "split \(split): the other rows")
        }
    }

    @Test("the tile decoder's log p(x|z) is the model's: high within 1e-3 nats of Float64, medium within 0.3 and further off",
          .enabled(if: tileDecoder, "needs AMX-BF16 tiles and the avx512 path"))
    func decoderLogLikelihood() throws {
        let model = VAEModel(shape: Self.shape)
        let params = randomParameters(model: model, seed: 4)
        let p = (0..<params.count).map { Double(params[$0]) }
        var values = TestValues(seed: 5)
        let rows = 37
        let z = HostMatrix(rows: rows, cols: 3, values: values.floats(rows * 3, -2, 2))
        let x = HostMatrix(rows: 2, cols: 40, values: values.bits(80))
        var worst: [MatmulPrecision: Double] = [:]
        for precision in [MatmulPrecision.high, .medium] {
            let decoder = TileDecoder(mlp: model.decoder, precision: precision, capacity: 40)
            decoder.pack(params)
            var out = [Float](repeating: .nan, count: rows)
            decoder.logLikelihood(z: z.matrix, x: x.matrix, into: &out)
            worst[precision] = (0..<rows).map { r in
                abs(Double(out[r]) - Reference.logLikelihood(model: model, params: p, x: x.rowDouble(r % 2), z: z.rowDouble(r)))
            }.max()
        }
        let high = try #require(worst[.high]), medium = try #require(worst[.medium])
        #expect(high <= 1e-3, "high: \(high) nats")
        #expect(medium <= 0.3 && medium > high, "medium: \(medium) nats, high: \(high)")
    }

    @Test("an evaluation at high precision gives every example's values within 1e-3 nats of float32's",
          .enabled(if: tileDecoder, "needs AMX-BF16 tiles and the avx512 path"))
    func evaluationAgrees() {
        let model = VAEModel(shape: Self.shape)
        let params = randomParameters(model: model, seed: 6)
        var values = TestValues(seed: 7)
        let x = HostMatrix(rows: 5, cols: 40, values: values.bits(200))
        let refinement = RefinementSettings(steps: 3, learningRate: 0.05, rule: .adam)
        func evaluate(_ precision: MatmulPrecision) -> [ExampleEvaluation] {
            ImportanceSampler(model: model, samples: 700, batchCapacity: 5, refinement: refinement, chunk: 120,
                              elboSamples: 50, matmulPrecision: precision)
                .evaluate(x: x.matrix, exampleIDs: Array(10..<15), seed: 9, params: params)
        }
        let float32 = evaluate(.highest), high = evaluate(.high)
        for (a, b) in zip(float32, high) {
            #expect(abs(a.estimate.logLikelihood - b.estimate.logLikelihood) <= 1e-3, "log p̂ \(a.estimate.logLikelihood) vs \(b.estimate.logLikelihood)")
            #expect(abs(a.elboInitial - b.elboInitial) <= 1e-3 && abs(a.elboRefined - b.elboRefined) <= 1e-3)
            #expect(a.estimate.logLikelihood != b.estimate.logLikelihood, "the same bits: were the tiles used?")
        }
    }

    @Test("highest runs anywhere; high and medium are refused on a narrower kernel path or without AMX, naming the fix")
    func availability() throws {
        #expect(MatmulPrecision.highest.unavailableReason == nil)
        for precision in [MatmulPrecision.high, .medium] {
            if !Self.amx {
                let reason = try #require(precision.unavailableReason)
                #expect(reason.contains("--matmul-precision \(precision.rawValue)") && reason.contains("AMX") && reason.contains("highest"))
            } else if KernelPath.active == .avx512 {
                #expect(precision.unavailableReason == nil)
            }
            if KernelPath.avx2.isSupported {
                let reason = try KernelPath.with(.avx2) { precision.unavailableReason }
                #expect(reason?.contains("--matmul-precision highest") == true, "\(reason ?? "nil")")
            }
        }
    }

    @Test("the tiles' peak is read as the FMA peak is: the best of five equal windows, and none without tiles")
    func tilePeakIsTheBestWindow() {
        var windows: [Double] = []
        let rates = [1_050.0, 2_600.0, 990.0, 2_480.0, 1_100.0]  // a shared core's windows (docs/benchmarks.md, stop 58)
        let peak = MatmulPrecision.tilePeakGigaflops(seconds: 0.3) { seconds in
            windows.append(seconds)
            return rates[windows.count - 1]
        }
        if Self.amx {
            #expect(peak == 2_600)
            #expect(windows.count == 5 && windows.allSatisfy { abs($0 - 0.06) < 1e-12 })
            #expect((MatmulPrecision.tilePeakGigaflops(seconds: 0.05) ?? 0) > 0)
        } else {
            #expect(peak == nil && windows.isEmpty)
        }
    }
}
