import CBLAS
import Foundation
import CKernels

/// Which OpenBLAS core (kernel family) the library runs, and whether it fits the CPU.
///
/// OpenBLAS picks its core once, when it is loaded, from CPUID — and Debian's 0.3.21 does not
/// know every CPU: on a Sapphire/Emerald Rapids Xeon it falls back to "Prescott" (SSE3), a
/// quarter of the speed it could have. `OPENBLAS_CORETYPE` overrides the choice but is read only
/// at load time, so the program corrects a fallback by re-executing itself with it set (see
/// `OpenBLASStartup`) — after a self-check of the candidate core's products.
public enum OpenBLASCore {
    /// The core OpenBLAS is running, e.g. "Cooperlake", "Haswell", "Prescott".
    public static var current: String { String(cString: openblas_get_corename()) }

    /// Instruction-set tiers of OpenBLAS's x86-64 cores (what their kernels use).
    public enum Tier: Int, Comparable, Sendable {
        case sse = 0, avx, avx2, avx512
        public static func < (a: Tier, b: Tier) -> Bool { a.rawValue < b.rawValue }
        public var instructionSet: String { ["SSE", "AVX", "AVX2", "AVX-512"][rawValue] }
    }

    /// AMD family 15h's cores: OpenBLAS's kernels for them use FMA4 (Bulldozer) or FMA3 (the
    /// later ones; treated alike here, as only those CPUs are sure to have what the kernels use).
    static func isFamilyFifteen(core name: String) -> Bool {
        ["bulldozer", "piledriver", "steamroller", "excavator"].contains(name.lowercased())
    }

    /// What a core's kernels need, for messages.
    public static func instructionSet(ofCore name: String) -> String {
        isFamilyFifteen(core: name) ? "AVX with AMD's FMA4" : tier(ofCore: name).instructionSet
    }

    /// The x86-64 core names OpenBLAS 0.3.21's OPENBLAS_CORETYPE takes (driver/others/dynamic.c,
    /// `corename`, compared without case). A build may map a named core onto another (no
    /// Cooperlake kernels: SkylakeX's), so a known name can load a core of another name.
    public static let knownCoreNames: Set<String> = [
        "katmai", "coppermine", "northwood", "prescott", "banias", "atom", "core2", "penryn", "dunnington", "nehalem", "athlon",
        "opteron", "opteron_sse3", "barcelona", "nano", "sandybridge", "bobcat", "bulldozer", "piledriver", "haswell", "steamroller",
        "excavator", "zen", "skylakex", "cooperlake", "sapphirerapids",
    ]

    public static func tier(ofCore name: String) -> Tier {
        switch name.lowercased() {
        case "skylakex", "cooperlake", "sapphirerapids": return .avx512
        case "haswell", "zen": return .avx2
        case "sandybridge", "bulldozer", "piledriver", "steamroller", "excavator": return .avx
        default: return .sse
        }
    }

    /// What the CPU can run, as far as the choice of an OpenBLAS core is concerned.
    public struct CPU: Sendable, Equatable {
        public var avx512: Bool
        public var avx512BF16: Bool
        public var avx2: Bool
        public var avx: Bool
        public var fma4: Bool
        public var isAMD: Bool

        /// `avx` defaults to `avx2` (every AVX2 CPU has AVX; only Sandy/Ivy Bridge-era CPUs differ).
        public init(avx512: Bool, avx512BF16: Bool, avx2: Bool, avx: Bool? = nil, fma4: Bool = false, isAMD: Bool) {
            self.avx512 = avx512
            self.avx512BF16 = avx512BF16
            self.avx2 = avx2
            self.avx = avx ?? avx2
            self.fma4 = fma4
            self.isAMD = isAMD
        }

        /// This machine (CPUID and XGETBV, as for the project's own kernels).
        public static var this: CPU {
            CPU(avx512: bsvi_cpu_supports(BSVI_ISA_AVX512) != 0, avx512BF16: bsvi_cpu_has_avx512_bf16() != 0,
                avx2: bsvi_cpu_supports(BSVI_ISA_AVX2) != 0, avx: bsvi_cpu_has_avx() != 0, fma4: bsvi_cpu_has_fma4() != 0,
                isAMD: bsvi_cpu_vendor() == 2)
        }

        /// The widest tier of OpenBLAS cores this CPU can run.
        public var tier: Tier { avx512 ? .avx512 : avx2 ? .avx2 : avx ? .avx : .sse }

