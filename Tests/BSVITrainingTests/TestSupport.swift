import BSVI
import Foundation

// Small helpers of the golden tests, copied from Tests/BSVITests/TestSupport.swift (test targets
// cannot share sources).

/// Runs `body` with `path`'s kernels on this thread (the kernel path is chosen per thread), then
/// restores the thread's previous path. Only for paths in `KernelPath.supported`.
func onPath<T>(_ path: KernelPath, _ body: () throws -> T) rethrows -> T {
    let previous = KernelPath.active
    try! KernelPath.select(path)
    defer { try! KernelPath.select(previous) }
    return try body()
}

/// FNV-1a over the bit patterns of `values` (one 32-bit word a step).
func fingerprint(_ values: [Float]) -> UInt64 {
    values.reduce(0xcbf2_9ce4_8422_2325) { ($0 ^ UInt64($1.bitPattern)) &* 0x100_0000_01b3 }
}
