import Foundation

/// Optional timing of the step's parts for `bsvi-dist bench`: matrix products (every gemm)
/// and element-wise passes (activations, likelihood, sampling, per-row scaling). Off by
/// default; when off each probe is one predictable branch.
public enum StepProfile {
    nonisolated(unsafe) public static var enabled = false
    nonisolated(unsafe) public static var gemmNanoseconds: UInt64 = 0
    nonisolated(unsafe) public static var elementwiseNanoseconds: UInt64 = 0

    public static func reset() {
        gemmNanoseconds = 0
        elementwiseNanoseconds = 0
    }

    @inline(__always)
    static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

    @inline(__always)
    public static func gemm<T>(_ body: () -> T) -> T {
        guard enabled else { return body() }
        let t = now()
        defer { gemmNanoseconds &+= now() &- t }
        return body()
    }

    @inline(__always)
    public static func elementwise<T>(_ body: () -> T) -> T {
        guard enabled else { return body() }
        let t = now()
        defer { elementwiseNanoseconds &+= now() &- t }
        return body()
    }
}
