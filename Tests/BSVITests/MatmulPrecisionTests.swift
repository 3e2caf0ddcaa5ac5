import BSVI
import CKernels
import Foundation
import Testing

/// `eval --matmul-precision high|medium`: the bfloat16 split of a float32 value, the products on
/// AMX tiles and on AVX512_BF16 vectors against a Float64 sum of the same bfloat16 factors, and
/// the bfloat16 decoder's log-likelihoods against the Float64 model (TestSupport's `Reference`).
@Suite("bfloat16 products on AMX tiles and AVX512_BF16 vectors")
struct MatmulPrecisionTests {
    /// The tiles run here (the products' tests need no more).
    static let amx = BFloat16Unit.tiles.isAvailable
    /// VDPBF16PS runs here.
    static let vectors = BFloat16Unit.vectors.isAvailable
    /// The units here, each with the splits it runs (the vectors: medium's alone).
    static let unitsHere: [(BFloat16Unit, [Int32])] = (amx ? [(.tiles, [0, 1])] : []) + (vectors ? [(.vectors, [0])] : [])
    /// The bfloat16 decoder runs here on each unit: the unit, and the avx512 path active (the
    /// numerics also run with BSVI_KERNELS=portable).
    static let tileDecoder = MatmulPrecision.high.unavailableReason == nil
    static let vectorDecoder = vectors && KernelPath.active == .avx512

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

