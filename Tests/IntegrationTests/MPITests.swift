import BSVI
import BSVIStorage
import BSVITraining
import Foundation
import Testing

/// Data-parallel runs under `mpirun --oversubscribe -np P` on a toy dataset.
@Suite("MPI data parallelism", .serialized)
struct MPITests {
    static let globalBatch = 16
    static let methodFlags = ["--method", "bsvi", "--k", "3", "--pi", "learned"]

    func trainFlags(data: String, runDir: String) -> [String] {
        ["train", "--data", data, "--run-dir", runDir, "--batch-size", "\(Self.globalBatch)", "--epochs", "2", "--seed", "5"]
            + tinyModel + Self.methodFlags
    }

    /// The single-process objective gradient (mean over the global batch) of the first step,
    /// computed in this process over the first global batch of the epoch's order — the union of
    /// the ranks' examples whatever P is.
    func referenceGradient(data: String) throws -> [Float] {
        var objective = ObjectiveSection()
        objective.method = .bsvi; objective.k = 3; objective.pi = .learned
        let ds = try BinaryDataset(path: data)
        let (n, width) = try ds.shape(of: .train)
        let all = try ds.readAll(.train)
        let ids = Array(ShardPlan.epochPermutation(totalRows: n, seed: 5, epoch: 0).prefix(Self.globalBatch))
        let model = VAEModel(shape: ModelShape(inputDim: width, latentDim: 2, hiddenDims: [8], activation: .tanh),
                             piCount: objective.settings.piCount)
        let params = model.makeInitialParameters(seed: 5)
        let xb = FloatBuffer(count: ids.count * width)
        let x = xb.matrix(rows: ids.count, cols: width)
        for (i, id) in ids.enumerated() { x.row(i).update(from: all.base + id * width, count: width) }
        let grads = FloatBuffer(count: model.vectorLength)
        BatchObjective(model: model, settings: objective.settings, batchCapacity: ids.count).accumulate(x: x, exampleIDs: ids, noise: NoiseSource(seed: 5, purpose: .trainingNoise, context: 0),
                             params: params, grads: grads)
        return grads.array.map { $0 / Float(Self.globalBatch) }
    }

    func readFloats(_ path: String) throws -> [Float] {
        let d = try Data(contentsOf: URL(fileURLWithPath: path))
        return d.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }

