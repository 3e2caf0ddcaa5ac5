import Foundation
import Testing

/// scripts/scaling-benchmark: which run feeds which number, checked with a stand-in for
/// `bsvi-dist bench` whose examples/s encode the run (batch, MPI world size, core, and whether
/// the other half-batch run was running at the same time), then once with the real binary.
@Suite("scripts/scaling-benchmark", .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/taskset")
                                             && ProcessInfo.processInfo.activeProcessorCount >= 2, "needs taskset and two cores"))
struct ScalingBenchmarkScriptTests {
    static let script = repositoryRoot.appendingPathComponent("scripts/scaling-benchmark").path

    /// The stand-in prints examples/s = 1000 × batch + 100 × world size (0 without MPI) + 10 × its
    /// core (9 if not bound to one) + 1 if the other half-batch run was running beside it, and a
    /// 10 ms step of which world size × 1 ms is the lockstep wait and world size × 0.25 ms the
    /// exchange (so only the two-rank run's give 20 % and 5 %). A run
    /// under mpirun appends how Open MPI's waiting ranks wait (OMPI_MCA_mpi_yield_when_idle, or
    /// `unset`) to `mpi-yield`. A run without MPI leaves its pid in `running.<core>` while it runs
    /// (until it has seen the other's, or for 5 s, then 1 s more; STAND_IN_HOLD seconds more when it
    /// saw it).
    static func writeStandIn(in dir: String) throws -> String {
        let path = dir + "/bench-stand-in"
        try """
        #!/usr/bin/env bash
        batch=0
        while [[ $# -gt 0 ]]; do
          case $1 in --batch-size) batch=$2; shift 2 ;; --batch-size=*) batch=${1#*=}; shift ;; *) shift ;; esac
        done
        [[ ${OMPI_COMM_WORLD_RANK:-0} == 0 ]] || exit 0
        world=${OMPI_COMM_WORLD_SIZE:-0}
        (( world == 0 )) || echo "${OMPI_MCA_mpi_yield_when_idle-unset}" >> "\(dir)/mpi-yield"
        core=$(awk '/^Cpus_allowed_list/ {print $2}' /proc/self/status)
        [[ $core =~ ^[0-9]+$ ]] || core=9
        # Its sleeps end with it (the script's SIGTERM would leave a foreground sleep running).
        trap 'kill $(jobs -p) 2> /dev/null; exit 143' TERM INT
        nap() { sleep "$1" & wait $!; }
        beside=0
        if [[ $world == 0 ]]; then
          echo $$ > "\(dir)/running.$core"
          # Up to 5 s for the other's marker (a loaded machine can take seconds to start it),
          # then 1 s more, so that the other, which looks as soon as it starts, sees this one.
          for ((i = 0; i < 50 && !beside; i++)); do
            for f in "\(dir)"/running.*; do [[ -e $f && $f != "\(dir)/running.$core" ]] && beside=1; done
            (( beside )) || nap 0.1
          done
          nap 1
          (( beside )) && nap ${STAND_IN_HOLD:-0}
          rm -f "\(dir)/running.$core"
        fi
        echo "{\\"examples_per_s\\": $((batch * 1000 + world * 100 + core * 10 + beside)), \\"ms_per_step\\": 10,"
        echo " \\"lockstep_wait_ms_per_step\\": $world, \\"exchange_ms_per_step\\": 0.$((world * 25))}"

        """.write(toFile: path, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)
        return path
    }

