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

/// Which golden a kernel path is held to, and on which paths the golden tests run: AVX2 and
/// AVX-512 give the same bits (one golden); the portable path leaves the products to OpenBLAS,
/// whose rounding depends on its core, so its golden holds only on the core it was recorded with.
enum GoldenPaths {
    enum Kind: Hashable { case vector, portable }

    static func kind(_ path: KernelPath) -> Kind { path == .portable ? .portable : .vector }

    /// The OpenBLAS core the portable goldens were recorded with (this machine's, 2026-12-01).
    static let portableRecordedOnCore = "Prescott"

    static var testable: [KernelPath] {
        KernelPath.supported.filter { $0 != .portable || OpenBLASCore.current == portableRecordedOnCore || recording }
    }

    /// BSVI_RECORD_GOLDEN set: print what the golden tests compute (how the goldens were recorded).
    static var recording: Bool { ProcessInfo.processInfo.environment["BSVI_RECORD_GOLDEN"] != nil }

    static func record(_ label: String, _ value: Any) {
        if recording { print("[golden] \(label) (OpenBLAS core \(OpenBLASCore.current)): \(value)") }
    }
}