    /// C = f(A·B + bias) by bsvi_amx_bf16_linear or bsvi_avx512_bf16_linear, row strides
    /// lda = k + 3 and ldc = n + 5.
    static func product(on unit: BFloat16Unit, m: Int, k: Int, n: Int, a: [Float], b: [Float], bias: [Float], split: Int32,
                        activation: bsvi_activation) -> [Float] {
        let lda = k + 3, ldc = n + 5
        var strided = [Float](repeating: 0, count: m * lda)
        for r in 0..<m { for c in 0..<k { strided[r * lda + c] = a[r * k + c] } }
        let packed = FloatBuffer(count: bsvi_bf16_packed_words(Int32(k), Int32(n), split))
        bsvi_bf16_pack(Int32(k), Int32(n), b, Int32(n), bias, split, packed.base)
        var c = [Float](repeating: 7, count: m * ldc)
        switch unit {
        case .tiles:
            bsvi_amx_bf16_linear(Int32(m), Int32(k), Int32(n), strided, Int32(lda), packed.base, split, &c, Int32(ldc), activation)
        case .vectors:
            bsvi_avx512_bf16_linear(Int32(m), Int32(k), Int32(n), strided, Int32(lda), packed.base, &c, Int32(ldc), activation)
        }
        for r in 0..<m { #expect(c[(r * ldc + n)..<(r * ldc + ldc)].allSatisfy { $0 == 7 }, "\(unit) row \(r): columns past n written") }
        return (0..<m).flatMap { r in c[(r * ldc)..<(r * ldc + n)] }
    }

    @Test("each unit's product equals the Float64 sum of its bfloat16 factors to float32 rounding; without lo terms it could not",
          .enabled(if: amx || vectors, "needs AMX-BF16 tiles or AVX512_BF16"),
          arguments: [(1, 3, 5), (37, 50, 200), (120, 200, 784), (33, 64, 17), (13, 33, 47)])
    func productAgainstFactors(shape: (Int, Int, Int)) {
        let (m, k, n) = shape
        var values = TestValues(seed: UInt64(m * 1000 + k))
        let a = values.floats(m * k, -1, 1), b = values.floats(k * n, -0.3, 0.3), bias = values.floats(n, -1, 1)
        let (aHi, aLo) = Self.split(a), (bHi, bLo) = Self.split(b)
        for (unit, splits) in Self.unitsHere {
            for split in splits {
            for activation in [BSVI_ACTIVATION_NONE, BSVI_ACTIVATION_TANH] {
                let c = Self.product(on: unit, m: m, k: k, n: n, a: a, b: b, bias: bias, split: split, activation: activation)
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
                #expect(worst <= 2e-6, "\(unit), split \(split), activation \(activation.rawValue): \(worst)")
                // The products are bfloat16's, not float32's: high within 2⁻¹⁵ of the exact sum, medium only within 2⁻⁷.
                let bound: Double = split == 1 ? 0x1p-15 : 0x1p-7
                #expect(worstAgainstFloat32 <= bound, "\(unit), split \(split): \(worstAgainstFloat32) from the float32 product")
                if split == 0 && k >= 50 {
                    let highBound: Double = 0x1p-15
                    #expect(worstAgainstFloat32 > highBound, "\(unit): medium as exact as high: were lo terms added?")
                }
            }
            }
        }
    }

    static let shape = ModelShape(inputDim: 40, latentDim: 3, hiddenDims: [24, 9], activation: .tanh)

    @Test("a NaN in A reaches its row of C, and only its row, on each unit (bfloat16's rounding must not turn it into 0)",
          .enabled(if: amx || vectors, "needs AMX-BF16 tiles or AVX512_BF16"))
    func nanPropagates() {
        let (m, k, n) = (3, 40, 20)
        var values = TestValues(seed: 12)
        var a = values.floats(m * k, -1, 1)
        let b = values.floats(k * n, -1, 1), bias = values.floats(n, -1, 1)
        a[1 * k + 33] = Float(bitPattern: 0x7FFF_FFFF)  // a NaN whose rounding carry would make it 0
        for (unit, splits) in Self.unitsHere {
            for split in splits {
                let c = Self.product(on: unit, m: m, k: k, n: n, a: a, b: b, bias: bias, split: split, activation: BSVI_ACTIVATION_NONE)
                let poisoned = Array(c[n..<(2 * n)]), others = Array(c[0..<n]) + Array(c[(2 * n)...])
                let allNaN = poisoned.allSatisfy { $0.isNaN }, othersFinite = others.allSatisfy { $0.isFinite }
                #expect(allNaN, "\(unit), split \(split): row 1 \(poisoned)")
                #expect(othersFinite, "\(unit), split \(split): the other rows")
            }
        }
    }

    /// The decoders this process can run: each unit with its precisions.
    static let decodersHere: [(BFloat16Unit, [MatmulPrecision])] =
        (tileDecoder ? [(.tiles, [.high, .medium])] : []) + (vectorDecoder ? [(.vectors, [.medium])] : [])

    @Test("the bfloat16 decoder's log p(x|z) is the model's on each unit: high within 1e-3 nats of Float64, medium within 0.3 and further off; medium's two units within float32 rounding of each other",
          .enabled(if: tileDecoder || vectorDecoder, "needs AMX-BF16 tiles or AVX512_BF16, and the avx512 path"))
    func decoderLogLikelihood() throws {
        let model = VAEModel(shape: Self.shape)
        let params = randomParameters(model: model, seed: 4)
        let p = (0..<params.count).map { Double(params[$0]) }
        var values = TestValues(seed: 5)
        let rows = 37
        let z = HostMatrix(rows: rows, cols: 3, values: values.floats(rows * 3, -2, 2))
        let x = HostMatrix(rows: 2, cols: 40, values: values.bits(80))
        let reference = (0..<rows).map { r in Reference.logLikelihood(model: model, params: p, x: x.rowDouble(r % 2), z: z.rowDouble(r)) }
        var medium: [BFloat16Unit: [Float]] = [:]
        for (unit, precisions) in Self.decodersHere {
            for precision in precisions {
                let decoder = BFloat16Decoder(mlp: model.decoder, precision: precision, capacity: 40, unit: unit)
                decoder.pack(params)
                var out = [Float](repeating: .nan, count: rows)
                decoder.logLikelihood(z: z.matrix, x: x.matrix, into: &out)
                let worst = zip(out, reference).map { abs(Double($0) - $1) }.max()!
                if precision == .high {
                    #expect(worst <= 1e-3, "high on \(unit): \(worst) nats")
                } else {
                    // medium's error is bfloat16's 2⁻⁸: far above high's bound, and within 0.3.
                    #expect(worst <= 0.3 && worst > 1e-3, "medium on \(unit): \(worst) nats")
                    medium[unit] = out
                }
            }
        }
        if let tiles = medium[.tiles], let vectors = medium[.vectors] {
            // The same exact bfloat16 products, summed in another order.
            let apart = zip(tiles, vectors).map { abs(Double($0) - Double($1)) }.max()!
            #expect(apart <= 1e-4, "medium on the tiles and on the vectors \(apart) nats apart")
        }
    }

    @Test("an evaluation at a bfloat16 precision gives every example's values near float32's (high within 1e-3 nats, medium within 0.3) and the same bits at chunks of 120 and 128",
          .enabled(if: tileDecoder || vectorDecoder, "needs AMX-BF16 tiles or AVX512_BF16, and the avx512 path"))
    func evaluationAgrees() {
        let model = VAEModel(shape: Self.shape)
        let params = randomParameters(model: model, seed: 6)
        var values = TestValues(seed: 7)
        let x = HostMatrix(rows: 5, cols: 40, values: values.bits(200))
        let refinement = RefinementSettings(steps: 3, learningRate: 0.05, rule: .adam)
        func evaluate(_ precision: MatmulPrecision, on unit: BFloat16Unit? = nil, chunk: Int = 120) -> [ExampleEvaluation] {
            ImportanceSampler(model: model, samples: 700, batchCapacity: 5, refinement: refinement, chunk: chunk,
                              elboSamples: 50, matmulPrecision: precision, bfloat16Unit: unit)
                .evaluate(x: x.matrix, exampleIDs: Array(10..<15), seed: 9, params: params)
        }
        let float32 = evaluate(.highest)
        for (unit, precisions) in Self.decodersHere {
            for precision in precisions {
                let tolerance = precision == .high ? 1e-3 : 0.3
                let values = evaluate(precision, on: unit)
                // A row's sums do not depend on the other rows of a block: the tiles' chunk of 128
                // (ImportanceSampler.evaluationChunk(for:)) gives eval's results at 120.
                #expect(evaluate(precision, on: unit, chunk: 128) == values, "\(precision) on \(unit): chunk 128 against 120")
                for (a, b) in zip(float32, values) {
                    let what = "\(precision) on \(unit): log p̂ \(a.estimate.logLikelihood) vs \(b.estimate.logLikelihood)"
                    #expect(abs(a.estimate.logLikelihood - b.estimate.logLikelihood) <= tolerance, "\(what)")
                    #expect(abs(a.elboInitial - b.elboInitial) <= tolerance && abs(a.elboRefined - b.elboRefined) <= tolerance, "\(what)")
                    #expect(a.estimate.logLikelihood != b.estimate.logLikelihood, "\(what): the same bits; was bfloat16 used?")
                }
            }
        }
    }

    @Test("highest runs anywhere; high needs tiles, medium tiles or AVX512_BF16, both the avx512 path, and a refusal names the fix")
    func availability() throws {
        #expect(MatmulPrecision.highest.unavailableReason == nil && MatmulPrecision.highest.unit == nil)
        #expect(MatmulPrecision.high.unit == (Self.amx ? .tiles : nil))
        #expect(MatmulPrecision.medium.unit == (Self.amx ? .tiles : Self.vectors ? .vectors : nil))
        for precision in [MatmulPrecision.high, .medium] {
            if precision.unit == nil {
                let reason = try #require(precision.unavailableReason)
                #expect(reason.contains("--matmul-precision \(precision.rawValue)") && reason.contains("AMX") && reason.contains("highest"))
                #expect(reason.contains("AVX512_BF16") == (precision == .medium || Self.vectors), "\(reason)")
            } else if KernelPath.active == .avx512 {
                #expect(precision.unavailableReason == nil)
            }
            if KernelPath.avx2.isSupported {
                let reason = try KernelPath.with(.avx2) { precision.unavailableReason }
                #expect(reason?.contains("--matmul-precision highest") == true, "\(reason ?? "nil")")
            }
        }
    }

    @Test("each unit's peak is read as the FMA peak is: the best of five equal windows, and none without the unit",
          arguments: BFloat16Unit.allCases)
    func peakIsTheBestWindow(unit: BFloat16Unit) {
        var windows: [Double] = []
        let rates = [1_050.0, 2_600.0, 990.0, 2_480.0, 1_100.0]  // a shared core's windows of the tiles (docs/benchmarks.md, stop 58)
        let peak = unit.peakGigaflops(seconds: 0.3) { seconds in
            windows.append(seconds)
            return rates[windows.count - 1]
        }
        if unit.isAvailable {
            #expect(peak == 2_600)
            #expect(windows.count == 5 && windows.allSatisfy { abs($0 - 0.06) < 1e-12 })
            #expect((unit.peakGigaflops(seconds: 0.05) ?? 0) > 0)
        } else {
            #expect(peak == nil && windows.isEmpty)
        }
    }
}