    @Test("--decompose: one rank, half alone on core 0, both halves at once on cores 0 and 1, two ranks, each in its place; medians and refusals")
    func decompositionWiring() throws {
        let dir = try makeTemporaryDirectory(prefix: "scaling")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let environment = ["BSVI_DIST_BINARY": try Self.writeStandIn(in: dir)]
        let r = try runCommand(Self.script, ["--repeats", "2", "--decompose", "--method", "vae", "--batch-size=10"],
                               environment: environment)
        #expect(r.status == 0, "\(r.stderr)")
        // one: batch 10, 1 rank on core 0 → 10100; half alone: 5 on core 0 → 5000; both halves:
        // 5001 (core 0, saw core 1) + 5011 (core 1, saw core 0) = 10012; two ranks: 10200.
        let expected = "1 rank 10100 examples/s, 2 ranks 10200 examples/s, speedup 1.010; half batch alone 5000 (×0.495), "
            + "both halves at once 10012 (concurrency ×1.001), coupling ×1.019; 2 ranks step 10.000 ms: lockstep wait 20.0 %, exchange 5.0 %"
        let lines = r.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 5, "\(r.stdout)")
        for round in 1...2 { #expect(lines.contains("pair \(round): " + expected), "\(r.stdout)") }
        #expect(lines.contains("median speedup 1.010 (min 1.010, max 1.010) over 2 pairs"), "\(r.stdout)")
        // 1.0099 × 10 / (10 − 2) and × 10 / (10 − 2 − 0.5).
        #expect(lines.contains("median of the 2 ranks step: lockstep wait 20.0 %, exchange 5.0 %; median speedup without the wait 1.262, "
                               + "without the wait and the exchange 1.347"), "\(r.stdout)")
        #expect(lines.contains("median factors: 2 × half batch 0.495 × concurrency 1.001 × coupling 1.019 (their product 1.010)"),
                "\(r.stdout)")

        for (arguments, message) in [(["--decompose", "--weak"], "drop --weak"),
                                     (["--decompose", "--batch-size", "9"], "even global --batch-size"),
                                     (["--decompose", "--batch-size", "010"], "even global --batch-size"),
                                     (["--repeats"], "--repeats must be a positive integer")] {
            let refused = try runCommand(Self.script, arguments, environment: environment)
            #expect(refused.status == 64 && refused.stderr.contains(message) && refused.stdout.isEmpty,
                    "\(arguments): \(refused.status) \(refused.stderr)")
        }
    }

    @Test("without --decompose: one rank against two at the global batch; --weak: 100 examples per rank")
    func plainAndWeakScaling() throws {
        let dir = try makeTemporaryDirectory(prefix: "scaling")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let environment = ["BSVI_DIST_BINARY": try Self.writeStandIn(in: dir)]
        let strong = try runCommand(Self.script, ["--repeats", "1", "--batch-size", "30"], environment: environment)
        #expect(strong.status == 0, "\(strong.stderr)")
        #expect(strong.stdout.hasPrefix("pair 1: 1 rank 30100 examples/s, 2 ranks 30200 examples/s, speedup 1.003; 2 ranks step 10.000 ms: lockstep wait 20.0 %, exchange 5.0 %\n"),
                "\(strong.stdout)")
        let weak = try runCommand(Self.script, ["--repeats", "1", "--weak"], environment: environment)
        #expect(weak.status == 0, "\(weak.stderr)")
        #expect(weak.stdout.hasPrefix("pair 1: 1 rank 100100 examples/s, 2 ranks 200200 examples/s, speedup 2.000; 2 ranks step 10.000 ms: lockstep wait 20.0 %, exchange 5.0 %\n"),
                "\(weak.stdout)")
    }

    @Test("the MPI runs spin like a user's one-rank-per-core mpirun, unless the caller chose how waiting ranks wait")
    func waitingRanksSpinUnlessChosen() throws {
        for (chosen, expected) in [(nil, "unset"), ("1", "1"), ("0", "0")] {
            let dir = try makeTemporaryDirectory(prefix: "scaling")
            defer { try? FileManager.default.removeItem(atPath: dir) }
            var environment = ["BSVI_DIST_BINARY": try Self.writeStandIn(in: dir)]
            environment["OMPI_MCA_mpi_yield_when_idle"] = chosen
            let r = try runCommand(Self.script, ["--repeats", "1"], environment: environment,
                                   unsetting: chosen == nil ? ["OMPI_MCA_mpi_yield_when_idle"] : [])
            #expect(r.status == 0, "\(r.stderr)")
            let seen = try String(contentsOfFile: dir + "/mpi-yield", encoding: .utf8)
            #expect(seen == "\(expected)\n\(expected)\n", "caller's choice \(chosen ?? "none"): the 1- and 2-rank runs saw \(seen)")
        }
    }

    @Test("interrupted while both halves run, the script leaves neither behind")
    func interruptStopsTheHalves() throws {
        let dir = try makeTemporaryDirectory(prefix: "scaling")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // The simultaneous halves hold for a minute: any still alive 10 s after the script ended
        // was left behind. The script is then in `wait`, which a trapped signal interrupts.
        let run = try BackgroundCommand(Self.script, ["--repeats", "1", "--decompose"],
                                        environment: ["BSVI_DIST_BINARY": try Self.writeStandIn(in: dir), "STAND_IN_HOLD": "60"])
        let markers = [dir + "/running.0", dir + "/running.1"]
        // The alone run writes running.0 too, so wait until both cores' markers exist at once.
        #expect(pollUntil(timeout: 60) { markers.allSatisfy { FileManager.default.fileExists(atPath: $0) } }, "\(run.stderr)")
        let pids = markers.compactMap { try? String(contentsOfFile: $0, encoding: .utf8) }
            .compactMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        #expect(pids.count == 2)
        kill(run.process.processIdentifier, SIGINT)
        #expect(run.wait(timeout: 30) && run.process.terminationStatus != 0)
        for pid in pids { #expect(pollUntil(timeout: 10) { !Self.isRunning(pid) }, "half-batch run \(pid) outlived the script") }
    }

    /// Whether `pid` is a live process (a zombie waiting to be reaped counts as ended).
    static func isRunning(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let afterName = stat.range(of: ") ", options: .backwards) else { return false }
        return stat[afterName.upperBound...].first != "Z"
    }

    /// The real binary: its JSON still has what the script reads, and the printed factors are the
    /// ratios of the printed rates.
    @Test("--decompose with the real bench: every rate positive, every factor the ratio of the rates it names")
    func realBench() throws {
        let r = try runCommand(Self.script, ["--repeats", "1", "--decompose", "--method", "vae", "--hidden", "16", "--latent", "4",
                                             "--batch-size", "10", "--data", "/nonexistent/bench.h5"],
                               environment: ["BSVI_DIST_BINARY": try binaryPath(), "BENCH_STEPS": "2"])
        #expect(r.status == 0, "\(r.stderr)")
        let round = try #require(r.stdout.split(separator: "\n").first { $0.hasPrefix("pair 1:") }.map(String.init), "\(r.stdout)")
        func number(after label: String) throws -> Double {
            let at = try #require(round.range(of: label), "'\(label)' in \(round)")
            return try #require(Double(round[at.upperBound...].prefix { $0.isNumber || $0 == "." }), "\(round)")
        }
        let one = try number(after: "1 rank "), two = try number(after: "2 ranks "), alone = try number(after: "half batch alone ")
        let pair = try number(after: "both halves at once ")
        #expect(one > 0 && two > 0 && alone > 0 && pair > 0, "\(round)")
        // Rates are printed rounded to whole examples/s, ratios to 3 decimals.
        #expect(abs(try number(after: "speedup ") - two / one) <= 1e-3 + 1 / one)
        #expect(abs(try number(after: " (×") - alone / one) <= 1e-3 + 1 / one)
        #expect(abs(try number(after: "concurrency ×") - pair / (2 * alone)) <= 1e-3 + 1 / alone)
        #expect(abs(try number(after: "coupling ×") - two / pair) <= 1e-3 + 1 / pair)
        // The two-rank step's lockstep split, from bench's own fields: shares of the step.
        let wait = try number(after: "lockstep wait "), exchange = try number(after: "exchange ")
        // Not `wait + exchange < 100`: with so few steps, a rank descheduled inside the allreduce
        // (the test process runs many jobs at once) makes the exchange longer than rank 0's step.
        #expect(wait >= 0 && exchange > 0 && (wait + exchange).isFinite, "\(round)")
        #expect(r.stdout.contains("median of the 2 ranks step: lockstep wait "), "\(r.stdout)")
    }
}
