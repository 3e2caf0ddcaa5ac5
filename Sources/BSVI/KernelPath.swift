import CKernels
import Foundation

/// Which implementation of the hot kernels runs: AVX-512, AVX2+FMA or portable C (plus BLAS for
/// the matrix products). Chosen at run time from what the CPU and OS support (CPUID, XGETBV),
/// or forced with `BSVI_KERNELS=avx512|avx2|portable`; never by the machine that built the binary.
public enum KernelPath: String, CaseIterable, Sendable {
    case portable, avx2, avx512

    var isa: bsvi_isa {
        switch self {
        case .portable: return BSVI_ISA_PORTABLE
        case .avx2: return BSVI_ISA_AVX2
        case .avx512: return BSVI_ISA_AVX512
        }
    }

    init(_ isa: bsvi_isa) {
        switch isa {
        case BSVI_ISA_AVX512: self = .avx512
        case BSVI_ISA_AVX2: self = .avx2
        default: self = .portable
        }
    }

    /// The environment variable that forces a path.
    public static let environmentVariable = "BSVI_KERNELS"

    /// Whether this CPU (and its OS) can run the path.
    public var isSupported: Bool { bsvi_cpu_supports(isa) != 0 }

    /// The paths this machine can run, widest last.
    public static var supported: [KernelPath] { allCases.filter(\.isSupported) }

    /// The widest path this machine can run.
    public static var best: KernelPath { KernelPath(bsvi_cpu_best_isa()) }

    /// The path the kernels use now.
    public static var active: KernelPath { KernelPath(bsvi_kernels_active()) }

    /// Whether the active path has its own matrix products (otherwise they run on BLAS).
    public static var activeHasProducts: Bool { bsvi_kernels_have_products() != 0 }

    /// Makes `path` the active one (tests run the numerics on every supported path).
    public static func select(_ path: KernelPath) throws {
        guard bsvi_kernels_select(path.isa) == 0 else { throw KernelPathError.unsupported(path, cpu: cpuModel) }
    }

    /// Runs `body` with `path` active, then restores the previous path.
    public static func with<T>(_ path: KernelPath, _ body: () throws -> T) throws -> T {
        let previous = active
        try select(path)
        defer { try? select(previous) }
        return try body()
    }

    /// The start-up choice: `BSVI_KERNELS` when set (refused if unknown or unsupported here),
    /// otherwise the best path. Returns the path now active.
    @discardableResult
    public static func configure(environment: [String: String]) throws -> KernelPath {
        guard let requested = environment[environmentVariable], !requested.isEmpty else {
            try select(best)
            return best
        }
        guard let path = KernelPath(rawValue: requested) else { throw KernelPathError.unknown(requested) }
        try select(path)
        return path
    }

    /// The CPU's brand string (CPUID), e.g. "Intel(R) Xeon(R) Processor".
    public static var cpuModel: String { String(cString: bsvi_cpu_model_name()) }
    /// CPUID's family and model numbers, e.g. 25 and 17 for a Zen 4 EPYC (0 where unknown).
    public static var cpuFamily: Int { Int(bsvi_cpu_family()) }
    public static var cpuModelNumber: Int { Int(bsvi_cpu_model_number()) }
    /// The brand string with the family and model, which tell apart CPUs a VM names alike.
    public static var cpuDescription: String {
        cpuFamily > 0 ? "\(cpuModel) (family \(cpuFamily), model \(cpuModelNumber))" : cpuModel
    }

    /// The core's single-precision FMA peak in GFLOP/s at this path's vector width: a
    /// register-only loop of independent fused multiply-adds, run for about `seconds` (the best
    /// of five windows).
    public func fmaPeakGigaflops(seconds: Double = 0.25) -> Double {
        bestOfPeakWindows(seconds: seconds) { bsvi_fma_peak_gflops(isa, $0) }
    }
}

public enum KernelPathError: Error, CustomStringConvertible, Equatable {
    case unknown(String)
    case unsupported(KernelPath, cpu: String)

    public var description: String {
        switch self {
        case .unknown(let value):
            return "\(KernelPath.environmentVariable)=\(value) is not a kernel path; use avx512, avx2 or portable, or unset it to pick the best for this CPU"
        case .unsupported(let path, let cpu):
            return "\(KernelPath.environmentVariable)=\(path.rawValue): this CPU (\(cpu)) cannot run the \(path.rawValue) kernels; "
                + "it supports \(KernelPath.supported.map(\.rawValue).joined(separator: ", ")) (unset \(KernelPath.environmentVariable) to pick the best)"
        }
    }
}

/// The vector width `bench` measures the core's peak at: the widest the work uses. The vector
/// paths do their products themselves; the portable path leaves them to OpenBLAS, so its work
/// runs at OpenBLAS's width (a portable loop would put the useful rate above "peak").
public enum PeakYardstick: String, Sendable {
    case portable, avx, avx2, avx512

    public static func forWork(kernels: KernelPath, blasCore: String) -> PeakYardstick {
        switch kernels {
        case .avx512: return .avx512
        case .avx2: return .avx2
        case .portable: break
        }
        // The widest width at or below OpenBLAS's that this CPU runs.
        let wanted: [PeakYardstick]
        switch OpenBLASCore.tier(ofCore: blasCore) {
        case .avx512: wanted = [.avx512, .avx2, .avx]
        case .avx2: wanted = [.avx2, .avx]
        case .avx: wanted = [.avx]
        case .sse: wanted = []
        }
        return wanted.first(where: \.isSupported) ?? .portable
    }

    public var isSupported: Bool {
        switch self {
        case .portable: return true
        case .avx: return bsvi_cpu_has_avx() != 0
        case .avx2: return KernelPath.avx2.isSupported
        case .avx512: return KernelPath.avx512.isSupported
        }
    }

    /// Single-precision peak in GFLOP/s: independent FMAs on registers (separate multiplies and
    /// adds for the portable and AVX widths, which have no FMA), for about `seconds`.
    public func gigaflops(seconds: Double = 0.25) -> Double {
        switch self {
        case .portable: return KernelPath.portable.fmaPeakGigaflops(seconds: seconds)
        case .avx: return bestOfPeakWindows(seconds: seconds) { bsvi_avx_multiply_add_peak_gflops($0) }
        case .avx2: return KernelPath.avx2.fmaPeakGigaflops(seconds: seconds)
        case .avx512: return KernelPath.avx512.fmaPeakGigaflops(seconds: seconds)
        }
    }
}

/// A peak loop's rate over `seconds`, as the best of five equal windows: on a shared host a
/// window in which the core was taken away reads low, and a low yardstick would inflate every
/// fraction of it (one 0.25-s window once read 122 GFLOP/s on a 170 GFLOP/s core).
public func bestOfPeakWindows(seconds: Double, _ measure: (Double) -> Double) -> Double {
    (0..<5).map { _ in measure(seconds / 5) }.max()!
}

/// The shortest of `passes` timed runs of `body`, in seconds, after `warmups` untimed ones: the
/// yardsticks' reading of a fixed piece of work (a longer run is one the host interrupted).
public func shortestSeconds(ofPasses passes: Int, afterWarmups warmups: Int = 0, _ body: () -> Void) -> Double {
    precondition(passes >= 1, "shortestSeconds needs at least one timed pass")
    for _ in 0..<warmups { body() }
    return (0..<passes).map { _ in
        let t = DispatchTime.now().uptimeNanoseconds
        body()
        return Double(DispatchTime.now().uptimeNanoseconds - t) * 1e-9
    }.min()!
}
