import ArgumentParser
import BSVI
import Foundation

struct CPUInfo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cpu",
        abstract: "Show the CPU, the kernel paths it can run, the one in use, and OpenBLAS's core.")

    @Flag(help: "Print one JSON object.") var json = false
    @Flag(help: "Also measure the FMA peak of each kernel path, and the bfloat16 peaks of the AMX tiles and AVX512_BF16 vectors where the CPU has them (about two seconds).") var peak = false

    func run() throws {
        let supported = KernelPath.supported
        // What `eval --matmul-precision` can run here (high needs AMX-BF16 tiles, medium those or
        // AVX512_BF16), and the bfloat16 units' own peaks.
        let precisions = MatmulPrecision.allCases.filter { $0.unavailableReason == nil }
        let peaks = peak ? supported.map { $0.fmaPeakGigaflops(seconds: 0.3) } : []
        let tilePeak = peak ? BFloat16Unit.tiles.peakGigaflops(seconds: 0.3) : nil
        let vectorPeak = peak ? BFloat16Unit.vectors.peakGigaflops(seconds: 0.3) : nil
        if json {
            var object: [String: Any] = [
                "cpu_model": KernelPath.cpuModel, "cpu_family": KernelPath.cpuFamily,
                "cpu_model_number": KernelPath.cpuModelNumber, "kernel_paths": supported.map(\.rawValue),
                "kernel_isa": KernelPath.active.rawValue, "blas_core": OpenBLASCore.current,
                "blas_core_chooser": OpenBLASCoreChooser.current.rawValue,
                "matmul_precisions": precisions.map(\.rawValue),
            ]
            if peak {
                object["fma_peak_gflops"] = Dictionary(uniqueKeysWithValues: zip(supported.map(\.rawValue), peaks))
                if let tiles = tilePeak { object["amx_bf16_peak_gflops"] = tiles }
                if let vectors = vectorPeak { object["avx512_bf16_peak_gflops"] = vectors }
            }
            print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]), as: UTF8.self))
            return
        }
        print("CPU             \(KernelPath.cpuDescription)")
        print("kernel paths    \(supported.map(\.rawValue).joined(separator: ", ")) (in use: \(KernelPath.active.rawValue); set BSVI_KERNELS to choose)")
        print("OpenBLAS core   \(OpenBLASCore.current) (\(OpenBLASCoreChooser.current.note))")
        let units = MatmulPrecision.medium.unit.map { $0 == .tiles ? "high and medium on AMX-BF16 tiles" : "medium on AVX512_BF16 vectors; high needs AMX-BF16 tiles" }
        print("eval precision  \(precisions.map(\.rawValue).joined(separator: ", "))"
              + (precisions.count > 1 ? " (--matmul-precision; \(units ?? ""))" : " (high needs AMX-BF16 tiles, medium those or AVX512_BF16, both the avx512 path)"))
        for (path, rate) in zip(supported, peaks) { print(String(format: "FMA peak        %@ %.1f GFLOP/s per core", path.rawValue, rate)) }
        if let tilePeak { print(String(format: "AMX-BF16 peak   %.1f GFLOP/s per core (bfloat16 tiles: eval --matmul-precision high|medium)", tilePeak)) }
        if let vectorPeak {
            print(String(format: "AVX512_BF16     %.1f GFLOP/s per core (VDPBF16PS; medium uses it where there are no tiles)", vectorPeak))
        }
    }
}
