import Foundation

/// softplus(a) = log(1 + e^a) = max(a, 0) + log1p(e^(−|a|)); finite for every finite a.
@inline(__always)
public func softplus(_ a: Float) -> Float { max(a, 0) + log1p(exp(-abs(a))) }

@inline(__always)
public func softplus(_ a: Double) -> Double { max(a, 0) + log1p(exp(-abs(a))) }

/// The logistic sigmoid without overflow for large |a|.
@inline(__always)
public func sigmoid(_ a: Float) -> Float {
    let e = exp(-abs(a))
    return a >= 0 ? 1 / (1 + e) : e / (1 + e)
}

/// log Σ exp(x_i), exact for any finite inputs (shifted by the maximum); −∞ entries
/// (zero weights) are ignored, and an all −∞ input gives −∞. A NaN entry gives NaN (`max`
/// alone would skip it and read it as a zero weight).
public func logSumExp(_ x: UnsafePointer<Float>, count: Int, stride: Int = 1) -> Float {
    var m = -Float.infinity
    for i in 0..<count {
        if x[i * stride].isNaN { return .nan }
        m = max(m, x[i * stride])
    }
    if m == -.infinity || !m.isFinite { return m }
    var s: Float = 0
    for i in 0..<count { s += exp(x[i * stride] - m) }
    return m + log(s)
}

public func logSumExp(_ x: [Float]) -> Float {
    x.withUnsafeBufferPointer { logSumExp($0.baseAddress!, count: x.count) }
}

public func logSumExp(_ x: [Double]) -> Double {
    var m = -Double.infinity
    for v in x {
        if v.isNaN { return .nan }
        m = max(m, v)
    }
    if m == -.infinity || !m.isFinite { return m }
    var s = 0.0
    for v in x { s += exp(v - m) }
    return m + log(s)
}

/// A streaming log-sum-exp in Float64: adds terms one at a time or in blocks without
/// storing them, rescaling when a larger term arrives. Used by importance sampling with
/// thousands of samples per example.
///
/// In the same pass it keeps Σ exp(2(x − max)), so the importance-sampling diagnostics of the
/// normalised weights w_s / Σw come out at the end without a second pass or per-sample memory:
/// the effective sample size (Σw)² / Σw² and the largest normalised weight max_s w_s / Σw.
public struct LogSumExpAccumulator: Sendable {
    public private(set) var maximum = -Double.infinity
    /// Σ exp(x − maximum); the largest term contributes exactly 1.
    public private(set) var scaledSum = 0.0
    /// Σ exp(2(x − maximum)), rescaled with `scaledSum`.
    public private(set) var scaledSumOfSquares = 0.0
    public private(set) var count = 0

    public init() {}

    public mutating func add(_ x: Double) {
        count += 1
        if x == -.infinity { return }
        if x <= maximum {
            let e = x == maximum ? 1 : exp(x - maximum)  // two +∞ terms: 1, not exp(∞ − ∞) = NaN
            scaledSum += e
            scaledSumOfSquares += e * e
        } else {
            let r = exp(maximum - x)
            scaledSum = scaledSum * r + 1
            scaledSumOfSquares = scaledSumOfSquares * (r * r) + 1
            maximum = x
        }
    }

    /// log Σ exp(x).
    public var value: Double { maximum == -.infinity ? -.infinity : maximum + log(scaledSum) }

    /// log Σ exp(2x), the log of the sum of squared weights.
    public var logSumOfSquares: Double { maximum == -.infinity ? -.infinity : 2 * maximum + log(scaledSumOfSquares) }

    /// (Σw)² / Σw², between 1 (one weight dominates) and the number of terms (equal weights);
    /// 0 when every weight is zero (nothing to average).
    public var effectiveSampleSize: Double {
        maximum == -.infinity ? 0 : scaledSum * scaledSum / scaledSumOfSquares
    }

    /// max_s w_s / Σw, between 1/count (equal weights) and 1; 1 when every weight is zero (the
    /// worst case, like an estimate resting on one sample).
    public var largestNormalizedWeight: Double { maximum == -.infinity ? 1 : 1 / scaledSum }
}
