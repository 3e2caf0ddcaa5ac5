import BSVI
import Foundation

/// Which golden a kernel path is held to, and on which paths the golden tests run: AVX2 and
/// AVX-512 give the same bits (one golden); the portable path leaves the products to OpenBLAS,
/// whose rounding depends on its core, so its golden holds only on the core it was recorded with.
/// Shared by the golden tests of BSVITests and BSVITrainingTests.
public enum GoldenPaths {
    public enum Kind: Hashable { case vector, portable }

    public static func kind(_ path: KernelPath) -> Kind { path == .portable ? .portable : .vector }

    /// The OpenBLAS core the portable goldens were recorded with (this machine's on 2026-12-01; re-recorded
    /// 2026-12-05 on a Zen 1 with OPENBLAS_CORETYPE=Prescott).
    public static let portableRecordedOnCore = "Prescott"

    /// Every supported path; the portable one only on the OpenBLAS core its golden was recorded with.
    public static var testable: [KernelPath] {
        KernelPath.supported.filter { $0 != .portable || OpenBLASCore.current == portableRecordedOnCore || recording }
    }

    /// BSVI_RECORD_GOLDEN set: print what the golden tests compute (how the goldens were recorded).
    public static var recording: Bool { ProcessInfo.processInfo.environment["BSVI_RECORD_GOLDEN"] != nil }

    public static func record(_ label: String, _ value: Any) {
        if recording { print("[golden] \(label) (OpenBLAS core \(OpenBLASCore.current)): \(value)") }
    }
}
