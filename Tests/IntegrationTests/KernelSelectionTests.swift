import BSVI
import BSVIStorage
import Foundation
import Testing

/// The binary chooses its kernels and OpenBLAS's core at start-up, from the CPU it runs on.
@Suite("Kernel path and OpenBLAS core at start-up")
struct KernelSelectionTests {
    static func cpuInfo(environment: [String: String] = [:], unsetting: [String] = []) throws -> [String: Any] {
        let r = try runCommand(try binaryPath(), ["cpu", "--json"], environment: environment, unsetting: unsetting)
        #expect(r.status == 0, "\(r.stderr)")
        return try parseJSONLine(r.stdout)
    }

    @Test("BSVI_KERNELS picks each path the CPU has; unset picks the best")
    func environmentPicksThePath() throws {
        let info = try Self.cpuInfo()
        let paths = try #require(info["kernel_paths"] as? [String])
        #expect(paths.contains("portable"))
        #expect(info["kernel_isa"] as? String == paths.last)
        for path in paths { #expect(try Self.cpuInfo(environment: ["BSVI_KERNELS": path])["kernel_isa"] as? String == path) }
    }

    @Test("cpu names CPUID's family and model as /proc/cpuinfo does (a VM's brand string may not tell a Zen 4 from a Zen 5)",
          .enabled(if: FileManager.default.fileExists(atPath: "/proc/cpuinfo")))
    func familyAndModel() throws {
        let info = try Self.cpuInfo()
        let proc = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        func field(_ name: String) -> Int? {
            let line = proc.split(separator: "\n").first { $0.split(separator: ":").first?.trimmingCharacters(in: .whitespaces) == name }
            return line.flatMap { Int($0.split(separator: ":").last!.trimmingCharacters(in: .whitespaces)) }
        }
        let family = try #require(field("cpu family")), model = try #require(field("model"))
        #expect(info["cpu_family"] as? Int == family && info["cpu_model_number"] as? Int == model, "\(info)")
        let text = try runCommand(try binaryPath(), ["cpu"])
        #expect(text.stdout.contains("(family \(family), model \(model))"), "\(text.stdout)")
    }

    @Test("cpu lists eval's --matmul-precision high exactly when /proc/cpuinfo shows AMX tiles with bfloat16, medium with those or AVX512_BF16, neither on the avx2 path; and each unit's peak",
          .enabled(if: FileManager.default.fileExists(atPath: "/proc/cpuinfo")))
    func matmulPrecisions() throws {
        let proc = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        let flags = Set(proc.split(separator: "\n").first { $0.hasPrefix("flags") }?.split(separator: " ").map(String.init) ?? [])
        let amx = flags.contains("amx_tile") && flags.contains("amx_bf16"), vectors = flags.contains("avx512_bf16")
        let listed = try Self.cpuInfo()["matmul_precisions"] as? [String]
        #expect(listed == (amx ? ["highest", "high", "medium"] : vectors ? ["highest", "medium"] : ["highest"]), "\(listed ?? [])")
        if KernelPath.avx2.isSupported {
            let onAVX2 = try Self.cpuInfo(environment: ["BSVI_KERNELS": "avx2"])["matmul_precisions"] as? [String]
            #expect(onAVX2 == ["highest"], "\(onAVX2 ?? [])")
        }
        // The tiles' own yardstick: on every AMX CPU so far 6–14 times the AVX-512 FMA peak.
        let peaks = try runCommand(try binaryPath(), ["cpu", "--json", "--peak"])
        let measured = try parseJSONLine(peaks.stdout)
        let tiles = measured["amx_bf16_peak_gflops"] as? Double, vectorPeak = measured["avx512_bf16_peak_gflops"] as? Double
        if amx {
            let fma = try #require((measured["fma_peak_gflops"] as? [String: Double])?["avx512"])
            #expect((tiles ?? 0) > 2 * fma, "AMX \(tiles ?? 0) against FMA \(fma) GFLOP/s")
        } else {
            #expect(tiles == nil)
        }
        // VDPBF16PS's: measured wherever the CPU has it (half the FMA rate on the Intel model 207).
        #expect(((vectorPeak ?? 0) > 0) == vectors, "AVX512_BF16 peak \(vectorPeak ?? 0)")
        let text = try runCommand(try binaryPath(), ["cpu"])
        let precisions = amx ? "eval precision  highest, high, medium (--matmul-precision; high and medium on AMX-BF16 tiles)"
            : vectors ? "eval precision  highest, medium (--matmul-precision; medium on AVX512_BF16 vectors"
            : "eval precision  highest (high needs AMX-BF16 tiles, medium those or AVX512_BF16"
        #expect(text.stdout.contains(precisions), "\(text.stdout)")
    }

    @Test("an unknown BSVI_KERNELS value is refused with exit 64 and a message naming the variable and the choices")
    func unknownPathIsRefused() throws {
        for command in [["cpu"], ["train", "--epochs", "1"]] {
            let r = try runCommand(try binaryPath(), command, environment: ["BSVI_KERNELS": "avx1024"])
            #expect(r.status == 64)
            #expect(r.stderr.contains("BSVI_KERNELS=avx1024") && r.stderr.contains("avx512, avx2 or portable"), "\(r.stderr)")
        }
    }

    @Test("under a launcher, the first rank of every node names itself in the refusal (a path one node's CPU lacks fails there only); the others exit 64 quietly")
    func refusalOncePerNode() throws {
        // The launcher's variables as mpirun sets them for rank 3, first or second on its node;
        // the refusal comes before MPI starts, so no mpirun is needed to see what the rank prints.
        for localRank in [0, 1] {
            let r = try runCommand(try binaryPath(), ["cpu"], environment: [
                "BSVI_KERNELS": "avx1024", "OMPI_COMM_WORLD_RANK": "3", "OMPI_COMM_WORLD_LOCAL_RANK": "\(localRank)", "OMPI_COMM_WORLD_SIZE": "4"])
            #expect(r.status == 64)
            // Rank 3 used to exit 64 without a word whatever its node.
            #expect(r.stderr.contains("error: rank 3 on ") == (localRank == 0), "local rank \(localRank): \(r.stderr)")
            #expect(r.stderr.contains("BSVI_KERNELS=avx1024") == (localRank == 0), "local rank \(localRank): \(r.stderr)")
        }
    }

    @Test("OpenBLAS runs a core of the CPU's own tier (a fallback is corrected); a user's OPENBLAS_CORETYPE is kept")
    func openBLASCore() throws {
        // Without a user's choice (the machine running the tests may export one).
        let info = try Self.cpuInfo(unsetting: ["OPENBLAS_CORETYPE"])
        let core = try #require(info["blas_core"] as? String)
        let chooser = try #require(info["blas_core_chooser"] as? String)
        if let best = OpenBLASCore.CPU.this.bestCore {
            #expect(OpenBLASCore.tier(ofCore: core) == OpenBLASCore.tier(ofCore: best), "OpenBLAS runs \(core) on a CPU for \(best)")
        }
        // Either OpenBLAS recognised the CPU, or the program corrected it to the CPU's best core.
        #expect(chooser == "openblas" || (chooser == "bsvi-dist" && core == OpenBLASCore.CPU.this.bestCore), "\(info)")
        // The process the start-up correction re-executes: it checks its candidate and says it chose it.
        if let best = OpenBLASCore.CPU.this.bestCore {
            let corrected = try Self.cpuInfo(environment: ["OPENBLAS_CORETYPE": best, "BSVI_OPENBLAS_CANDIDATE": best])
            #expect(corrected["blas_core"] as? String == best && corrected["blas_core_chooser"] as? String == "bsvi-dist", "\(corrected)")
        }
        let user = try Self.cpuInfo(environment: ["OPENBLAS_CORETYPE": "Prescott"])
        #expect(user["blas_core"] as? String == "Prescott" && user["blas_core_chooser"] as? String == "OPENBLAS_CORETYPE", "\(user)")
        // A name OpenBLAS does not know: the program restarts without it, so OpenBLAS chooses as if
        // it were unset (for an unknown name OpenBLAS falls back by instruction set: Haswell on a
        // Zen 1, whose own choice is Zen), and one warning says so.
        let typo = try runCommand(try binaryPath(), ["cpu", "--json"], environment: ["OPENBLAS_CORETYPE": "Bogus"])
        #expect(typo.status == 0, "\(typo.stderr)")
        let typoInfo = try parseJSONLine(typo.stdout)
        #expect(typoInfo["blas_core"] as? String == core && typoInfo["blas_core_chooser"] as? String == chooser, "\(typoInfo)")
        #expect(typo.stderr.components(separatedBy: "OPENBLAS_CORETYPE=Bogus names no core OpenBLAS knows").count == 2, "\(typo.stderr)")
    }

    @Test("under mpirun every rank corrects OpenBLAS the same way and the job runs")
    func openBLASCoreUnderMPI() throws {
        let r = try mpirunBSVI(ranks: 2, ["bench", "--steps", "2", "--warmup", "0", "--eval-examples", "0", "--json",
                                          "--hidden", "16", "--latent", "4"], unsetting: ["OPENBLAS_CORETYPE"])
        #expect(r.status == 0, "\(r.stderr)")
        let report = try parseJSONLine(r.stdout)
        let core = try #require(report["blas_core"] as? String)
        if let best = OpenBLASCore.CPU.this.bestCore { #expect(OpenBLASCore.tier(ofCore: core) == OpenBLASCore.tier(ofCore: best)) }
        #expect((report["peak_fraction"] as? Double).map { $0 > 0 && $0 <= 1 } == true)
    }

    /// This checkout's scripts/kernel-bench.
    static let kernelBenchScript = repositoryRoot.appendingPathComponent("scripts/kernel-bench").path

    /// scripts/kernel-bench builds the kernel sources of this checkout into a small C program; it
    /// must keep compiling and report every decoder shape's rate and fraction of the FMA peak
    /// (not bounded above here: on a noisy VM the 0.3 s peak loop can come out low).
    @Test("scripts/kernel-bench reports each decoder shape on each vector path, and in bfloat16 on each unit the CPU has; 0 rows is refused with exit 64",
          arguments: vectorPathsOfThisCPU)
    func kernelBench(path: String) throws {
        let script = Self.kernelBenchScript
        let r = try runCommand(script, ["24"], environment: ["BSVI_KERNELS": path])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.hasPrefix("\(path) kernels, 24 rows"), "\(r.stdout)")
        let shapes = r.stdout.split(separator: "\n").filter { $0.contains("% of peak") }
        #expect(shapes.count == 5, "\(r.stdout)")
        for line in shapes {
            let fields = line.split(separator: " ")
            let percent = fields.firstIndex(of: "%").flatMap { Double(fields[$0 - 1]) }
            let gflops = fields.firstIndex(of: "GFLOP/s").flatMap { Double(fields[$0 - 1]) }
            #expect(percent.map { $0 > 0 } == true && gflops.map { $0 > 0 } == true, "\(line)")
        }
        // On the avx512 path, the three products and the whole decoder in bfloat16 on each unit:
        // medium on the vectors; medium and high on the tiles.
        let bfloat16 = r.stdout.split(separator: "\n").filter { $0.contains("of the unit's") }
        let units = path == "avx512" ? (BFloat16Unit.vectors.isAvailable ? 1 : 0) + (BFloat16Unit.tiles.isAvailable ? 2 : 0) : 0
        #expect(bfloat16.count == 4 * units, "\(r.stdout)")
        for line in bfloat16 {
            let fields = line.split(separator: " ")
            let rates = fields.indices.filter { $0 > 0 && (fields[$0] == "GFLOP/s" || fields[$0] == "%") }.compactMap { Double(fields[$0 - 1]) }
            #expect(rates.count == 3 && rates.allSatisfy { $0 > 0 }, "\(line)")
        }
        let refused = try runCommand(script, ["0"], environment: ["BSVI_KERNELS": path])
        #expect(refused.status == 64 && refused.stderr.contains("ROWS must be a positive"), "\(refused.stderr)")
    }

    @Test("scripts/kernel-bench refuses a path without product kernels (portable) and an unknown name, with exit 64")
    func kernelBenchRefusesOtherPaths() throws {
        let script = Self.kernelBenchScript
        let portable = try runCommand(script, ["24"], environment: ["BSVI_KERNELS": "portable"])
        #expect(portable.status == 64 && portable.stderr.contains("portable path has no product kernels"), "\(portable.stderr)")
        #expect(portable.stdout.isEmpty, "\(portable.stdout)")
        let unknown = try runCommand(script, ["24"], environment: ["BSVI_KERNELS": "avx1024"])
        #expect(unknown.status == 64 && unknown.stderr.contains("BSVI_KERNELS=avx1024 is not a kernel path"), "\(unknown.stderr)")
    }

    /// This checkout's scripts/kernel-ab.
    static let kernelABScript = repositoryRoot.appendingPathComponent("scripts/kernel-ab").path

    /// git, from PATH as the script finds it.
    static func git(_ arguments: [String], in directory: String) throws -> CommandResult {
        try runCommand("/usr/bin/env", ["git", "-C", directory] + arguments)
    }

    /// The vector kernel paths this CPU can run ("avx2", "avx512"): the scripts' tests run on each
    /// of them and on no other (an AVX2-only CPU has no AVX-512 case to fail).
    static let vectorPathsOfThisCPU = [KernelPath.avx2, .avx512].filter(\.isSupported).map(\.rawValue)

    /// Whether this checkout's kernel headers are HEAD's: an uncommitted table change makes
    /// `kernel-ab HEAD` refuse, as it should, which is not a failure of the script.
    static var kernelHeadersCommitted: Bool {
        (try? git(["diff", "--quiet", "HEAD", "--", "Sources/CKernels/kernel_table.h", "Sources/CKernels/include/CKernels.h"],
                  in: repositoryRoot.path).status) == 0
    }

    /// scripts/kernel-ab builds a revision's kernels and this checkout's into one program that runs
    /// them in turns; against HEAD it must keep compiling and report every part of the work for
    /// both, with a ratio per part and per round (not bounded here: which side wins is noise).
    @Test("scripts/kernel-ab runs HEAD's kernels against this checkout's on each vector path",
          .enabled(if: kernelHeadersCommitted), arguments: vectorPathsOfThisCPU)
    func kernelAB(path: String) throws {
        let r = try runCommand(Self.kernelABScript, ["HEAD", "2"], environment: ["BSVI_KERNELS": path])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n")
        #expect(lines.first?.hasPrefix("\(path) kernels, 2 rounds") == true, "\(r.stdout)")
        // The nine parts and the sum: two positive times and their ratio each.
        let rows = lines.filter { $0.hasPrefix("forward") || $0.hasPrefix("back") || $0.hasPrefix("likelihood")
                                  || $0.hasPrefix("weight") || $0.hasPrefix("sum of") }
        #expect(rows.count == 10, "\(r.stdout)")
        for row in rows {
            let numbers = row.split(separator: " ").suffix(3).compactMap { Double($0) }
            #expect(numbers.count == 3 && numbers.allSatisfy { $0 > 0 }, "\(row)")
        }
        #expect(lines.last?.hasPrefix("per-round ratio: median ") == true && lines.last?.hasSuffix("of 2 rounds") == true,
                "\(r.stdout)")
        #expect(lines.first?.contains("100 rows a pass") == true, "\(r.stdout)")
        // A rank's share of the batch on eight ranks: 13 rows, a single register block on AVX-512.
        let share = try runCommand(Self.kernelABScript, ["HEAD", "1", "bsvi", "13"], environment: ["BSVI_KERNELS": path])
        #expect(share.status == 0 && share.stdout.hasPrefix("\(path) kernels, 1 rounds of bsvi's work, 13 rows a pass"),
                "\(share.stdout)\(share.stderr)")
    }

    /// The other workloads: vae's step (both networks forward, the likelihood, back through every
    /// W, every weight gradient, Adam) in five parts, and the evaluator's decoder passes (eval) in
    /// three, each with their sum and no other workload's parts.
    @Test("scripts/kernel-ab runs vae's step and the evaluator's decoder passes as its other workloads on each vector path",
          .enabled(if: kernelHeadersCommitted), arguments: vectorPathsOfThisCPU, [("vae", 5), ("eval", 3)])
    func kernelABWorkload(path: String, workload: (name: String, parts: Int)) throws {
        let r = try runCommand(Self.kernelABScript, ["HEAD", "2", workload.name], environment: ["BSVI_KERNELS": path])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n")
        #expect(lines.first?.hasPrefix("\(path) kernels, 2 rounds of \(workload.name)'s work") == true, "\(r.stdout)")
        let rows = lines.filter { $0.hasPrefix("\(workload.name) ") || $0.hasPrefix("sum of") }
        #expect(rows.count == workload.parts + 1, "\(r.stdout)")
        for row in rows {
            let numbers = row.split(separator: " ").suffix(3).compactMap { Double($0) }
            #expect(numbers.count == 3 && numbers.allSatisfy { $0 > 0 }, "\(row)")
        }
        let others = ["forward", "vae ", "eval "].filter { $0 != "\(workload.name) " }
        #expect(!lines.contains { line in others.contains { line.hasPrefix($0) } }, "another workload's parts: \(r.stdout)")
    }

    @Test("scripts/kernel-ab refuses an unknown revision, 0 rounds, the portable path, an unknown path, an unknown workload and 0 rows, with exit 64")
    func kernelABRefusals() throws {
        let script = Self.kernelABScript
        let unknown = try runCommand(script, ["no-such-revision", "2"], unsetting: ["BSVI_KERNELS"])
        #expect(unknown.status == 64 && unknown.stderr.contains("'no-such-revision' is not a commit"), "\(unknown.stderr)")
        let zero = try runCommand(script, ["HEAD", "0"], unsetting: ["BSVI_KERNELS"])
        #expect(zero.status == 64 && zero.stderr.contains("ROUNDS must be a positive integer"), "\(zero.stderr)")
        let portable = try runCommand(script, ["HEAD", "2"], environment: ["BSVI_KERNELS": "portable"])
        #expect(portable.status == 64 && portable.stderr.contains("portable path has no product kernels"), "\(portable.stderr)")
        let other = try runCommand(script, ["HEAD", "2"], environment: ["BSVI_KERNELS": "avx1024"])
        #expect(other.status == 64 && other.stderr.contains("BSVI_KERNELS=avx1024 is not a kernel path"), "\(other.stderr)")
        let work = try runCommand(script, ["HEAD", "2", "iwae"], unsetting: ["BSVI_KERNELS"])
        #expect(work.status == 64 && work.stderr.contains("WORK must be bsvi"), "\(work.stderr)")
        let rows = try runCommand(script, ["HEAD", "2", "bsvi", "0"], unsetting: ["BSVI_KERNELS"])
        #expect(rows.status == 64 && rows.stderr.contains("ROWS must be a positive integer, got '0'"), "\(rows.stderr)")
        for r in [unknown, zero, portable, other, work, rows] { #expect(r.stdout.isEmpty, "\(r.stdout)") }
    }

    /// In a repository of its own (the script and the kernel sources, one commit): side A is built
    /// from the revision's sources and side B from the working tree, each shown by a compile error
    /// planted on one side only; a working tree whose table declares another field is refused,
    /// one whose header differs only in a comment is not.
    @Test("scripts/kernel-ab builds side A from the revision and side B from the working tree, and compares tables as declared",
          .enabled(if: KernelPath.avx2.isSupported, "needs a CPU with AVX2"))
    func kernelABSides() throws {
        let dir = try makeTemporaryDirectory(prefix: "kernel-ab")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fm = FileManager.default
        try fm.createDirectory(atPath: dir + "/scripts", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: dir + "/Sources", withIntermediateDirectories: true)
        for file in ["scripts/kernel-ab", "scripts/kernel-ab.c", "Sources/CKernels"] {
            try fm.copyItem(atPath: repositoryRoot.appendingPathComponent(file).path, toPath: dir + "/" + file)
        }
        func git(_ args: [String]) throws {
            let r = try Self.git(args, in: dir)
            try #require(r.status == 0, "git \(args): \(r.stderr)")
        }
        func commit(_ message: String) throws {
            try git(["add", "-A"])
            try git(["-c", "user.name=kernel-ab test", "-c", "user.email=test@example.invalid", "commit", "-q", "-m", message])
        }
        try git(["init", "-q"])
        let isa = dir + "/Sources/CKernels/isa_avx2.c", table = dir + "/Sources/CKernels/kernel_table.h"
        let isaSource = try String(contentsOfFile: isa, encoding: .utf8), tableSource = try String(contentsOfFile: table, encoding: .utf8)
        let script = dir + "/scripts/kernel-ab"
        let environment = ["BSVI_KERNELS": "avx2"]

        // The marker committed, the working tree clean: only side A can have compiled it.
        try (isaSource + "\n#error \"planted in the revision\"\n").write(toFile: isa, atomically: true, encoding: .utf8)
        try commit("marker")
        try isaSource.write(toFile: isa, atomically: true, encoding: .utf8)
        let a = try runCommand(script, ["HEAD", "1"], environment: environment)
        #expect(a.status != 0 && a.status != 64 && a.stderr.contains("planted in the revision"), "\(a.stderr)")
        #expect(a.stdout.isEmpty, "\(a.stdout)")

        // The revision clean, the marker only in the working tree: side B.
        try commit("clean")
        try (isaSource + "\n#error \"planted in the working tree\"\n").write(toFile: isa, atomically: true, encoding: .utf8)
        let b = try runCommand(script, ["HEAD", "1"], environment: environment)
        #expect(b.status != 0 && b.status != 64 && b.stderr.contains("planted in the working tree"), "\(b.stderr)")
        try isaSource.write(toFile: isa, atomically: true, encoding: .utf8)

        // A field added to the table in the working tree: refused before anything is compiled.
        let field = "    bsvi_isa isa;\n"
        try #require(tableSource.contains(field))
        try tableSource.replacingOccurrences(of: field, with: field + "    int added_by_a_test;\n")
            .write(toFile: table, atomically: true, encoding: .utf8)
        let refused = try runCommand(script, ["HEAD", "1"], environment: environment)
        #expect(refused.status == 64 && refused.stderr.contains("cannot share one program"), "\(refused.stderr)")
        #expect(refused.stdout.isEmpty, "\(refused.stdout)")

        // Only a comment added: the same table, so the comparison runs.
        try tableSource.replacingOccurrences(of: field, with: field + "    // a comment added by a test\n")
            .write(toFile: table, atomically: true, encoding: .utf8)
        let comment = try runCommand(script, ["HEAD", "1"], environment: environment)
        #expect(comment.status == 0 && comment.stdout.hasPrefix("avx2 kernels, 1 rounds"), "\(comment.stderr)\n\(comment.stdout)")
    }

    @Test("training on the AVX2 and the AVX-512 path gives bit-identical parameters",
          .enabled(if: KernelPath.avx512.isSupported, "needs a CPU with AVX-512"))
    func vectorPathsTrainIdentically() throws {
        let dir = try makeTemporaryDirectory(prefix: "paths")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeToyDataset(dir + "/toy.h5", width: 40)
        var parameters: [[Float]] = []
        for path in ["avx2", "avx512"] {
            let run = dir + "/" + path
            let r = try runCommand(try binaryPath(), ["train", "--data", dir + "/toy.h5", "--run-dir", run, "--batch-size", "16",
                                                      "--epochs", "3", "--hidden", "24", "--latent", "5", "--k", "3",
                                                      "--no-final-eval"], environment: ["BSVI_KERNELS": path])
            #expect(r.status == 0, "\(r.stderr)")
            parameters.append(try CheckpointFile.read(run + "/final.h5").parameters)
        }
        #expect(parameters[0].count > 0)
        #expect(parameters[0].map(\.bitPattern) == parameters[1].map(\.bitPattern))
    }
}

