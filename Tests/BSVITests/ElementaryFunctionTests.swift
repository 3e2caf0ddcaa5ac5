import BSVI
import Foundation
import Testing

/// The kernels' elementary functions against Foundation (Float64) over dense sweeps, on every
/// kernel path this machine runs, with the accuracies CKernels/elementwise.inc documents. Where
/// a documented bound is below the rounding of the Float32 result itself (softplus of moderate
/// arguments), half an ulp of the result is added.
@Suite("Elementary functions of the kernels")
struct ElementaryFunctionTests {
    static func sweep(_ low: Double, _ high: Double, _ n: Int) -> [Float] {
        (0..<n).map { Float(low + (high - low) * Double($0) / Double(n - 1)) }
    }

    static func apply(_ f: ElementaryFunction, _ xs: [Float], on path: KernelPath) -> [Float] {
        onPath(path) { f.apply(xs) }
    }

    struct Worst: CustomStringConvertible {
        var error = 0.0
        var at: Float = 0
        mutating func add(_ e: Double, _ x: Float) { if e > error || e.isNaN { error = e; at = x } }
        var description: String { "worst error \(error) at \(at)" }
    }

    @Test("exp: relative error ≤ 2e-7 on [−87, 88]; tiny and finite below, finite above", arguments: KernelPath.supported)
    func exp(path: KernelPath) {
        let xs = Self.sweep(-87, 88, 40_001) + [0, -0.0, 1, -1, 1e-8, -1e-8]
        let ys = Self.apply(.exp, xs, on: path)
        var worst = Worst()
        for (x, y) in zip(xs, ys) {
            let t = Foundation.exp(Double(x))
            worst.add(abs(Double(y) - t) / t, x)
        }
        #expect(worst.error <= 2e-7, "\(worst)")
        // Below the range: no NaN, no negative values, at most about the smallest normal.
        for y in Self.apply(.exp, [-87.5, -88, -100, -1000, -.infinity], on: path) {
            #expect(y >= 0 && y <= 1.3e-38, "\(y)")
        }
        // Above the range the result is clamped, finite.
        for y in Self.apply(.exp, [88.7, 89, 100, .infinity], on: path) { #expect(y.isFinite && y > 1e38) }
    }

    /// The likelihood and tanh use the shorter e^x for x ≤ 0; it must give exp's bits there, or
    /// the fused likelihood and every golden number would drift. Every 499th non-positive float
    /// (4.3 million, −0 to −∞; every one was checked once, outside the suite), a NaN, and the ends
    /// of the reduction's range.
    @Test("expNonPositive gives exp's bits for every x ≤ 0 it is tried on", arguments: KernelPath.supported)
    func expNonPositive(path: KernelPath) {
        var xs = stride(from: UInt32(0x8000_0000), through: 0xFF80_0000, by: 499).map { Float(bitPattern: $0) }
        xs += [-0.0, 0, -87.3, -87.29, -87.31, -88, -Float.ulpOfOne, -Float.leastNormalMagnitude, -.infinity]
        let a = Self.apply(.exp, xs, on: path), b = Self.apply(.expNonPositive, xs, on: path)
        let differing = zip(xs, zip(a, b)).filter { $1.0.bitPattern != $1.1.bitPattern }
        let mismatches = differing.count, firstFew = "\(differing.prefix(3))"
        #expect(xs.count > 4_000_000)
        #expect(mismatches == 0, "x, (exp, expNonPositive): \(firstFew)")
        #expect(Self.apply(.expNonPositive, [.nan], on: path)[0].isNaN)
    }

    @Test("log1pUnit: absolute error ≤ 1e-7 on [0, 1], including tiny arguments", arguments: KernelPath.supported)
    func log1p(path: KernelPath) {
        let xs = Self.sweep(0, 1, 40_001) + [1e-8, 5.9e-8, 1e-20, 1e-38, 0.41421356, 0.41421357]
        let ys = Self.apply(.log1pUnit, xs, on: path)
        var worst = Worst()
        for (x, y) in zip(xs, ys) { worst.add(abs(Double(y) - Foundation.log1p(Double(x))), x) }
        #expect(worst.error <= 1e-7, "\(worst)")
        // Tiny arguments keep their value (the correction term), not 0.
        let tiny = Self.apply(.log1pUnit, [1e-12], on: path)[0]
        #expect(abs(Double(tiny) - 1e-12) <= 1e-18)
    }

    @Test("log of (0, 1]: within one ulp of the result", arguments: KernelPath.supported)
    func log(path: KernelPath) {
        let xs = Self.sweep(1e-7, 1, 40_001) + [Float.leastNormalMagnitude, 1e-30, 0x1p-24, 0.5, 0.70710677, 0.7071068, 1]
        let ys = Self.apply(.log, xs, on: path)
        var worst = Worst()
        for (x, y) in zip(xs, ys) {
            let t = Foundation.log(Double(x))
            worst.add(abs(Double(y) - t) / Double(max(Float(t).ulp, Float.leastNormalMagnitude)), x)
        }
        #expect(worst.error <= 1, "error in ulps: \(worst)")
    }

    /// The rational tanh's error comes from rounding, largest near |x| = 7–9 (3.1e-7 with FMA,
    /// 3.8e-7 without, every float of [0, 10] checked once outside the suite); here every 257th
    /// float of [0, 10] (4.2 million, the tiny ones included), a sweep of [−20, 20], exact ±1
    /// beyond 9, x itself for tiny x, and NaN kept.
    @Test("tanh: absolute error ≤ 4e-7 everywhere, odd, exactly ±1 beyond 9, x for tiny x", arguments: KernelPath.supported)
    func tanh(path: KernelPath) {
        let positive = stride(from: UInt32(0), through: Float(10).bitPattern, by: 257).map { Float(bitPattern: $0) }
        let xs = positive + Self.sweep(-20, 20, 40_001) + [9, 9.000001, -9.000001, 1e30, -1e30, .infinity, -.infinity]
        let ys = Self.apply(.tanh, xs, on: path)
        var worst = Worst()
        for (x, y) in zip(xs, ys) { worst.add(abs(Double(y) - Foundation.tanh(Double(x))), x) }
        #expect(positive.count > 4_000_000)
        #expect(worst.error <= 4e-7, "\(worst)")
        let odd = Self.apply(.tanh, [0.3, -0.3, 2.5, -2.5, 8.5, -8.5], on: path)
        #expect(odd[0] == -odd[1] && odd[2] == -odd[3] && odd[4] == -odd[5])
        #expect(Self.apply(.tanh, [9.000001, 20, 1e30, .infinity], on: path) == [1, 1, 1, 1])
        #expect(Self.apply(.tanh, [-9.000001, -20, -1e30, -.infinity], on: path) == [-1, -1, -1, -1])
        #expect(Self.apply(.tanh, [1e-30, -1e-30, 1e-5, 0, -0.0], on: path).map(\.bitPattern)
                    == [Float(1e-30), -1e-30, 1e-5, 0, -0.0].map(\.bitPattern))
        #expect(Self.apply(.tanh, [.nan], on: path)[0].isNaN)
    }

