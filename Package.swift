// swift-tools-version:6.0
import PackageDescription

// Release builds are what users and benchmarks run: whole-module optimization is on by
// default there; -Ounchecked removes overflow/bounds traps from the numeric kernels only.
// Nothing is compiled for the build machine's CPU: the hot kernels live in CKernels, one
// variant per instruction set (AVX-512, AVX2+FMA, portable), chosen at run time, so one binary
// runs, and runs fast, on every x86-64 CPU.
let numericsFlags: [SwiftSetting] = [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]

let package = Package(
    name: "bsvi-dist",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "bsvi-dist", targets: ["bsvi-dist"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // System libraries, found through pkg-config.
        .systemLibrary(name: "CMPI", pkgConfig: "ompi-c", providers: [.apt(["libopenmpi-dev"])]),
        .systemLibrary(name: "CHDF5", pkgConfig: "hdf5", providers: [.apt(["libhdf5-dev"])]),
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng16", providers: [.apt(["libpng-dev"])]),
        // NumPy .npz archives are zip files (members stored or deflated).
        .systemLibrary(name: "CZip", pkgConfig: "libzip", providers: [.apt(["libzip-dev"])]),
        // One shim per C library (static inline getters for the macros Swift cannot import), so
        // a module sees only the library it uses; and the async-signal-safe stop flag.
        .target(name: "CMPIShims", dependencies: ["CMPI"]),
        .target(name: "CHDF5Shims", dependencies: ["CHDF5"]),
        .target(name: "CStopSignal"),
        // The hot kernels, one variant per instruction set, chosen at run time (include/CKernels.h).
        // Optimized in every configuration, so debug-built tests check the vectorized code that
        // ships; -fno-math-errno lets sqrt vectorize (Adam's v is never negative).
        // scripts/kernel-bench and scripts/kernel-ab compile these sources with the same flags.
        .target(name: "CKernels", exclude: ["README.md"], cSettings: [.unsafeFlags(["-O3", "-fno-math-errno"])]),

        .target(name: "BSVI", dependencies: ["CBLAS", "CKernels"], exclude: ["README.md"], swiftSettings: numericsFlags),
        .target(name: "BSVIParallel", dependencies: ["CMPI", "CMPIShims"], exclude: ["README.md"]),
        .target(name: "BSVIStorage", dependencies: ["BSVI", "CHDF5", "CHDF5Shims", "CZlib", "CPNG", "CZip", "CStopSignal"], exclude: ["README.md"]),
        .target(name: "BSVITraining", dependencies: ["BSVI", "BSVIParallel", "BSVIStorage", "CStopSignal"],
                exclude: ["README.md"], swiftSettings: numericsFlags),
        .executableTarget(name: "bsvi-dist", dependencies: [
            "BSVITraining", "BSVIStorage", "BSVIParallel", "BSVI", "CStopSignal",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], exclude: ["README.md"]),

        // Writers of input files (IDX, .amat, .npy, .npz, gzip) shared by the tests of prepare-data.
        .target(name: "DataFixtures", dependencies: ["CZlib", "CZip"], path: "Tests/DataFixtures"),
        // Which golden values a kernel path is held to (the golden tests of BSVITests and BSVITrainingTests).
        .target(name: "GoldenSupport", dependencies: ["BSVI"], path: "Tests/GoldenSupport"),
        .testTarget(name: "BSVITests", dependencies: ["BSVI", "GoldenSupport"]),
        .testTarget(name: "BSVIStorageTests", dependencies: ["BSVIStorage", "BSVI", "CHDF5", "CHDF5Shims", "DataFixtures"]),
        .testTarget(name: "BSVIParallelTests", dependencies: ["BSVIParallel"]),
        .testTarget(name: "BSVITrainingTests", dependencies: ["BSVITraining", "BSVIStorage", "BSVIParallel", "BSVI", "GoldenSupport"]),
        // Under mpirun, one rank makes a failing MPI call while the other waits (IntegrationTests).
        .executableTarget(name: "MPIFailureProbe", dependencies: ["BSVIParallel"], path: "Tests/MPIFailureProbe"),
        .testTarget(name: "IntegrationTests", dependencies: ["BSVITraining", "BSVIStorage", "BSVIParallel", "BSVI", "DataFixtures",
                                                             "MPIFailureProbe"]),
    ],
    swiftLanguageModes: [.v5]
)