/// The same binary on older and other CPUs, emulated by qemu-user (Debian's qemu-user): nothing
/// in it was compiled for the machine that built it.
@Suite("One binary on every x86-64 CPU (qemu-user)")
struct EmulatedCPUTests {
    static let qemu = "/usr/bin/qemu-x86_64"

    /// Runs the binary on an emulated `cpu` (nil: natively), without any OPENBLAS_CORETYPE the
    /// machine running the tests exports unless `environment` sets one.
    static func run(cpu: String?, _ arguments: [String], environment: [String: String] = [:]) throws -> CommandResult {
        let unsetting = environment["OPENBLAS_CORETYPE"] == nil ? ["OPENBLAS_CORETYPE"] : []
        if let cpu { return try runCommand(qemu, ["-cpu", cpu, try binaryPath()] + arguments, environment: environment, unsetting: unsetting) }
        return try runCommand(try binaryPath(), arguments, environment: environment, unsetting: unsetting)
    }

    static func train(cpu: String?, data: String, runDir: String, environment: [String: String] = [:]) throws -> [Float] {
        let r = try run(cpu: cpu, ["train", "--data", data, "--run-dir", runDir, "--batch-size", "16", "--epochs", "2",
                                   "--hidden", "24", "--latent", "5", "--k", "3", "--no-final-eval"], environment: environment)
        #expect(r.status == 0 && !r.signaled, "\(r.stderr.suffix(400))")
        return try CheckpointFile.read(runDir + "/final.h5").parameters
    }