    @Test("P ranks: one set of outputs from rank 0, bit-identical parameters, exact eval count, gradient = single-process gradient",
          arguments: [1, 2, 3, 4, 8])
    func dataParallelRun(ranks: Int) throws {
        let dir = try makeTemporaryDirectory(prefix: "mpi\(ranks)")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeToyDataset(dir + "/toy.h5")
        let run = dir + "/run"
        let r = try mpirunBSVI(ranks: ranks, trainFlags(data: dir + "/toy.h5", runDir: run) + ["--dump-gradient", dir + "/grad.bin"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(!r.timedOut)
        // Only rank 0 prints progress; nothing is on stderr.
        #expect(r.stdout.components(separatedBy: "bsvi-dist: bsvi").count == 2, "\(r.stdout)")
        #expect(r.stdout.contains("on \(ranks) rank(s)"))
        #expect(r.stderr.isEmpty, "\(r.stderr)")
        let files = try FileManager.default.contentsOfDirectory(atPath: run).sorted()
        #expect(files == [".lock", "checkpoints", "final.h5", "metrics.csv", "summary.json"])
        let checkpoints = try FileManager.default.contentsOfDirectory(atPath: run + "/checkpoints")
        // 96 rows, batch 16: 6 steps an epoch for every P (3 ranks take slices of 6, 5, 5).
        let stepsPerEpoch = 96 / Self.globalBatch
        #expect(Set(checkpoints) == Set(["ckpt-\(stepsPerEpoch).h5", "ckpt-\(2 * stepsPerEpoch).h5"]))
        let summary = try readJSON(run + "/summary.json")
        let sums = try #require(summary["parameter_checksums"] as? [String])
        #expect(sums.count == ranks && Set(sums).count == 1, "parameters differ across ranks: \(sums)")
        let eval = try #require(summary["final_evaluation"] as? [String: Any])
        #expect(eval["examples"] as? Int == 20)
        let metrics = try String(contentsOfFile: run + "/metrics.csv", encoding: .utf8)
        #expect(metrics.split(separator: "\n").filter { $0.hasPrefix("eval,") }.count == 1)

        let dumped = try readFloats(dir + "/grad.bin")
        let reference = try referenceGradient(data: dir + "/toy.h5")
        #expect(dumped.count == reference.count)
        let rms = (reference.reduce(0) { $0 + $1 * $1 } / Float(reference.count)).squareRoot()
        var worst: Float = 0
        for i in 0..<reference.count { worst = max(worst, abs(dumped[i] - reference[i]) / (abs(reference[i]) + rms)) }
        #expect(worst < 1e-4, "P=\(ranks) gradient differs from the single-process gradient by \(worst) (relative)")
    }

    @Test("bsvi-dist without mpirun gives the same parameters as mpirun -np 1")
    func localEqualsOneRank() throws {
        let dir = try makeTemporaryDirectory(prefix: "local")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeToyDataset(dir + "/toy.h5")
        let a = try bsvi(trainFlags(data: dir + "/toy.h5", runDir: dir + "/local"))
        let b = try mpirunBSVI(ranks: 1, trainFlags(data: dir + "/toy.h5", runDir: dir + "/mpi"))
        #expect(a.status == 0 && b.status == 0, "\(a.stderr)\(b.stderr)")
        let pa = try CheckpointFile.read(dir + "/local/final.h5").parameters
        let pb = try CheckpointFile.read(dir + "/mpi/final.h5").parameters
        #expect(pa.map(\.bitPattern) == pb.map(\.bitPattern))
    }

    /// Every per-example dataset of two files, bit for bit.
    func expectSameValues(_ path: String, _ reference: String, datasets: [String], _ what: String) throws {
        let f = try HDF5File.open(path), g = try HDF5File.open(reference)
        #expect(try f.readInt64s("/row") == g.readInt64s("/row"), "\(what) /row")
        for name in datasets {
            #expect(try f.readDoubles(name).map(\.bitPattern) == g.readDoubles(name).map(\.bitPattern), "\(what) \(name)")
        }
    }

    static let evaluationDatasets = ["/log_likelihood", "/elbo", "/elbo_refined", "/ess_fraction", "/max_weight"]

    @Test("eval under mpirun equals single-process eval for P = 1, 2, 3, 4: every number, the per-example file bit for bit")
    func evalAcrossRanks() throws {
        let dir = try makeTemporaryDirectory(prefix: "eval")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeToyDataset(dir + "/toy.h5")
        let t = try bsvi(trainFlags(data: dir + "/toy.h5", runDir: dir + "/run") + ["--no-final-eval"])
        #expect(t.status == 0, "\(t.stderr)")
        let args = ["eval", dir + "/run/final.h5", "--data", dir + "/toy.h5", "--samples", "50", "--json"]
        let local = try parseJSONLine(try bsvi(args + ["--per-example", dir + "/local.h5"]).stdout)
        for p in [1, 2, 3, 4] {
            let r = try mpirunBSVI(ranks: p, args + ["--per-example", dir + "/p\(p).h5"])
            #expect(r.status == 0, "\(r.stderr)")
            let j = try parseJSONLine(r.stdout)
            #expect(j["examples"] as? Int == 20)
            #expect(j["ranks"] as? Int == p)
            for key in ["log_likelihood", "log_likelihood_se", "elbo", "elbo_se", "elbo_refined", "elbo_refined_se",
                        "amortization_gap", "ess_fraction_mean", "ess_fraction_p05", "max_weight_mean"] {
                let a = try #require(local[key] as? Double, "\(key)"), b = try #require(j[key] as? Double, "\(key)")
                #expect(abs(a - b) <= 1e-9 * abs(a), "\(key): local \(a) vs P=\(p) \(b)")
            }
            try expectSameValues(dir + "/p\(p).h5", dir + "/local.h5", datasets: Self.evaluationDatasets, "P=\(p)")
            // Byte for byte too: no object header carries a creation time (it made every file differ).
            #expect(FileManager.default.contentsEqual(atPath: dir + "/p\(p).h5", andPath: dir + "/local.h5"), "P=\(p)")
            let rows = try #require(j["rows_per_rank"] as? [Int], "\(r.stdout)")
            #expect(rows.count == p && rows.reduce(0, +) == 20, "\(rows)")
        }
    }

    @Test("compare under mpirun equals single-process compare for P = 1, 2, 3")
    func compareAcrossRanks() throws {
        let dir = try makeTemporaryDirectory(prefix: "compare")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeToyDataset(dir + "/toy.h5")
        for (run, epochs) in [("a", "2"), ("b", "1")] {
            var flags = trainFlags(data: dir + "/toy.h5", runDir: dir + "/" + run) + ["--no-final-eval"]
            flags[flags.firstIndex(of: "--epochs")! + 1] = epochs
            let t = try bsvi(flags)
            #expect(t.status == 0, "\(t.stderr)")
        }
        let args = ["compare", dir + "/a/final.h5", dir + "/b/final.h5", "--data", dir + "/toy.h5", "--samples", "50", "--json"]
        let local = try parseJSONLine(try bsvi(args + ["--per-example", dir + "/local.h5"]).stdout)
        let datasets = ["/difference"] + ["/a", "/b"].flatMap { g in Self.evaluationDatasets.map { g + $0 } }
        for p in [1, 2, 3] {
            let r = try mpirunBSVI(ranks: p, args + ["--per-example", dir + "/p\(p).h5"])
            #expect(r.status == 0, "\(r.stderr)")
            let j = try parseJSONLine(r.stdout)
            #expect(j["examples"] as? Int == 20 && j["ranks"] as? Int == p)
            for key in ["difference", "difference_se", "a_better_fraction", "a_log_likelihood", "a_log_likelihood_se",
                        "b_log_likelihood", "b_log_likelihood_se"] {
                let a = try #require(local[key] as? Double, "\(key)"), b = try #require(j[key] as? Double, "\(key)")
                #expect(abs(a - b) <= 1e-9 * abs(a), "\(key): local \(a) vs P=\(p) \(b)")
            }
            try expectSameValues(dir + "/p\(p).h5", dir + "/local.h5", datasets: datasets, "P=\(p)")
        }
    }

    /// A wall clock running 1000 s ahead on rank 1 only (an LD_PRELOAD shim over clock_gettime and
    /// gettimeofday), as between two hosts whose clocks were never synchronized.
    static let skewedClock = """
        #define _GNU_SOURCE
        #include <dlfcn.h>
        #include <stdlib.h>
        #include <sys/time.h>
        #include <time.h>
        static long skew(void) { const char *r = getenv("OMPI_COMM_WORLD_RANK"); return r && atoi(r) == 1 ? 1000 : 0; }
        int clock_gettime(clockid_t id, struct timespec *ts) {
            static int (*real)(clockid_t, struct timespec *);
            if (!real) real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
            int r = real(id, ts);
            if (r == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE)) ts->tv_sec += skew();
            return r;
        }
        int gettimeofday(struct timeval *tv, void *tz) {
            struct timespec ts;
            int r = clock_gettime(CLOCK_REALTIME, &ts);
            if (tv) { tv->tv_sec = ts.tv_sec; tv->tv_usec = ts.tv_nsec / 1000; }
            return r;
        }
        """

    @Test("eval deals rows by the ranks' speed whatever their wall clocks say: rank 1's clock 1000 s ahead still gets its share")
    func dealIgnoresWallClocks() throws {
        let dir = try makeTemporaryDirectory(prefix: "skew")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.skewedClock.write(toFile: dir + "/skew.c", atomically: true, encoding: .utf8)
        let built = try runCommand("/usr/bin/env", ["cc", "-shared", "-fPIC", "-O1", "-o", dir + "/libskew.so", dir + "/skew.c", "-ldl"])
        try #require(built.status == 0, "cannot build the clock shim: \(built.stderr)")
        let data = dir + "/toy.h5", run = dir + "/run"
        try writeToyDataset(data, test: 480)
        let trained = try bsvi(CheckpointRun.flags(data: data, runDir: run) + ["--max-steps", "2"])
        try #require(trained.status == 0, "\(trained.stderr)")
        let r = try runCommand(mpirunPath(), ["--oversubscribe", "-np", "2", "-x", "LD_PRELOAD=" + dir + "/libskew.so", try binaryPath(),
                                              "eval", run + "/final.h5", "--data", data, "--samples", "400", "--json"])
        try #require(r.status == 0, "\(r.stderr)")
        let rows = try #require(try parseJSONLine(r.stdout)["rows_per_rank"] as? [Int], "\(r.stdout)")
        #expect(rows.count == 2 && rows.reduce(0, +) == 480, "\(rows)")
        // Comparing wall clocks, the rank whose clock was ahead looked busy for 1000 s and got
        // its first part only (16 of 480 rows). Dealt by speed it gets a share that follows its
        // core's: about half on an idle machine, 106 of 480 once while the suite's other tests
        // loaded the cores. A tenth tells the two apart without depending on the load.
        #expect(rows.min()! >= 480 / 10, "rows per rank \(rows)")
    }

    @Test("a flag error under mpirun is reported once, by rank 0 (eval's and compare's used to come from every rank, interleaved)")
    func flagErrorOnce() throws {
        for arguments in [["eval", "missing.h5", "--split", "test", "--split", "test"], ["compare", "a.h5", "b.h5", "--samples", "0"]] {
            let r = try mpirunBSVI(ranks: 3, arguments)
            #expect(r.status == 64, "\(r.stderr)")
            #expect(r.stderr.components(separatedBy: "Error: ").count == 2, "\(arguments): \(r.stderr)")
        }
        let help = try mpirunBSVI(ranks: 2, ["eval", "--help"])
        #expect(help.status == 0 && help.stdout.components(separatedBy: "OVERVIEW:").count == 2, "\(help.stdout)")
        // Only rank 1's flags are wrong (an MPMD launch): it reports, named, and the job ends
        // with its status. Exiting 0 silently left rank 0 waiting in MPI_Init (a hang).
        let binary = try binaryPath()
        let alone = try runCommand(mpirunPath(), ["-np", "1", binary, "inspect", "--help", ":", "-np", "1", binary, "eval", "x.h5", "--bogus"], timeout: 60)
        #expect(!alone.timedOut && alone.status == 64, "\(alone.status): \(alone.stderr)")
        #expect(alone.stderr.contains("rank 1: Error: Unknown option '--bogus'"), "\(alone.stderr)")
    }

    @Test("ranks given other settings (an MPMD launch) are refused before training, rank 0 naming the rank and the setting")
    func mpmdSettingsDiffer() throws {
        let dir = try makeTemporaryDirectory(prefix: "mpmd")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeToyDataset(dir + "/toy.h5")
        let binary = try binaryPath()
        let flags = ["train", "--data", dir + "/toy.h5", "--run-dir", dir + "/run", "--batch-size", "12", "--seed", "4"] + tinyModel
        let r = try runCommand(mpirunPath(), ["--oversubscribe", "-np", "2", binary] + flags + [":", "-np", "1", binary] + flags + ["--seed", "5"],
                               timeout: 120)
        #expect(!r.timedOut && r.status == 64, "\(r.status): \(r.stderr)")
        #expect(r.stderr.components(separatedBy: "got other settings").count == 2, "\(r.stderr)")
        #expect(r.stderr.contains("rank 2 of 3 got other settings than rank 0 (rank 2: --seed 5 (rank 0: 4))"), "\(r.stderr)")
        #expect(!r.stderr.contains("MPI_ABORT") && !FileManager.default.fileExists(atPath: dir + "/run/checkpoints"), "\(r.stderr)")

        // Two spellings of one --data are the same setting (the files are compared, not the paths).
        let spelled = try runCommand(mpirunPath(), ["--oversubscribe", "-np", "1", binary] + flags + ["--max-steps", "2", "--no-final-eval"]
                                     + [":", "-np", "1", binary] + flags.map { $0 == dir + "/toy.h5" ? dir + "/./toy.h5" : $0 }
                                     + ["--max-steps", "2", "--no-final-eval"], timeout: 120)
        #expect(!spelled.timedOut && spelled.status == 0, "\(spelled.status): \(spelled.stderr)")
        // --data on one rank only: the default dataset's preparation is a collective every rank
        // takes part in; it used to leave the ranks in different collectives until the watchdog.
        let partial = try runCommand(mpirunPath(), ["--oversubscribe", "-np", "1", binary] + flags + ["--stall-timeout", "20"]
                                     + [":", "-np", "1", binary] + flags.filter { $0 != "--data" && $0 != dir + "/toy.h5" } + ["--stall-timeout", "20"],
                                     timeout: 120, directory: dir)
        #expect(!partial.timedOut && [65, 66].contains(partial.status) && !partial.stderr.contains("stalled"), "\(partial.status): \(partial.stderr)")
    }

    @Test("a batch larger than /train is reported once, by rank 0, and every rank leaves without MPI_Abort")
    func batchLargerThanDataOnce() throws {
        let dir = try makeTemporaryDirectory(prefix: "bigbatch")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeToyDataset(dir + "/toy.h5")
        let r = try mpirunBSVI(ranks: 3, ["train", "--data", dir + "/toy.h5", "--run-dir", dir + "/run", "--batch-size", "97"] + tinyModel)
        #expect(r.status == 65, "\(r.stderr)")
        #expect(r.stderr.components(separatedBy: "fewer than one global batch").count == 2, "\(r.stderr)")
        #expect(!r.stderr.contains("MPI_ABORT"), "\(r.stderr)")
    }
}