    @Test("softplus: absolute error ≤ 2e-7 plus the rounding of the result; sigmoid ≤ 2e-7 relative",
          arguments: KernelPath.supported)
    func softplus(path: KernelPath) {
        let xs = Self.sweep(-100, 100, 40_001) + [1000, -1000, 0]
        let ys = Self.apply(.softplus, xs, on: path)
        let ss = Self.apply(.sigmoid, xs, on: path)
        var worst = Worst()
        for (i, x) in xs.enumerated() {
            let t = max(Double(x), 0) + Foundation.log1p(Foundation.exp(-abs(Double(x))))
            worst.add(abs(Double(ys[i]) - t) - 0.5 * Double(Float(t).ulp), x)
            let sigmoid = 1 / (1 + Foundation.exp(-Double(x)))
            #expect(abs(Double(ss[i]) - sigmoid) <= 2e-7 * sigmoid + 1.3e-38, "sigmoid(\(x))")
        }
        #expect(worst.error <= 2e-7, "error beyond half an ulp: \(worst)")
        #expect(Self.apply(.softplus, [1000], on: path)[0] == 1000)
        #expect(Self.apply(.softplus, [-1000], on: path)[0] <= 1.3e-38)
    }

    @Test("cos 2πu and sin 2πu: absolute error ≤ 3e-7 for u in [0, 1] and beyond", arguments: KernelPath.supported)
    func cosSin(path: KernelPath) {
        let us = Self.sweep(0, 1, 40_001) + Self.sweep(-3, 3, 10_001) + [0.125, 0.375, 0.625, 0.875, 0.25, 0.5, 0.75]
        let cs = Self.apply(.cosTwoPi, us, on: path)
        let ss = Self.apply(.sinTwoPi, us, on: path)
        var worstCos = Worst(), worstSin = Worst()
        for (i, u) in us.enumerated() {
            let a = 2 * Double.pi * Double(u)
            worstCos.add(abs(Double(cs[i]) - Foundation.cos(a)), u)
            worstSin.add(abs(Double(ss[i]) - Foundation.sin(a)), u)
        }
        #expect(worstCos.error <= 3e-7, "cos: \(worstCos)")
        #expect(worstSin.error <= 3e-7, "sin: \(worstSin)")
    }

    @Test("every lane count 0–48 is computed, and nothing beyond `count` is written",
          arguments: KernelPath.supported, [0, 1, 15, 16, 17, 33, 48])
    func tails(path: KernelPath, count: Int) {
        var buffer = [Float](repeating: .nan, count: count + 20)
        for i in 0..<count { buffer[i] = Float(i) * 0.1 - 1 }
        let original = buffer
        onPath(path) {
            buffer.withUnsafeMutableBufferPointer { Activation.tanh.apply($0.baseAddress!, count: count) }
        }
        for i in 0..<count { #expect(abs(Double(buffer[i]) - Foundation.tanh(Double(original[i]))) <= 4e-7) }
        for i in count..<buffer.count { #expect(buffer[i].isNaN, "element \(i) beyond count was written") }
    }
}