    @Test("family and model from CPUID's extended fields: Intel family 6 models 44 and 60, AMD families 21, 23 and 25, AMD model 49")
    func familyAndModelOfOtherCPUs() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.qemu), "qemu-user is not installed")
        for (cpu, family, model) in [("Westmere", 6, 44), ("Haswell", 6, 60), ("Opteron_G5", 21, 2), ("EPYC", 23, 1), ("EPYC-Rome", 23, 49),
                                    ("EPYC-Milan", 25, 1)] {
            let info = try parseJSONLine(try Self.run(cpu: cpu, ["cpu", "--json"]).stdout)
            #expect(info["cpu_family"] as? Int == family && info["cpu_model_number"] as? Int == model, "\(cpu): \(info)")
        }
    }

    @Test("a CPU without AVX (Westmere) runs the portable kernels and trains; an AVX2-only CPU (Haswell) runs the AVX2 kernels")
    func olderCPUs() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.qemu), "qemu-user is not installed")
        let westmere = try parseJSONLine(try Self.run(cpu: "Westmere", ["cpu", "--json"]).stdout)
        #expect(westmere["kernel_isa"] as? String == "portable")
        #expect((westmere["kernel_paths"] as? [String]) == ["portable"])
        #expect(OpenBLASCore.tier(ofCore: try #require(westmere["blas_core"] as? String)) == .sse)
        let haswell = try parseJSONLine(try Self.run(cpu: "Haswell", ["cpu", "--json"]).stdout)
        #expect(haswell["kernel_isa"] as? String == "avx2")
        // Both vector variants are compiled with BMI2: a CPU (a VM) that hides it gets the portable path.
        let withoutBMI2 = try parseJSONLine(try Self.run(cpu: "Haswell,-bmi2", ["cpu", "--json"]).stdout)
        #expect(withoutBMI2["kernel_isa"] as? String == "portable")
        // Forcing a path the emulated CPU lacks is refused, not a SIGILL.
        let refused = try Self.run(cpu: "Westmere", ["cpu"], environment: ["BSVI_KERNELS": "avx2"])
        #expect(refused.status == 64 && !refused.signaled && refused.stderr.contains("cannot run the avx2 kernels"), "\(refused.stderr)")

        let dir = try makeTemporaryDirectory(prefix: "qemu")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeToyDataset(dir + "/toy.h5", width: 40)
        let portable = try Self.train(cpu: "Westmere", data: dir + "/toy.h5", runDir: dir + "/westmere")
        #expect(portable.allSatisfy(\.isFinite) && portable.count > 0)
        // A user's OPENBLAS_CORETYPE that this CPU cannot run is dropped with a warning instead of
        // dying with SIGILL at the portable path's first product. (The program then re-executes
        // itself, and qemu-user does not follow an exec: what runs next is native, so the
        // decision, its message and the variable's removal are checked here; OpenBLASCoreTests
        // covers the rest.)
        let user = try Self.run(cpu: "Westmere", ["cpu", "--json"], environment: ["OPENBLAS_CORETYPE": "Haswell"])
        #expect(user.status == 0 && !user.signaled, "\(user.stderr.suffix(400))")
        #expect(user.stderr.contains("OPENBLAS_CORETYPE=Haswell") && user.stderr.contains("built for AVX2")
                    && user.stderr.contains("Unset OPENBLAS_CORETYPE"), "\(user.stderr)")
        // The restarted process no longer has the user's variable.
        #expect(try parseJSONLine(user.stdout)["blas_core_chooser"] as? String != "OPENBLAS_CORETYPE", "\(user.stdout)")
        // A training step never calls BLAS on the vector paths, so an emulated Haswell (AVX2, its own
        // OpenBLAS core) trains bit for bit like this machine's widest path.
        if KernelPath.best != .portable {
            let emulated = try Self.train(cpu: "Haswell", data: dir + "/toy.h5", runDir: dir + "/haswell")
            let native = try Self.train(cpu: nil, data: dir + "/toy.h5", runDir: dir + "/native")
            #expect(emulated.map(\.bitPattern) == native.map(\.bitPattern))
        }
    }

    /// The OpenBLAS correction re-executes the process; a stop signal sent while it did (the new
    /// image loading, before its main) used to kill it: every one of six trials sent right after
    /// the warning died of SIGUSR1. The signals are now held from main on and kept pending
    /// across the exec.
    @Test("a stop signal while the process re-executes itself for OpenBLAS stops the run gracefully")
    func stopSignalDuringReexecution() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.qemu), "qemu-user is not installed")
        let dir = try makeTemporaryDirectory(prefix: "qemustop")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeToyDataset(dir + "/toy.h5")
        for trial in 0..<3 {
            let command = try BackgroundCommand(Self.qemu, ["-cpu", "Westmere", try binaryPath(), "train", "--data", dir + "/toy.h5",
                                                            "--run-dir", dir + "/run\(trial)", "--batch-size", "16", "--max-steps", "100000", "--no-final-eval"] + tinyModel,
                                                environment: ["OPENBLAS_CORETYPE": "Haswell"])
            // Written just before the exec; polled every 0.5 ms (pollUntil's 20 ms would often
            // land after the new image began to hold the signals, and test nothing).
            let deadline = Date().addingTimeInterval(60)
            while !command.stderr.contains("Unset OPENBLAS_CORETYPE") && command.process.isRunning && Date() < deadline { usleep(500) }
            try #require(command.stderr.contains("Unset OPENBLAS_CORETYPE"), "\(command.stderr)")
            kill(command.process.processIdentifier, SIGUSR1)
            #expect(command.wait(timeout: 60), "trial \(trial): the stop was not seen")
            let ended = command.process.terminationReason == .uncaughtSignal ? "killed by signal" : "exit"
            #expect(command.process.terminationReason == .exit && command.process.terminationStatus == 0,
                    "trial \(trial): \(ended) \(command.process.terminationStatus)\n\(command.stderr.suffix(400))")
            #expect(command.stdout.contains("stop requested"), "trial \(trial): \(command.stdout.suffix(400))")
        }
    }
}
