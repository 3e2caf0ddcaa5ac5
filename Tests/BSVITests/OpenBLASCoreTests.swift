import BSVI
import Testing

/// The start-up correction of OpenBLAS's core: which core fits a CPU, when the program
/// re-executes itself, and the self-check that stands between a candidate core and its use.
@Suite("OpenBLAS core selection")
struct OpenBLASCoreTests {
    static let intelAVX512 = OpenBLASCore.CPU(avx512: true, avx512BF16: true, avx2: true, isAMD: false)
    static let skylake = OpenBLASCore.CPU(avx512: true, avx512BF16: false, avx2: true, isAMD: false)
    static let zen3 = OpenBLASCore.CPU(avx512: false, avx512BF16: false, avx2: true, isAMD: true)
    static let old = OpenBLASCore.CPU(avx512: false, avx512BF16: false, avx2: false, isAMD: false)

    @Test("the best core for each kind of CPU, and the tiers of OpenBLAS's core names")
    func bestCore() {
        #expect(Self.intelAVX512.bestCore == "Cooperlake")
        #expect(Self.skylake.bestCore == "SkylakeX")
        #expect(Self.zen3.bestCore == "Zen")
        #expect(OpenBLASCore.CPU(avx512: false, avx512BF16: false, avx2: true, isAMD: false).bestCore == "Haswell")
        #expect(Self.old.bestCore == nil)
        #expect(OpenBLASCore.tier(ofCore: "Prescott") == .sse)
        #expect(OpenBLASCore.tier(ofCore: "Sandybridge") == .avx)
        #expect(OpenBLASCore.tier(ofCore: "Zen") == .avx2)
        #expect(OpenBLASCore.tier(ofCore: "COOPERLAKE") == .avx512)
    }

