/// Vectorized elementary functions on 16 Float32 lanes (one AVX-512 or two AVX2 registers per vector),
/// after Cephes' single-precision algorithms: range reduction plus short polynomials.
/// Accuracy (checked in BSVITests/VectorMathTests against Foundation over dense sweeps):
///   exp     relative error ≤ 2e-7 on [−87, 88]; inputs below −87.3 give e^−87.3 ≈ 1.2e-38
///   log1p   absolute error ≤ 1e-7 on [0, 1] (the only range the likelihood needs)
///   tanh    absolute error ≤ 2e-7 everywhere
///   softplus absolute error ≤ 2e-7 plus half an ulp of the result (via exp and log1p)
public typealias FloatVector = SIMD16<Float>

public enum VectorMath {
    public static let width = FloatVector.scalarCount

    @inline(__always)
    public static func load(_ p: UnsafePointer<Float>) -> FloatVector {
        UnsafeRawPointer(p).loadUnaligned(as: FloatVector.self)
    }

    @inline(__always)
    public static func store(_ v: FloatVector, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: FloatVector.self)
    }

    /// e^x. Inputs are clamped to [−87.3, 88.7]; e^x for x < −87.3 returns ~1e-38, not 0.
    @inline(__always)
    public static func exp(_ x: FloatVector) -> FloatVector {
        // (SIMD.clamped is not specialized across modules; two selects are.)
        let low = FloatVector(repeating: -87.3), high = FloatVector(repeating: 88.7)
        let xc = x.replacing(with: low, where: x .< low).replacing(with: high, where: x .> high)
        // n = round(x / ln 2) by the 1.5·2²³ trick: the integer lands in the low mantissa bits.
        let shifted = xc * 1.442_695_04 + 12_582_912.0
        let n = shifted - 12_582_912.0
        let r = xc - n * 0.693_359_375 + n * 2.121_944_4e-4
        var p = FloatVector(repeating: 1.987_569_15e-4)
        p = p * r + 1.398_199_950_7e-3
        p = p * r + 8.333_451_907_3e-3
        p = p * r + 4.166_579_589_4e-2
        p = p * r + 1.666_666_545_9e-1
        p = p * r + 5.000_000_120_1e-1
        let er = p * (r * r) + r + 1
        // 2^n: add n to the exponent field, in two halves so n = 128 / −127 stay representable.
        let bits = unsafeBitCast(shifted, to: SIMD16<Int32>.self) &- 0x4B40_0000
        let half = bits &>> 1
        let s1 = unsafeBitCast((half &+ 127) &<< 23, to: FloatVector.self)
        let s2 = unsafeBitCast((bits &- half &+ 127) &<< 23, to: FloatVector.self)
        return er * s1 * s2
    }

    /// Cephes' logf core: log(2^e · (1 + x)) for x in [√½ − 1, √2 − 1].
    @inline(__always)
    static func logReduced(_ x: FloatVector, exponent e: FloatVector) -> FloatVector {
        let z = x * x
        var p = FloatVector(repeating: 7.037_683_629_2e-2)
        p = p * x - 1.151_461_031_0e-1
        p = p * x + 1.167_699_874_0e-1
        p = p * x - 1.242_014_084_6e-1
        p = p * x + 1.424_932_278_7e-1
        p = p * x - 1.666_805_766_5e-1
        p = p * x + 2.000_071_476_5e-1
        p = p * x - 2.499_999_399_3e-1
        p = p * x + 3.333_333_117_4e-1
        var y = p * x * z
        y += e * -2.121_944_40e-4
        y += z * -0.5
        return x + y + e * 0.693_359_375
    }

    /// log(1 + y) for y in [0, 1], with the classic correction for the rounding of 1 + y.
    @inline(__always)
    public static func log1pUnit(_ y: FloatVector) -> FloatVector {
        let u = 1 + y
        let big = u .> 1.414_213_56
        let e = FloatVector(repeating: 0).replacing(with: 1, where: big)
        let x = (u - 1).replacing(with: u * 0.5 - 1, where: big)
        // log1p(y) = log(u) + (y − (u − 1)) / u
        return logReduced(x, exponent: e) + (y - (u - 1)) / u
    }

    /// Natural log of positive, normal inputs (the sampler's uniforms in (0, 1)).
    @inline(__always)
    public static func log(_ v: FloatVector) -> FloatVector {
        let bits = unsafeBitCast(v, to: SIMD16<Int32>.self)
        // v = 2^(e) · m with m in [0.5, 1)
        let m = unsafeBitCast((bits & 0x007F_FFFF) | 0x3F00_0000, to: FloatVector.self)
        let e = unsafeBitCast(((bits &>> 23) &- 126) &+ 0x4B40_0000, to: FloatVector.self) - 12_582_912.0
        let small = m .< 0.707_106_781
        let x = (m - 1).replacing(with: m + m - 1, where: small)
        return logReduced(x, exponent: e.replacing(with: e - 1, where: small))
    }

    /// (cos 2πu, sin 2πu): reduction to an eighth of a turn, Cephes' polynomials on
    /// [−π/4, π/4], then a quadrant rotation. Absolute error ≤ 3e-7.
    @inline(__always)
    public static func cosSinTwoPi(_ u: FloatVector) -> (cos: FloatVector, sin: FloatVector) {
        let t = u - u.rounded(.toNearestOrEven)
        let q = (t * 4).rounded(.toNearestOrEven)
        let a = (t - q * 0.25) * 6.283_185_307
        let z = a * a
        var sp = FloatVector(repeating: -1.951_529_589_1e-4)
        sp = sp * z + 8.332_160_873_6e-3
        sp = sp * z - 1.666_665_461_1e-1
        let sa = sp * z * a + a
        var cp = FloatVector(repeating: 2.443_315_711_809_948e-5)
        cp = cp * z - 1.388_731_625_493_765e-3
        cp = cp * z + 4.166_664_568_298_827e-2
        let ca = cp * z * z - z * 0.5 + 1
        // Rotate by q quarter turns: q ≡ 1: (−s, c); q ≡ 2: (−c, −s); q ≡ 3 (= −1): (s, −c).
        let q1 = q .== 1, qm1 = q .== -1, q2 = abs(q) .== 2
        var c = ca, s = sa
        c = c.replacing(with: -sa, where: q1).replacing(with: sa, where: qm1).replacing(with: -ca, where: q2)
        s = s.replacing(with: ca, where: q1).replacing(with: -ca, where: qm1).replacing(with: -sa, where: q2)
        return (c, s)
    }

    /// softplus(a) = max(a, 0) + log1p(e^−|a|); also returns e^−|a| for the caller.
    @inline(__always)
    public static func softplus(_ a: FloatVector) -> (value: FloatVector, expNegAbs: FloatVector) {
        let m = exp(-abs(a))
        return (a.replacing(with: 0, where: a .< 0) + log1pUnit(m), m)
    }

    @inline(__always)
    public static func abs(_ v: FloatVector) -> FloatVector {
        unsafeBitCast(unsafeBitCast(v, to: SIMD16<UInt32>.self) & 0x7FFF_FFFF, to: FloatVector.self)
    }

    /// tanh(x): an odd polynomial for |x| < 0.625, (1 − e^−2|x|)/(1 + e^−2|x|) above.
    @inline(__always)
    public static func tanh(_ x: FloatVector) -> FloatVector {
        let ax = abs(x)
        let e = exp(ax * -2)
        let large = (1 - e) / (1 + e)
        let z = x * x
        var p = FloatVector(repeating: -5.704_988_727_45e-3)
        p = p * z + 2.063_908_879_54e-2
        p = p * z - 5.373_971_555_31e-2
        p = p * z + 1.333_144_220_36e-1
        p = p * z - 3.333_328_194_22e-1
        let small = p * z * x + x
        let signBit = unsafeBitCast(x, to: SIMD16<UInt32>.self) & 0x8000_0000
        let signedLarge = unsafeBitCast(unsafeBitCast(large, to: SIMD16<UInt32>.self) | signBit, to: FloatVector.self)
        return signedLarge.replacing(with: small, where: ax .< 0.625)
    }

    /// Loads `n` ≤ 16 floats (zeros beyond), for row tails.
    @inline(__always)
    public static func load(_ p: UnsafePointer<Float>, count n: Int) -> FloatVector {
        if n >= width { return load(p) }
        var v = FloatVector(repeating: 0)
        for j in 0..<n { v[j] = p[j] }
        return v
    }

    @inline(__always)
    public static func store(_ v: FloatVector, _ p: UnsafeMutablePointer<Float>, count n: Int) {
        if n >= width { store(v, p); return }
        for j in 0..<n { p[j] = v[j] }
    }

    /// Whether all `count` floats are finite. One multiply-add per element and no branch:
    /// x·0 is ±0 for finite x and NaN for ±∞ or NaN, and a NaN survives the running sum.
    public static func allFinite(_ p: UnsafePointer<Float>, count: Int) -> Bool {
        var sum = FloatVector(repeating: 0)
        var i = 0
        while i + width <= count {
            sum += load(p + i) * 0
            i += width
        }
        var tail: Float = 0
        while i < count { tail += p[i] * 0; i += 1 }
        return (sum.sum() + tail) == 0
    }

    /// Applies `f` to `count` floats in place, 16 at a time; the tail goes through a padded vector.
    @inline(__always)
    public static func map(_ p: UnsafeMutablePointer<Float>, count: Int, _ f: (FloatVector) -> FloatVector) {
        var i = 0
        while i + width <= count {
            store(f(load(p + i)), p + i)
            i += width
        }
        if i < count {
            var v = FloatVector(repeating: 0)
            for j in 0..<(count - i) { v[j] = p[i + j] }
            let r = f(v)
            for j in 0..<(count - i) { p[i + j] = r[j] }
        }
    }
}
