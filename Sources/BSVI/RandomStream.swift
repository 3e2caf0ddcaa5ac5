import CKernels
import Foundation

/// What a random stream is used for; part of its key so that streams never overlap.
public enum RandomPurpose: UInt64, Sendable {
    case initialization = 1
    case shuffle = 2
    case trainingNoise = 3
    case evaluationNoise = 4
    case evaluationRefinementNoise = 5
    case binarization = 6
    case sampling = 7
    /// The per-epoch binary images of a dynamically binarized training split.
    case dynamicBinarization = 8
}

/// A counter-based random stream: every number is a pure function of (seed, purpose, keys,
/// counter), computed by the SplitMix64 finalizer (a bijective 64-bit mixer with full
/// avalanche). Nothing is stateful, so any rank can draw example n's noise at step j without
/// knowing what other ranks drew, and a resumed run needs no saved generator state.
public struct RandomStream: Sendable {
    public let key: UInt64
    static let golden: UInt64 = 0x9E37_79B9_7F4A_7C15

    @inline(__always)
    static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    public init(seed: UInt64, purpose: RandomPurpose, _ a: UInt64 = 0, _ b: UInt64 = 0, _ c: UInt64 = 0) {
        var k = Self.mix(seed &+ Self.golden)
        for part in [purpose.rawValue, a, b, c] { k = Self.mix(k ^ (part &+ Self.golden)) &+ Self.golden }
        key = k
    }

    /// The counter-th 64-bit value of the stream.
    @inline(__always)
    public func bits(_ counter: UInt64) -> UInt64 { Self.mix(key &+ (counter &+ 1) &* Self.golden) }

    /// A uniform double in the open interval (0, 1).
    @inline(__always)
    public func uniform(_ counter: UInt64) -> Double { (Double(bits(counter) >> 11) + 0.5) * 0x1p-53 }

    /// Normals come in blocks of 32 from 16 consecutive counters (one 64-bit value gives both
    /// uniforms of a Box–Muller pair), so a draw of `count` normals uses this many counters.
    public static func countersNeeded(forNormals count: Int) -> Int { (count + 31) / 32 * 16 }

    /// Fills `count` standard normals starting at counter `counterOffset`, vectorized
    /// Box–Muller in Float32: counter c gives u₁ (its top 23 bits) and u₂ (23 low bits), both
    /// in (0, 1); normal j of a block of 32 is r·cos(2πu₂) of pair j for j < 16 and r·sin of pair
    /// j − 16 otherwise, r = √(−2 ln u₁). The same (stream, offset, count) always gives the
    /// same numbers, bit for bit on every kernel path (no contraction in the kernel); |z| ≤ 5.8 by
    /// construction (u₁ ≥ 2⁻²⁴).
    public func fillNormals(_ out: UnsafeMutablePointer<Float>, count: Int, counterOffset: UInt64 = 0) {
        bsvi_fill_normals(key, counterOffset, out, count)
    }

    /// An integer uniform in 0..<bound (bound > 0), by rejection-free multiply-shift (bias < 2⁻³²
    /// for the bounds used here).
    public func index(_ counter: UInt64, below bound: Int) -> Int {
        Int(((bits(counter) >> 32) &* UInt64(bound)) >> 32)
    }

    /// A Fisher–Yates permutation of 0..<count determined entirely by the stream.
    public func permutation(count: Int) -> [Int] {
        var p = Array(0..<count)
        if count < 2 { return p }
        for i in stride(from: count - 1, to: 0, by: -1) {
            let j = index(UInt64(i), below: i + 1)
            p.swapAt(i, j)
        }
        return p
    }
}
