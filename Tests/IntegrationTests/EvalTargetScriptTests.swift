import Foundation
import Testing

/// scripts/eval-target: the runs it makes (precisions alternated round by round, under mpirun, each
/// after a peak reading) and the summary it prints from them, checked with a stand-in for
/// `bsvi-dist` whose numbers name the run; then once with the real binary on a tiny checkpoint.
@Suite("scripts/eval-target")
struct EvalTargetScriptTests {
    static let script = repositoryRoot.appendingPathComponent("scripts/eval-target").path

    /// The stand-in's `cpu --json` lists STAND_IN_PRECISIONS (default highest, high, medium) and
    /// peaks that name the precision run next. Its `eval` appends "PRECISION RANKS ARGUMENTS" to
    /// `calls` on rank 0 and prints there, for the n-th run of that precision, seconds 90 + 10n
    /// (highest) or 50 + 20n (high and medium), and log p̂ −240.1 (highest) or −240.2 (high; −240.3
    /// from its third run on). STAND_IN_FAIL=PRECISION makes that run fail.
    static func writeStandIn(in dir: String) throws -> String {
        let path = dir + "/bsvi-dist-stand-in"
        try """
        #!/usr/bin/env bash
        precisions=${STAND_IN_PRECISIONS:-\\"highest\\", \\"high\\", \\"medium\\"}
        if [[ $1 == cpu ]]; then
          echo "{\\"kernel_isa\\": \\"avx512\\", \\"fma_peak_gflops\\": {\\"avx512\\": 150}, \\"amx_bf16_peak_gflops\\": 2000, \\"matmul_precisions\\": [$precisions]}"
          exit 0
        fi
        [[ ${OMPI_COMM_WORLD_RANK:-0} == 0 ]] || exit 0
        precision=highest
        for ((i = 1; i <= $#; i++)); do [[ ${!i} == --matmul-precision ]] && { j=$((i + 1)); precision=${!j}; }; done
        if [[ $precision == "${STAND_IN_FAIL:-}" ]]; then echo "eval: planted failure" >&2; exit 70; fi
        echo "$precision ${OMPI_COMM_WORLD_SIZE:-1} $*" >> "\(dir)/calls"
        n=$(grep -c "^$precision " "\(dir)/calls")
        case $precision in
          highest) seconds=$((90 + 10 * n)) ll=-240.1 ;;
          *) seconds=$((50 + 20 * n)); if ((n >= 3)); then ll=-240.3; else ll=-240.2; fi ;;
        esac
        echo "evaluating…"
        echo "{\\"seconds\\": $seconds, \\"log_likelihood\\": $ll, \\"examples\\": 10000, \\"split\\": \\"test\\", \\"samples\\": 5000}"

        """.write(toFile: path, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)
        return path
    }