        /// Whether this CPU has what an OpenBLAS core's kernels use.
        public func canRun(core name: String) -> Bool {
            OpenBLASCore.isFamilyFifteen(core: name) ? fma4 : OpenBLASCore.tier(ofCore: name) <= tier
        }

        /// The OpenBLAS core made for the widest instruction set this CPU has, or nil below AVX2.
        public var bestCore: String? {
            if avx512 { return avx512BF16 ? "Cooperlake" : "SkylakeX" }
            if avx2 { return isAMD ? "Zen" : "Haswell" }
            return nil
        }
    }

    /// Compares OpenBLAS's products with exact (Float64) ones on shapes like a training step's
    /// (row counts 1, 37 and 100; widths of the model's layers, full and ragged; plain and
    /// transposed A for the forward and weight-gradient products), relative to the size of the
    /// sums. Returns a description of the first mismatch, or nil when every product agrees to
    /// Float32 rounding. About 6 M multiply-adds (tens of milliseconds, once per start on a CPU
    /// whose core OpenBLAS did not recognise). `product` is the BLAS under test (cblas_sgemm by
    /// default; the tests pass broken ones).
    public static func selfCheckFailure(product: (_ transposeA: Bool, _ m: Int, _ n: Int, _ k: Int,
                                                  _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                                                  _ c: UnsafeMutablePointer<Float>) -> Void = blasProduct) -> String? {
        let shapes: [(transposeA: Bool, m: Int, n: Int, k: Int)] = [
            (false, 100, 200, 64), (false, 37, 100, 200), (false, 1, 784, 50),
            (true, 200, 160, 64), (true, 50, 200, 130), (true, 784, 48, 17),
        ]
        for s in shapes {
            let a = checkValues(count: s.m * s.k, salt: 1), b = checkValues(count: s.k * s.n, salt: 2)
            var c = [Float](repeating: .nan, count: s.m * s.n)
            a.withUnsafeBufferPointer { ap in
                b.withUnsafeBufferPointer { bp in
                    c.withUnsafeMutableBufferPointer { product(s.transposeA, s.m, s.n, s.k, ap.baseAddress!, bp.baseAddress!, $0.baseAddress!) }
                }
            }
            // Float64 reference; A is m×k, or k×m when transposed.
            for i in 0..<s.m {
                for j in 0..<s.n {
                    var sum = 0.0, magnitude = 0.0
                    for p in 0..<s.k {
                        let x = Double(s.transposeA ? a[p * s.m + i] : a[i * s.k + p]) * Double(b[p * s.n + j])
                        sum += x
                        magnitude += abs(x)
                    }
                    let error = abs(Double(c[i * s.n + j]) - sum)
                    // Float32 accumulation of k terms: a few ulps of the magnitude per √k.
                    guard error <= 1e-6 * magnitude * Double(s.k).squareRoot() + 1e-30 else {
                        return "sgemm\(s.transposeA ? " (Aᵀ)" : "") \(s.m)×\(s.k)·\(s.k)×\(s.n): element (\(i), \(j)) is \(c[i * s.n + j]), expected \(sum)"
                    }
                }
            }
        }
        return nil
    }

    /// cblas_sgemm, row-major: C (m×n) = op(A)·B with B k×n.
    public static func blasProduct(transposeA: Bool, m: Int, n: Int, k: Int, a: UnsafePointer<Float>,
                                   b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>) {
        cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k), 1,
                    a, Int32(transposeA ? m : k), b, Int32(n), 0, c, Int32(n))
    }

    /// Deterministic values in [−1, 1) with a few exact zeros and large magnitudes mixed in.
    static func checkValues(count: Int, salt: UInt64) -> [Float] {
        let stream = RandomStream(seed: 0x0B1A5, purpose: .sampling, salt)
        return (0..<count).map { i in
            let u = stream.uniform(UInt64(i))
            return i % 97 == 0 ? 0 : Float(2 * u - 1) * (i % 31 == 0 ? 1000 : 1)
        }
    }
}

/// The start-up decision about OpenBLAS's core, as a pure function of what the process sees
/// (so each branch is testable without re-executing anything).
public enum OpenBLASStartup: Equatable, Sendable {
    /// Leave OpenBLAS as it is (the core fits, the user chose one, or there is nothing better).
    case keep
    /// Re-execute with OPENBLAS_CORETYPE = core (and the candidate marker), to be self-checked.
    case reexecute(core: String)
    /// This process runs a candidate core: self-check it, keep it if it passes, otherwise
    /// re-execute without it (and remember it was rejected).
    case verifyCandidate(core: String)

