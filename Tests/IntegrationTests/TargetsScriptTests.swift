import Foundation
import Testing

/// scripts/targets: the runs it makes (methods rotated, kernel paths alternated, one core) and the
/// numbers it prints from them, checked with a stand-in for `bsvi-dist` whose values name the run;
/// then once with the real binary.
@Suite("scripts/targets", .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/taskset"), "needs taskset"))
struct TargetsScriptTests {
    static let script = repositoryRoot.appendingPathComponent("scripts/targets").path

    /// The stand-in's `cpu` lists STAND_IN_PATHS (default: portable, avx2, avx512). Its `bench`
    /// appends "NAME CORES" to `calls` (NAME: the method, BSVI_KERNELS when set, or interleaved
    /// for --methods; CORES: the CPUs it may run on). For --methods it prints a comparison of
    /// --rounds rounds with svi at least as close as bsvi in all but one (+1.5 points) and vae in 2
    /// (−0.25). Otherwise it prints, for the n-th run of that name, its own ceiling 0.70 + 0.02n
    /// for bsvi, 0.80 for svi and 0.75 for vae (so vae is ahead of bsvi in rounds 1 and 2 only),
    /// peak fraction 0.05 lower, and 1000n + 1, 2 or 3 examples/s; avx2 and avx512 runs have
    /// peak fractions 0.60 + 0.01n and 0.65 + 0.01n. STAND_IN_FAIL=NAME makes that run fail.
    static func writeStandIn(in dir: String) throws -> String {
        let path = dir + "/bsvi-dist-stand-in"
        try """
        #!/usr/bin/env bash
        paths=${STAND_IN_PATHS:-portable, avx2, avx512}
        if [[ $1 == cpu ]]; then echo "kernel paths    $paths (in use: avx512; set BSVI_KERNELS to choose)"; exit 0; fi
        method= methods= rounds=
        while [[ $# -gt 0 ]]; do
          case $1 in --method) method=$2; shift 2 ;; --methods) methods=$2; shift 2 ;; --rounds) rounds=$2; shift 2 ;; *) shift ;; esac
        done
        name=${BSVI_KERNELS:-$method}
        [[ -z $methods ]] || name=interleaved
        if [[ $name == "${STAND_IN_FAIL:-}" ]]; then echo "bench: planted failure" >&2; exit 70; fi
        echo "$name $(awk '/^Cpus_allowed_list/ {print $2}' /proc/self/status)" >> "\(dir)/calls"
        if [[ -n $methods ]]; then
          svi="{\\"method\\": \\"svi\\", \\"k\\": 20, \\"rounds_at_least_as_close\\": $((rounds - 1)), \\"median_difference_points\\": 1.5}"
          vae="{\\"method\\": \\"vae\\", \\"k\\": 20, \\"rounds_at_least_as_close\\": 2, \\"median_difference_points\\": -0.25}"
          echo "{\\"rounds\\": $rounds, \\"methods\\": [{\\"method\\": \\"bsvi\\", \\"k\\": 20}, $svi, $vae]}"
          exit 0
        fi
        n=$(grep -c "^$name " "\(dir)/calls")
        case $name in
          bsvi) ceiling=$((70 + 2 * n)) code=1 ;; svi) ceiling=80 code=2 ;; vae) ceiling=75 code=3 ;;
          avx2) ceiling=$((65 + n)) code=1 ;; avx512) ceiling=$((70 + n)) code=1 ;;
        esac
        echo "bench log line"
        echo "{\\"cpu_model\\": \\"Test CPU\\", \\"cpu_family\\": 6, \\"cpu_model_number\\": 143, \\"kernel_isa\\": \\"${BSVI_KERNELS:-avx512}\\", \\
        \\"blas_core\\": \\"Haswell\\", \\"fma_peak_gflops\\": 100, \\"fraction_of_ceiling\\": 0.$ceiling, \\
        \\"peak_fraction\\": 0.$((ceiling - 5)), \\"examples_per_s\\": $((1000 * n + code))}"

        """.write(toFile: path, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)
        return path
    }

    @Test("three rounds: methods rotated, paths alternated, all on one core; medians, ranges, rounds ahead of bsvi and the median difference a round")
    func runsAndReport() throws {
        let dir = try makeTemporaryDirectory(prefix: "targets")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try runCommand(Self.script, ["--rounds", "3", "--keep", dir + "/runs"],
                               environment: ["BSVI_DIST_BINARY": try Self.writeStandIn(in: dir)], unsetting: ["BSVI_KERNELS"])
        #expect(r.status == 0, "\(r.stderr)")
        let calls = try String(contentsOfFile: dir + "/calls", encoding: .utf8).split(separator: "\n").map { $0.split(separator: " ") }
        #expect(calls.map { String($0[0]) } == ["bsvi", "svi", "vae", "svi", "vae", "bsvi", "vae", "bsvi", "svi", "interleaved",
                                                "avx2", "avx512", "avx512", "avx2", "avx2", "avx512"], "\(calls)")
        // Every run pinned to the same single core.
        let cores = Set(calls.map { String($0[1]) })
        #expect(cores.count == 1 && Int(cores.first!) != nil, "\(cores)")
        let core = cores.first!
        let kept = try String(contentsOfFile: dir + "/runs", encoding: .utf8).split(separator: "\n")
        #expect(kept.count == 16 && kept[0].hasPrefix("1 bsvi {") && kept[9].hasPrefix("0 interleaved {") && kept[15].hasPrefix("3 avx512 {"),
                "\(kept)")
        #expect(r.stdout == """
            Test CPU (family 6, model 143): kernel path avx512, OpenBLAS Haswell, FMA peak 100.0 GFLOP/s; 3 rounds on core \(core)
            bsvi k=20  69.0 % (67.0–71.0) of peak, 74.0 % (72.0–76.0) of its ceiling, 2001 examples/s
            svi k=20   75.0 % (75.0–75.0) of peak, 80.0 % (80.0–80.0) of its ceiling, 2002 examples/s; at least as close to its ceiling as bsvi in 3 of 3 rounds, +6.00 points a round (median)
            vae        70.0 % (70.0–70.0) of peak, 75.0 % (75.0–75.0) of its ceiling, 2003 examples/s; at least as close to its ceiling as bsvi in 2 of 3 rounds, +1.00 points a round (median)
            interleaved in one process, 15 rounds: svi k=20 at least as close to its ceiling as bsvi in 14 of them, +1.50 points a round (median); vae at least as close to its ceiling as bsvi in 2 of them, -0.25 points a round (median)
            bsvi k=20 on the avx2 path 62.0 % (61.0–63.0) of peak, on avx512 67.0 % (66.0–68.0); 3 rounds alternated

            """, "\(r.stdout)")
    }

    @Test("a CPU without AVX-512 runs no path comparison; a failing bench stops the script with its message; bad arguments are refused")
    func pathsFailuresAndRefusals() throws {
        let dir = try makeTemporaryDirectory(prefix: "targets")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let standIn = try Self.writeStandIn(in: dir)
        let avx2Only = try runCommand(Self.script, ["--rounds", "1"],
                                      environment: ["BSVI_DIST_BINARY": standIn, "STAND_IN_PATHS": "portable, avx2"], unsetting: ["BSVI_KERNELS"])
        #expect(avx2Only.status == 0 && avx2Only.stdout.split(separator: "\n").count == 5
                && !avx2Only.stdout.contains("avx2 path"), "\(avx2Only.stdout)\(avx2Only.stderr)")

        let failed = try runCommand(Self.script, ["--rounds", "2"], environment: ["BSVI_DIST_BINARY": standIn, "STAND_IN_FAIL": "vae"],
                                unsetting: ["BSVI_KERNELS"])
        #expect(failed.status == 1 && failed.stdout.isEmpty, "\(failed.status) \(failed.stdout)")
        #expect(failed.stderr.contains("targets: bench --method vae failed in round 1") && failed.stderr.contains("planted failure"),
                "\(failed.stderr)")
        let interleavedFailed = try runCommand(Self.script, ["--rounds", "1"],
                                               environment: ["BSVI_DIST_BINARY": standIn, "STAND_IN_FAIL": "interleaved"], unsetting: ["BSVI_KERNELS"])
        #expect(interleavedFailed.status == 1 && interleavedFailed.stdout.isEmpty
                && interleavedFailed.stderr.contains("targets: bench --methods failed:") && interleavedFailed.stderr.contains("planted failure"),
                "\(interleavedFailed.status) \(interleavedFailed.stderr)")

        for (arguments, message) in [(["--rounds", "0"], "--rounds must be a positive integer"),
                                     (["--rounds"], "--rounds must be a positive integer"),
                                     (["--keep"], "--keep needs a file"), (["--steps", "5"], "unknown argument '--steps'")] {
            let refused = try runCommand(Self.script, arguments, environment: ["BSVI_DIST_BINARY": standIn])
            #expect(refused.status == 64 && refused.stderr.contains(message) && refused.stdout.isEmpty,
                    "\(arguments): \(refused.status) \(refused.stderr)")
        }
        let missing = try runCommand(Self.script, [], environment: ["BSVI_DIST_BINARY": dir + "/absent"])
        #expect(missing.status == 1 && missing.stderr.contains("absent not built"), "\(missing.stderr)")
    }

    /// The real binary: its JSON still has every field the report reads.
    @Test("one round with the real bench: every method and path reported with positive numbers")
    func realBench() throws {
        let r = try runCommand(Self.script, ["--rounds", "1"], environment: ["BSVI_DIST_BINARY": try binaryPath()])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first?.contains("FMA peak") == true && lines.first?.contains("1 round on core") == true, "\(r.stdout)")
        for prefix in ["bsvi k=20 ", "svi k=20 ", "vae "] {
            let line = try #require(lines.first { $0.hasPrefix(prefix) }, "\(r.stdout)")
            let examples = try #require(Double(line.components(separatedBy: " examples/s")[0].split(separator: " ").last ?? ""), "\(line)")
            #expect(examples > 0 && line.contains("of its ceiling"), "\(line)")
        }
        // The interleaved run: 5 rounds, svi and vae each against bsvi.
        let interleaved = try #require(lines.first { $0.hasPrefix("interleaved in one process, 5 rounds: svi k=20 at least as close") },
                                       "\(r.stdout)")
        #expect(interleaved.contains("; vae at least as close to its ceiling as bsvi in "), "\(interleaved)")
    }
}