    @Test("three rounds: the CPU's precisions alternated under mpirun -np 2, eval's options passed on; medians, ranges, runs within the limit and whether the bits agree")
    func runsAndReport() throws {
        let dir = try makeTemporaryDirectory(prefix: "eval-target")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let checkpoint = dir + "/final.h5"
        try Data("stand-in checkpoint".utf8).write(to: URL(fileURLWithPath: checkpoint))
        let r = try runCommand(Self.script, ["--rounds", "3", checkpoint, "--data", dir + "/data.h5", "--split", "test"],
                               environment: ["BSVI_DIST_BINARY": try Self.writeStandIn(in: dir)])
        #expect(r.status == 0, "\(r.stderr)")
        let calls = try String(contentsOfFile: dir + "/calls", encoding: .utf8).split(separator: "\n")
        // highest and high (the CPU runs medium too, but the default leaves it out), the order
        // swapped every other round; two ranks; the user's options after the script's K = 5000.
        #expect(calls.map { $0.split(separator: " ").prefix(2).joined(separator: " ") }
                == ["highest 2", "high 2", "high 2", "highest 2", "highest 2", "high 2"], "\(calls)")
        for call in calls {
            #expect(call.contains("eval \(checkpoint) --samples 5000 --data \(dir)/data.h5 --split test --matmul-precision ")
                    && call.hasSuffix(" --json"), "\(call)")
        }
        let lines = r.stdout.split(separator: "\n")
        #expect(lines.count == 9, "\(r.stdout)")
        #expect(lines[0].hasPrefix("round 1 ") && lines[0].contains("highest    100.0 s  log p̂ -240.1")
                && lines[0].hasSuffix("(before: FMA 150, tiles 2000 GFLOP/s)"), "\(lines[0])")
        #expect(lines[5].hasPrefix("round 3 ") && lines[5].contains("high       110.0 s  log p̂ -240.3"), "\(lines[5])")
        #expect(Array(lines.suffix(3)) == [
            "2 rank(s), 10000 examples of test, K = 5000:",
            "highest  median 110.0 s (100.0–120.0), ≤ 100 s in 1 of 3 runs; the same log p̂ bits in every run",
            "high     median 90.0 s (70.0–110.0), ≤ 100 s in 2 of 3 runs; 2 different log p̂ values",
        ], "\(r.stdout)")
    }

    @Test("--precisions, --ranks and --limit-seconds are followed; a CPU without tiles runs float32 and medium (on AVX512_BF16), or float32 alone")
    func options() throws {
        let dir = try makeTemporaryDirectory(prefix: "eval-target")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let checkpoint = dir + "/final.h5"
        try Data("stand-in checkpoint".utf8).write(to: URL(fileURLWithPath: checkpoint))
        let standIn = try Self.writeStandIn(in: dir)
        let chosen = try runCommand(Self.script, ["--rounds", "1", "--ranks", "1", "--precisions", "medium", "--limit-seconds", "60",
                                                  checkpoint], environment: ["BSVI_DIST_BINARY": standIn])
        #expect(chosen.status == 0, "\(chosen.stderr)")
        #expect(chosen.stdout.hasSuffix("""
            1 rank(s), 10000 examples of test, K = 5000:
            medium   median 70.0 s (70.0–70.0), ≤ 60 s in 0 of 1 runs; the same log p̂ bits in every run

            """), "\(chosen.stdout)")
        let noTiles = try runCommand(Self.script, ["--rounds", "2", checkpoint],
                                     environment: ["BSVI_DIST_BINARY": standIn, "STAND_IN_PRECISIONS": "\"highest\""])
        #expect(noTiles.status == 0 && noTiles.stdout.contains("highest  median ") && !noTiles.stdout.contains("high     median"),
                "\(noTiles.stdout)\(noTiles.stderr)")
        let vectorsOnly = try runCommand(Self.script, ["--rounds", "1", checkpoint],
                                         environment: ["BSVI_DIST_BINARY": standIn, "STAND_IN_PRECISIONS": "\"highest\", \"medium\""])
        #expect(vectorsOnly.status == 0 && vectorsOnly.stdout.contains("medium   median "), "\(vectorsOnly.stdout)\(vectorsOnly.stderr)")
        let calls = try String(contentsOfFile: dir + "/calls", encoding: .utf8).split(separator: "\n")
        #expect(calls.map { String($0.split(separator: " ")[0]) } == ["medium", "highest", "highest", "highest", "medium"], "\(calls)")
        #expect(calls[0].hasPrefix("medium 1 "), "\(calls[0])")
    }

    @Test("a failing eval stops the script with its message (1); a missing checkpoint (66), a precision the CPU lacks and bad arguments (64) are refused before any run")
    func failuresAndRefusals() throws {
        let dir = try makeTemporaryDirectory(prefix: "eval-target")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let checkpoint = dir + "/final.h5"
        try Data("stand-in checkpoint".utf8).write(to: URL(fileURLWithPath: checkpoint))
        let environment = ["BSVI_DIST_BINARY": try Self.writeStandIn(in: dir)]
        let failed = try runCommand(Self.script, ["--rounds", "2", checkpoint], environment: environment.merging(["STAND_IN_FAIL": "high"]) { $1 })
        #expect(failed.status == 1 && failed.stderr.contains("eval --matmul-precision high failed in round 1")
                && failed.stderr.contains("planted failure"), "\(failed.stderr)")
        let refusals: [([String], Int32, String)] = [
            ([dir + "/missing.h5"], 66, "checkpoint \(dir)/missing.h5 not found"),
            (["--precisions", "highest,low", checkpoint], 64, "precision 'low' is not one this CPU runs (it runs: highest,high,medium)"),
            (["--rounds", "0", checkpoint], 64, "--rounds must be a positive integer, got '0'"),
            (["--ranks", "two", checkpoint], 64, "--ranks must be a positive integer, got 'two'"),
            (["--limit-seconds", "soon", checkpoint], 64, "--limit-seconds must be a number of seconds, got 'soon'"),
            (["--samples", "10", checkpoint], 64, "unknown option '--samples' before the checkpoint"),
            ([], 64, "no checkpoint given"),
        ]
        for (arguments, status, message) in refusals {
            let r = try runCommand(Self.script, arguments, environment: environment)
            #expect(r.status == status && r.stderr.contains(message) && r.stdout.isEmpty, "\(arguments): \(r.status) \(r.stderr)")
        }
        // Only the failing run's precision got as far as eval: the refusals made no call.
        let calls = try String(contentsOfFile: dir + "/calls", encoding: .utf8).split(separator: "\n")
        #expect(calls.map { String($0.split(separator: " ")[0]) } == ["highest"], "\(calls)")
    }

    @Test("with the real binary: one round on a tiny checkpoint gives its run line and summary")
    func realBinary() throws {
        let dir = try makeTemporaryDirectory(prefix: "eval-target")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = dir + "/toy.h5"
        try writeToyDataset(data)
        let checkpoint = try trainTinyCheckpoint(data: data, runDir: dir + "/run", seed: 3, epochs: 1)
        let r = try runCommand(Self.script, ["--rounds", "1", "--precisions", "highest", checkpoint, "--data", data, "--samples", "20"],
                               environment: ["BSVI_DIST_BINARY": try binaryPath()])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n")
        #expect(lines.count == 3 && lines[0].hasPrefix("round 1 ") && lines[0].contains(" highest "), "\(r.stdout)")
        #expect(lines[1] == "2 rank(s), 20 examples of test, K = 20:", "\(r.stdout)")
        #expect(lines[2].hasPrefix("highest  median ") && lines[2].hasSuffix("≤ 100 s in 1 of 1 runs; the same log p̂ bits in every run"),
                "\(r.stdout)")
    }
}