    /// A user's OPENBLAS_CORETYPE made OpenBLAS load a core this CPU cannot run (its first product
    /// would die with SIGILL — e.g. one job script on the old and new nodes of a cluster): re-execute
    /// without it, with a warning, and let OpenBLAS choose.
    case dropUnrunnable(core: String)

    /// A user's OPENBLAS_CORETYPE names no core OpenBLAS knows (unhonouredCoreType): re-execute
    /// without it, with a warning, so that OpenBLAS chooses as if it were unset.
    case dropUnknown(name: String)

    /// Set by the program when it re-executes with a candidate core.
    public static let candidateVariable = "BSVI_OPENBLAS_CANDIDATE"
    /// Set by the program when a candidate failed its self-check, so it is not tried again.
    public static let rejectedVariable = "BSVI_OPENBLAS_REJECTED"
    /// Set by the program to the candidate core once it passed its self-check, so that what is
    /// reported can tell the program's OPENBLAS_CORETYPE from a user's.
    public static let chosenVariable = "BSVI_OPENBLAS_CHOSEN"
    public static let coreTypeVariable = "OPENBLAS_CORETYPE"

    /// A user's OPENBLAS_CORETYPE that names no core OpenBLAS knows (a typo). OpenBLAS ignores it
    /// without a word, but not as if it were unset: it falls back to a core chosen by instruction set
    /// alone (Haswell on a Zen 1, whose detected core is Zen), so the program restarts without it.
    /// nil for a known name (even one this build maps onto another core), or when the program set
    /// the variable.
    public static func unhonouredCoreType(currentCore: String, environment: [String: String]) -> String? {
        guard environment[candidateVariable] == nil, let requested = environment[coreTypeVariable],
              requested.lowercased() != currentCore.lowercased(),
              !OpenBLASCore.knownCoreNames.contains(requested.lowercased()) else { return nil }
        return requested
    }

    public static func decide(currentCore: String, cpu: OpenBLASCore.CPU, environment: [String: String]) -> OpenBLASStartup {
        if let candidate = environment[candidateVariable], environment[coreTypeVariable] == candidate {
            return .verifyCandidate(core: candidate)
        }
        if let unknown = unhonouredCoreType(currentCore: currentCore, environment: environment) {
            return .dropUnknown(name: unknown)
        }
        // A user's own OPENBLAS_CORETYPE is respected, as long as the CPU can run the core it loaded.
        if environment[coreTypeVariable] != nil {
            return cpu.canRun(core: currentCore) ? .keep : .dropUnrunnable(core: currentCore)
        }
        guard let best = cpu.bestCore,
              OpenBLASCore.tier(ofCore: currentCore) < OpenBLASCore.tier(ofCore: best),
              environment[rejectedVariable] != best else { return .keep }
        return .reexecute(core: best)
    }
}

/// Who chose the core OpenBLAS runs, as `cpu` and `bench` report it.
public enum OpenBLASCoreChooser: String, Codable, Sendable {
    /// OpenBLAS's own detection at load.
    case openblas
    /// The program's start-up correction (a candidate core that passed the self-check).
    case program = "bsvi-dist"
    /// The user's OPENBLAS_CORETYPE (e.g. exported by the machine's environment).
    case user = "OPENBLAS_CORETYPE"

    public static func of(environment: [String: String]) -> OpenBLASCoreChooser {
        guard let core = environment[OpenBLASStartup.coreTypeVariable] else { return .openblas }
        return environment[OpenBLASStartup.chosenVariable] == core ? .program : .user
    }

    /// This process, from its environment as it is now (after the start-up's setenv calls).
    public static var current: OpenBLASCoreChooser {
        var environment: [String: String] = [:]
        for name in [OpenBLASStartup.coreTypeVariable, OpenBLASStartup.chosenVariable] {
            if let value = getenv(name) { environment[name] = String(cString: value) }
        }
        return of(environment: environment)
    }

    /// What `cpu` and `bench` print after the core's name.
    public var note: String {
        switch self {
        case .openblas: return "OpenBLAS's own choice"
        case .program: return "chosen by bsvi-dist at start-up"
        case .user: return "set by OPENBLAS_CORETYPE"
        }
    }
}
