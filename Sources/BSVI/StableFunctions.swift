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
/// (zero weights) are ignored, and an all −∞ input gives −∞.
public func logSumExp(_ x: UnsafePointer<Float>, count: Int, stride: Int = 1) -> Float {
    var m = -Float.infinity
    for i in 0..<count { m = max(m, x[i * stride]) }
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
    for v in x { m = max(m, v) }
    if m == -.infinity || !m.isFinite { return m }
    var s = 0.0
    for v in x { s += exp(v - m) }
    return m + log(s)
}

/// A streaming log-sum-exp in Float64: adds terms one at a time or in blocks without
/// storing them, rescaling when a larger term arrives. Used by importance sampling with
/// thousands of samples per example.
public struct LogSumExpAccumulator: Sendable {
    public private(set) var maximum = -Double.infinity
    public private(set) var scaledSum = 0.0
    public private(set) var count = 0

    public init() {}

    public mutating func add(_ x: Double) {
        count += 1
        if x == -.infinity { return }
        if x <= maximum {
            scaledSum += exp(x - maximum)
        } else {
            scaledSum = scaledSum * exp(maximum - x) + 1
            maximum = x
        }
    }

    public var value: Double { maximum == -.infinity ? -.infinity : maximum + log(scaledSum) }
}