    @Test("bench's yardstick: the vector paths' own width; on the portable path, OpenBLAS's")
    func yardstick() {
        for (path, width) in [(KernelPath.avx2, PeakYardstick.avx2), (.avx512, .avx512)] where path.isSupported {
            for core in ["Prescott", "Sandybridge", "Haswell", "Cooperlake"] {
                #expect(PeakYardstick.forWork(kernels: path, blasCore: core) == width, "the products are the path's own")
            }
        }
        let avx: PeakYardstick = PeakYardstick.avx.isSupported ? .avx : .portable
        #expect(PeakYardstick.forWork(kernels: .portable, blasCore: "Prescott") == .portable)
        #expect(PeakYardstick.forWork(kernels: .portable, blasCore: "Sandybridge") == avx, "an AVX-only core runs 256-bit products")
        #expect(PeakYardstick.forWork(kernels: .portable, blasCore: "Haswell") == (KernelPath.avx2.isSupported ? .avx2 : avx))
        #expect(PeakYardstick.forWork(kernels: .portable, blasCore: "Cooperlake")
                    == (KernelPath.avx512.isSupported ? .avx512 : KernelPath.avx2.isSupported ? .avx2 : avx),
                "portable kernels with an AVX-512 OpenBLAS run AVX-512 products; a narrower CPU falls back to its widest")
        // Each width this CPU has runs its loop and reports a rate.
        let rates = [PeakYardstick.portable, .avx, .avx2, .avx512].filter(\.isSupported).map { $0.gigaflops(seconds: 0.05) }
        #expect(rates.allSatisfy { $0 > 0 })
    }

    @Test("a fallback to an older core is corrected by re-executing with the CPU's core")
    func fallbackIsCorrected() {
        #expect(OpenBLASStartup.decide(currentCore: "Prescott", cpu: Self.intelAVX512, environment: [:]) == .reexecute(core: "Cooperlake"))
        #expect(OpenBLASStartup.decide(currentCore: "Haswell", cpu: Self.skylake, environment: [:]) == .reexecute(core: "SkylakeX"))
        #expect(OpenBLASStartup.decide(currentCore: "Sandybridge", cpu: Self.zen3, environment: [:]) == .reexecute(core: "Zen"))
    }

    @Test("a fitting core, an old CPU, a user's OPENBLAS_CORETYPE and a rejected candidate are left alone")
    func leftAlone() {
        #expect(OpenBLASStartup.decide(currentCore: "Cooperlake", cpu: Self.intelAVX512, environment: [:]) == .keep)
        #expect(OpenBLASStartup.decide(currentCore: "SkylakeX", cpu: Self.intelAVX512, environment: [:]) == .keep)
        #expect(OpenBLASStartup.decide(currentCore: "Prescott", cpu: Self.old, environment: [:]) == .keep)
        #expect(OpenBLASStartup.decide(currentCore: "Prescott", cpu: Self.intelAVX512, environment: ["OPENBLAS_CORETYPE": "Haswell"]) == .keep)
        #expect(OpenBLASStartup.decide(currentCore: "Prescott", cpu: Self.intelAVX512,
                                       environment: ["BSVI_OPENBLAS_REJECTED": "Cooperlake"]) == .keep)
    }

    @Test("a user's OPENBLAS_CORETYPE whose core the CPU cannot run is dropped; one it can run is kept")
    func unrunnableUserCoreIsDropped() {
        let sandyBridge = OpenBLASCore.CPU(avx512: false, avx512BF16: false, avx2: false, avx: true, isAMD: false)
        #expect(Self.old.tier == .sse && sandyBridge.tier == .avx && Self.zen3.tier == .avx2 && Self.skylake.tier == .avx512)
        let user = { (core: String) in ["OPENBLAS_CORETYPE": core] }
        #expect(OpenBLASStartup.decide(currentCore: "Haswell", cpu: Self.old, environment: user("Haswell")) == .dropUnrunnable(core: "Haswell"))
        #expect(OpenBLASStartup.decide(currentCore: "Haswell", cpu: sandyBridge, environment: user("Haswell")) == .dropUnrunnable(core: "Haswell"))
        #expect(OpenBLASStartup.decide(currentCore: "SkylakeX", cpu: Self.zen3, environment: user("SkylakeX")) == .dropUnrunnable(core: "SkylakeX"))
        #expect(OpenBLASStartup.decide(currentCore: "Sandybridge", cpu: sandyBridge, environment: user("Sandybridge")) == .keep)
        #expect(OpenBLASStartup.decide(currentCore: "Haswell", cpu: Self.intelAVX512, environment: user("Haswell")) == .keep)
        // What OpenBLAS loaded decides, not the name asked for (OpenBLAS ignores names it does not know).
        #expect(OpenBLASStartup.decide(currentCore: "Nehalem", cpu: Self.old, environment: user("SapphireRapids")) == .keep)
        // AMD family 15h's cores use FMA4, which AVX2 and AVX-512 CPUs do not have.
        let bulldozerCPU = OpenBLASCore.CPU(avx512: false, avx512BF16: false, avx2: false, avx: true, fma4: true, isAMD: true)
        #expect(OpenBLASStartup.decide(currentCore: "Bulldozer", cpu: Self.skylake, environment: user("Bulldozer")) == .dropUnrunnable(core: "Bulldozer"))
        #expect(OpenBLASStartup.decide(currentCore: "Piledriver", cpu: Self.zen3, environment: user("Piledriver")) == .dropUnrunnable(core: "Piledriver"))
        #expect(OpenBLASStartup.decide(currentCore: "Piledriver", cpu: bulldozerCPU, environment: user("Piledriver")) == .keep)
        #expect(OpenBLASCore.instructionSet(ofCore: "Excavator") == "AVX with AMD's FMA4" && OpenBLASCore.instructionSet(ofCore: "Zen") == "AVX2")
    }

    @Test("who chose the core: OpenBLAS (no OPENBLAS_CORETYPE), the program (its verified candidate) or the user")
    func chooser() {
        #expect(OpenBLASCoreChooser.of(environment: [:]) == .openblas)
        #expect(OpenBLASCoreChooser.of(environment: ["OPENBLAS_CORETYPE": "Cooperlake", "BSVI_OPENBLAS_CHOSEN": "Cooperlake"]) == .program)
        #expect(OpenBLASCoreChooser.of(environment: ["OPENBLAS_CORETYPE": "Haswell"]) == .user)
        // A user who set another core after the program chose one is the one who chose.
        #expect(OpenBLASCoreChooser.of(environment: ["OPENBLAS_CORETYPE": "Haswell", "BSVI_OPENBLAS_CHOSEN": "Cooperlake"]) == .user)
        #expect(OpenBLASCoreChooser.of(environment: ["BSVI_OPENBLAS_CHOSEN": "Cooperlake"]) == .openblas)
    }

    @Test("an OPENBLAS_CORETYPE naming no core OpenBLAS knows is found; a loaded or known name, or the program's candidate, is not")
    func unhonouredName() {
        #expect(OpenBLASStartup.unhonouredCoreType(currentCore: "Cooperlake", environment: ["OPENBLAS_CORETYPE": "Bogus"]) == "Bogus")
        // …and the start-up drops it by restarting, whatever core OpenBLAS fell back to.
        #expect(OpenBLASStartup.decide(currentCore: "Haswell", cpu: Self.zen3, environment: ["OPENBLAS_CORETYPE": "Bogus"])
                == .dropUnknown(name: "Bogus"))
        #expect(OpenBLASStartup.unhonouredCoreType(currentCore: "Haswell", environment: ["OPENBLAS_CORETYPE": "haswell"]) == nil)
        #expect(OpenBLASStartup.unhonouredCoreType(currentCore: "Haswell", environment: [:]) == nil)
        // A known name a build maps onto another core (no Cooperlake kernels: SkylakeX's) is the user's choice.
        #expect(OpenBLASStartup.unhonouredCoreType(currentCore: "SkylakeX", environment: ["OPENBLAS_CORETYPE": "Cooperlake"]) == nil)
        #expect(OpenBLASStartup.unhonouredCoreType(currentCore: "Prescott",
                                                   environment: ["OPENBLAS_CORETYPE": "Cooperlake", "BSVI_OPENBLAS_CANDIDATE": "Cooperlake"]) == nil)
    }

    @Test("the re-executed process verifies the candidate it was started with")
    func candidateIsVerified() {
        let env = ["OPENBLAS_CORETYPE": "Cooperlake", "BSVI_OPENBLAS_CANDIDATE": "Cooperlake"]
        #expect(OpenBLASStartup.decide(currentCore: "Cooperlake", cpu: Self.intelAVX512, environment: env) == .verifyCandidate(core: "Cooperlake"))
        // A user who changed OPENBLAS_CORETYPE afterwards is respected, not verified.
        #expect(OpenBLASStartup.decide(currentCore: "Haswell", cpu: Self.intelAVX512,
                                       environment: ["OPENBLAS_CORETYPE": "Haswell", "BSVI_OPENBLAS_CANDIDATE": "Cooperlake"]) == .keep)
    }

    @Test("the self-check passes this machine's BLAS and fails products that are wrong anywhere")
    func selfCheck() {
        #expect(OpenBLASCore.selfCheckFailure() == nil)
        // One wrong element in the last row of the Aᵀ products only.
        let wrongTransposed = OpenBLASCore.selfCheckFailure { transposeA, m, n, k, a, b, c in
            OpenBLASCore.blasProduct(transposeA: transposeA, m: m, n: n, k: k, a: a, b: b, c: c)
            if transposeA { c[m * n - 1] += 0.01 * (abs(c[m * n - 1]) + 1) }
        }
        #expect(wrongTransposed?.contains("Aᵀ") == true)
        // Products that drop the last term of every sum (an off-by-one in k).
        let shortSums = OpenBLASCore.selfCheckFailure { transposeA, m, n, k, a, b, c in
            if transposeA {
                OpenBLASCore.blasProduct(transposeA: true, m: m, n: n, k: k - 1, a: a, b: b, c: c)
            } else {
                for i in 0..<m { for j in 0..<n { c[i * n + j] = (0..<(k - 1)).reduce(0) { $0 + a[i * k + $1] * b[$1 * n + j] } } }
            }
        }
        #expect(shortSums != nil)
    }
}
