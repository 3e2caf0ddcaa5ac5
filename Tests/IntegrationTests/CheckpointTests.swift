import BSVI
import BSVIStorage
import Foundation
import Testing

/// What the checkpoint, resume and signal tests share: one tiny bsvi model with learned π (so
/// the π logits and their Adam moments are part of every checkpoint) on the toy dataset.
enum CheckpointRun {
    static let batch = 8
    static let toyTrainRows = 96

    static func flags(data: String, runDir: String) -> [String] {
        ["train", "--data", data, "--run-dir", runDir, "--batch-size", "\(batch)", "--seed", "11", "--no-final-eval"]
            + tinyModel + ["--method", "bsvi", "--k", "2", "--pi", "learned"]
    }

    /// Steps per epoch as DESIGN.md §5 defines them: ⌊N/B⌋ global batches, whatever the number of ranks.
    static func stepsPerEpoch(trainRows: Int = toyTrainRows) -> Int { trainRows / batch }

    /// `bsvi-dist` without mpirun for one rank (local mode), `mpirun -np P` otherwise.
    static func train(ranks: Int, _ arguments: [String]) throws -> CommandResult {
        ranks == 1 ? try bsvi(arguments) : try mpirunBSVI(ranks: ranks, arguments)
    }

    /// Expects two checkpoints to hold the same training state, bit for bit.
    static func expectIdenticalState(_ a: Checkpoint, _ b: Checkpoint, _ context: String,
                                     sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(a.step == b.step && a.epoch == b.epoch, "\(context): step/epoch \(a.step)/\(a.epoch) vs \(b.step)/\(b.epoch)",
                sourceLocation: sourceLocation)
        #expect(a.parameters.count == b.parameters.count, "\(context)", sourceLocation: sourceLocation)
        let differing = zip(a.parameters, b.parameters).filter { $0.bitPattern != $1.bitPattern }.count
        #expect(differing == 0, "\(context): \(differing) of \(a.parameters.count) parameters differ", sourceLocation: sourceLocation)
        #expect(a.training?.adamStep == b.training?.adamStep, "\(context): Adam step", sourceLocation: sourceLocation)
        #expect(a.training?.skippedSteps == b.training?.skippedSteps, "\(context)", sourceLocation: sourceLocation)
        #expect(a.training?.badStreak == b.training?.badStreak && a.training?.epochSums == b.training?.epochSums,
                "\(context): non-finite streak or epoch sums differ", sourceLocation: sourceLocation)
        #expect(a.training?.firstMoment.map(\.bitPattern) == b.training?.firstMoment.map(\.bitPattern),
                "\(context): Adam first moment differs", sourceLocation: sourceLocation)
        #expect(a.training?.secondMoment.map(\.bitPattern) == b.training?.secondMoment.map(\.bitPattern),
                "\(context): Adam second moment differs", sourceLocation: sourceLocation)
    }

    static func bytes(_ path: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) }

    static func write(_ bytes: [UInt8], to path: String) throws { try Data(bytes).write(to: URL(fileURLWithPath: path)) }

    /// The file's bytes with one bit flipped in the middle of the raw data of the parameter
    /// tensor `tensor`, found by searching for the little-endian float32 values the checkpoint holds.
    static func flippingByte(in path: String, tensor: String) throws -> [UInt8] {
        let c = try CheckpointFile.read(path)
        let t = try #require(c.model.layout.tensor(named: tensor))
        let pattern = c.parameters[t.range].flatMap { v -> [UInt8] in
            let b = v.bitPattern.littleEndian
            return [UInt8(b & 0xff), UInt8(b >> 8 & 0xff), UInt8(b >> 16 & 0xff), UInt8(b >> 24 & 0xff)]
        }
        var file = try bytes(path)
        var found: [Int] = []
        for start in 0...(file.count - pattern.count) where file[start] == pattern[0] {
            if file[start..<(start + pattern.count)].elementsEqual(pattern) { found.append(start) }
        }
        try #require(found.count == 1, "\(tensor): its raw bytes occur \(found.count) times in \(path)")
        file[found[0] + pattern.count / 2 + 2] ^= 0x04
        return file
    }

    static var h5dumpPath: String? {
        ["/usr/bin/h5dump", "/usr/local/bin/h5dump"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// The first python3 on PATH (the one scripts/install-deps installs h5py for).
    static var python3Path: String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        return path.split(separator: ":").map { $0 + "/python3" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Whether `python3 -c "import h5py, numpy"` works (scripts/install-deps installs them when it can).
    static let h5pyAvailable: Bool = {
        guard let python = python3Path, let r = try? runCommand(python, ["-c", "import h5py, numpy"], timeout: 60) else { return false }
        return r.status == 0
    }()
}

@Suite("Checkpoints: corruption, inspection, interchange")
struct CheckpointTests {
    @Test("--resume auto skips a truncated newer checkpoint and a bit-flipped one with warnings, resumes from the newest valid one, removes stale temp files")
    func killedWriterIsSkipped() throws {
        let dir = try makeTemporaryDirectory(prefix: "killed")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = dir + "/toy.h5"
        try writeToyDataset(data)
        let run = dir + "/run", straight = dir + "/straight"
        let perEpoch = CheckpointRun.stepsPerEpoch()
        let total = 2 * perEpoch

        let first = try bsvi(CheckpointRun.flags(data: data, runDir: run) + ["--max-steps", "\(perEpoch)"])
        #expect(first.status == 0, "\(first.stderr)")
        let folder = run + "/checkpoints"
        let valid = folder + "/ckpt-\(perEpoch).h5"
        let good = try CheckpointRun.bytes(valid)

        // A writer killed mid-write leaves its hidden temp file; a damaged copy under a newer
        // name stands for a file cut short, and a third for a single flipped bit on disk.
        let temp = folder + "/.ckpt-\(perEpoch + 3).h5.tmp-424242"
        try CheckpointRun.write(Array(good.prefix(good.count / 3)), to: temp)
        let truncated = folder + "/ckpt-\(perEpoch + 8).h5"
        try CheckpointRun.write(Array(good.prefix(good.count * 3 / 5)), to: truncated)
        let flipped = folder + "/ckpt-\(perEpoch + 5).h5"
        try CheckpointRun.write(try CheckpointRun.flippingByte(in: valid, tensor: "decoder/dense_1/kernel"), to: flipped)

        let resumed = try bsvi(CheckpointRun.flags(data: data, runDir: run) + ["--max-steps", "\(total)", "--resume", "auto"])
        #expect(resumed.status == 0, "\(resumed.stdout)\n\(resumed.stderr)")
        #expect(!resumed.signaled)
        let output = resumed.stdout + resumed.stderr
        let warnings = output.split(separator: "\n").filter { $0.contains("warning") }
        #expect(warnings.contains { $0.contains(truncated) && $0.contains("truncated") }, "\(output)")
        #expect(warnings.contains { $0.contains(flipped) && $0.contains("checksum") }, "\(output)")
        #expect(!warnings.contains { $0.contains(valid) }, "\(output)")
        #expect(output.contains("resuming from \(valid) at step \(perEpoch)"), "\(output)")
        #expect(!FileManager.default.fileExists(atPath: temp), "the stale temp file is still there")
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder).allSatisfy { !$0.hasPrefix(".") })

        // The run went on from the valid checkpoint exactly as if nothing had happened.
        let s = try bsvi(CheckpointRun.flags(data: data, runDir: straight) + ["--max-steps", "\(total)"])
        #expect(s.status == 0, "\(s.stderr)")
        CheckpointRun.expectIdenticalState(try CheckpointFile.read(run + "/final.h5"), try CheckpointFile.read(straight + "/final.h5"),
                                           "resumed after skipping damaged checkpoints vs straight")
    }

    @Test("retention keeps the checkpoint just written even when a newer-named unreadable file is in the folder")
    func retentionKeepsNewestWritten() throws {
        let dir = try makeTemporaryDirectory(prefix: "retain")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = dir + "/toy.h5"
        try writeToyDataset(data)
        let run = dir + "/run"
        let perEpoch = CheckpointRun.stepsPerEpoch()
        let flags = CheckpointRun.flags(data: data, runDir: run) + ["--keep-checkpoints", "1"]
        let first = try bsvi(flags + ["--max-steps", "\(perEpoch)"])
        #expect(first.status == 0, "\(first.stderr)")
        let folder = run + "/checkpoints"
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder) == ["ckpt-\(perEpoch).h5"])
        let good = try CheckpointRun.bytes(folder + "/ckpt-\(perEpoch).h5")
        let stray = folder + "/ckpt-\(100 * perEpoch).h5"
        try CheckpointRun.write(Array(good.prefix(good.count / 2)), to: stray)

        let resumed = try bsvi(flags + ["--max-steps", "\(2 * perEpoch)", "--resume", "auto"])
        #expect(resumed.status == 0, "\(resumed.stdout)\n\(resumed.stderr)")
        // The run's own newest checkpoint survives retention, and final.h5 is a copy of it.
        let newest = folder + "/ckpt-\(2 * perEpoch).h5"
        #expect(FileManager.default.fileExists(atPath: newest), "retention deleted the checkpoint it had just written")
        let final = try CheckpointFile.read(run + "/final.h5", requireTrainingState: true)
        #expect(final.step == 2 * perEpoch)
    }

    @Test("a flipped byte in a parameter dataset: inspect, eval and --resume fail with a checksum error, no crash")
    func flippedByteFailsLoudly() throws {
        let dir = try makeTemporaryDirectory(prefix: "flip")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = dir + "/toy.h5"
        try writeToyDataset(data)
        let run = dir + "/run"
        let t = try bsvi(CheckpointRun.flags(data: data, runDir: run) + ["--max-steps", "5"])
        #expect(t.status == 0, "\(t.stderr)")
        for tensor in ["encoder/dense_0/kernel", "decoder/dense_1/bias", "pi/logits"] {
            let corrupt = dir + "/corrupt-\(tensor.replacingOccurrences(of: "/", with: "_")).h5"
            try CheckpointRun.write(try CheckpointRun.flippingByte(in: run + "/final.h5", tensor: tensor), to: corrupt)
            let dataset = Checkpoint.datasetPath(for: tensor)
            for args in [["inspect", corrupt], ["inspect", corrupt, "--json"], ["eval", corrupt, "--data", data, "--samples", "5"]] {
                let r = try bsvi(args)
                #expect(r.status != 0 && !r.signaled && !r.timedOut, "\(args): status \(r.status)")
                #expect(r.stderr.contains("checksum") && r.stderr.contains("corrupt"), "\(args): \(r.stderr)")
                #expect(r.stderr.contains(corrupt) && r.stderr.contains(dataset), "\(args): the error should name the file and dataset: \(r.stderr)")
                #expect(r.stdout.isEmpty, "\(args): nothing should be printed on a corrupt file: \(r.stdout)")
            }
            let resume = try bsvi(CheckpointRun.flags(data: data, runDir: dir + "/again") + ["--max-steps", "8", "--resume", corrupt])
            #expect(resume.status != 0 && !resume.signaled, "\(resume.stdout)")
            #expect(resume.stderr.contains("checksum"), "\(resume.stderr)")
            #expect(!FileManager.default.fileExists(atPath: dir + "/again/final.h5"))
        }
    }

    @Test("inspect on a valid checkpoint: text and --json show format, configuration, step/epoch, world size, every parameter, π, history, checksums")
    func inspectValid() throws {
        let dir = try makeTemporaryDirectory(prefix: "inspect")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = dir + "/toy.h5"
        try writeToyDataset(data)
        let run = dir + "/run"
        // Two validation evaluations and the final test evaluation: three history records.
        var flags = CheckpointRun.flags(data: data, runDir: run).filter { $0 != "--no-final-eval" }
        flags += ["--epochs", "2", "--eval-every", "1", "--eval-limit", "10"]
        let t = try bsvi(flags)
        #expect(t.status == 0, "\(t.stderr)")
        let path = run + "/final.h5"
        let c = try CheckpointFile.read(path, requireTrainingState: true)
        let perEpoch = CheckpointRun.stepsPerEpoch()
        #expect(c.step == 2 * perEpoch && c.epoch == 2)
        #expect(c.history.map(\.split) == ["valid", "valid", "test"])
        #expect(c.history.map(\.step) == [perEpoch, 2 * perEpoch, 2 * perEpoch])

        let text = try bsvi(["inspect", path])
        #expect(text.status == 0, "\(text.stderr)")
        let lines = text.stdout.split(separator: "\n").map(String.init)
        func line(_ prefix: String) -> String? { lines.first { $0.hasPrefix(prefix) } }
        #expect(line("format")?.contains("bsvi-checkpoint version 1") == true, "\(text.stdout)")
        #expect(line("method")?.hasSuffix("bsvi") == true)
        #expect(line("step / epoch")?.hasSuffix("\(c.step) / \(c.epoch)") == true, "\(text.stdout)")
        #expect(line("world size")?.hasSuffix(" 1") == true, "\(text.stdout)")
        #expect(line("seed")?.hasSuffix(" 11") == true)
        #expect(line("configuration")?.contains(#""pi":"learned""#) == true)
        #expect(line("checksums")?.contains("Fletcher32 verified") == true)
        // One table row per tensor: name, shape, count and the statistics of the stored values.
        for tensor in c.model.layout.tensors {
            let values = c.parameters[tensor.range]
            let row = try #require(lines.first { $0.hasPrefix(tensor.name + " ") }, "no row for \(tensor.name)")
            let cells = row.split(separator: " ").map(String.init)
            let shape = "[" + tensor.shape.map(String.init).joined(separator: ", ") + "]"
            #expect(row.contains(shape), "\(row)")
            #expect(cells.contains("\(tensor.count)"), "\(row)")
            #expect(cells.contains(String(format: "%.4g", Double(values.min()!))), "\(row)")
            #expect(cells.contains(String(format: "%.4g", Double(values.max()!))), "\(row)")
            #expect(cells.last == "yes", "\(row)")
        }
        #expect(line("learned π") != nil, "\(text.stdout)")
        #expect(text.stdout.contains("metric history (3 evaluations)"), "\(text.stdout)")
        // The columns line up for valid and test rows (Foundation's %@ ignores a field width).
        let historyRows = text.stdout.split(separator: "\n").filter { $0.hasPrefix("  step ") && $0.contains(" n=") }
        #expect(historyRows.count == 3 && Set(historyRows.map { $0.distance(from: $0.startIndex, to: $0.range(of: " n=")!.lowerBound) }).count == 1,
                "\(historyRows)")

        let json = try bsvi(["inspect", path, "--json"])
        #expect(json.status == 0, "\(json.stderr)")
        let j = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(j["format"] as? String == "bsvi-checkpoint")
        #expect(j["format_version"] as? Int == 1)
        #expect(j["step"] as? Int == c.step && j["epoch"] as? Int == c.epoch)
        #expect(j["world_size"] as? Int == 1)
        #expect(j["checksums_verified"] as? Bool == true)
        #expect(j["has_training_state"] as? Bool == true)
        #expect(j["adam_step"] as? Int == c.training?.adamStep)
        let params = try #require(j["parameters"] as? [[String: Any]])
        #expect(params.compactMap { $0["name"] as? String } == c.model.layout.tensors.map(\.name))
        #expect(params.compactMap { $0["shape"] as? [Int] } == c.model.layout.tensors.map(\.shape))
        #expect(params.allSatisfy { $0["checksummed"] as? Bool == true && $0["finite"] as? Bool == true })
        let history = try #require(j["history"] as? [[String: Any]])
        #expect(history.count == 3)
        for (h, record) in zip(history, c.history) {
            #expect(h["step"] as? Int == record.step && h["split"] as? String == record.split)
            let ll = try #require(h["log_likelihood"] as? Double)
            #expect(abs(ll - record.logLikelihood) <= 1e-12 * abs(record.logLikelihood))
        }
        let pi = try #require(j["pi"] as? [Double])
        #expect(pi.count == 3 && abs(pi.reduce(0, +) - 1) < 1e-9)
    }

    @Test("inspect refuses files that are neither checkpoints nor datasets with a clear error and the sysexits status",
          arguments: ["text", "empty", "other HDF5", "truncated", "missing"])
    func inspectRefuses(kind: String) throws {
        let dir = try makeTemporaryDirectory(prefix: "refuse")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/input.h5"
        var expected = ""
        var status: Int32 = 65
        switch kind {
        case "text":
            try Data("step,epoch\n1,2\n".utf8).write(to: URL(fileURLWithPath: path))
            expected = "not an HDF5 file"
        case "empty":
            try Data().write(to: URL(fileURLWithPath: path))
            expected = "not an HDF5 file"
        case "other HDF5":
            let f = try HDF5File.create(path)
            try f.writeDoubles("/numbers", [1, 2, 3])
            try f.close()
            expected = "not a bsvi-dist checkpoint"
        case "truncated":
            let data = dir + "/toy.h5"
            try writeToyDataset(data)
            let t = try bsvi(CheckpointRun.flags(data: data, runDir: dir + "/run") + ["--max-steps", "3"])
            #expect(t.status == 0, "\(t.stderr)")
            let good = try CheckpointRun.bytes(dir + "/run/final.h5")
            try CheckpointRun.write(Array(good.prefix(good.count / 2)), to: path)
            expected = "truncated"
        default:
            expected = "not found"
            status = 66
        }
        for args in [["inspect", path], ["inspect", path, "--json"]] {
            let r = try bsvi(args)
            #expect(r.status == status && !r.signaled && !r.timedOut, "\(kind) \(args): status \(r.status) \(r.stderr)")
            #expect(r.stderr.hasPrefix("error: \(path)"), "\(kind): \(r.stderr)")
            #expect(r.stderr.contains(expected), "\(kind): \(r.stderr)")
            #expect(r.stdout.isEmpty, "\(kind): \(r.stdout)")
        }
    }

    @Test("a model-only file written through the plain HDF5 API loads in eval and inspect; --resume refuses it")
    func modelOnlyInterchange() throws {
        let dir = try makeTemporaryDirectory(prefix: "interchange")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = dir + "/toy.h5"
        try writeToyDataset(data)
        let run = dir + "/run"
        // bsvi with uniform π: the whole model is the DESIGN.md §4 part.
        var flags = CheckpointRun.flags(data: data, runDir: run)
        flags[flags.firstIndex(of: "learned")!] = "uniform"
        let t = try bsvi(flags + ["--max-steps", "20"])
        #expect(t.status == 0, "\(t.stderr)")
        let trained = try CheckpointFile.read(run + "/final.h5")
        #expect(trained.piCount == 0)

        // Only DESIGN.md §4's model part: /model attributes and contiguous, unchecksummed float32
        // datasets; no format attributes, no /training, no /metrics.
        let plain = dir + "/plain.h5"
        let f = try HDF5File.create(plain)
        try f.createGroup("/model")
        try f.setAttribute("input_dim", on: "/model", Int64(trained.shape.inputDim))
        try f.setAttribute("latent_dim", on: "/model", Int64(trained.shape.latentDim))
        try f.setAttribute("hidden_dims", on: "/model", trained.shape.hiddenDims.map { Int64($0) })
        try f.setAttribute("activation", on: "/model", trained.shape.activation.rawValue)
        try f.setAttribute("likelihood", on: "/model", "bernoulli")
        for tensor in trained.model.layout.tensors {
            try f.writeFloats("/model/" + tensor.name, Array(trained.parameters[tensor.range]),
                              shape: tensor.shape, checksummed: false)
        }
        try f.close()
        let check = try HDF5File.open(plain)
        #expect(try check.children(of: "/") == ["model"])
        #expect(try !check.hasAttribute("format"))
        #expect(try !check.datasetInfo("/model/encoder/dense_0/kernel").hasFletcher32)

        // eval gives the same numbers as on the original checkpoint (encoder proposal: the
        // log-likelihood and ELBO(λ₀) depend only on the model and the seed).
        let evalArgs = ["--data", data, "--samples", "30", "--json"]
        let a = try bsvi(["eval", run + "/final.h5"] + evalArgs), b = try bsvi(["eval", plain] + evalArgs)
        #expect(a.status == 0 && b.status == 0, "\(a.stderr)\(b.stderr)")
        let ja = try parseJSONLine(a.stdout), jb = try parseJSONLine(b.stdout)
        for key in ["log_likelihood", "elbo"] {
            let x = try #require(ja[key] as? Double), y = try #require(jb[key] as? Double)
            #expect(x == y, "\(key): \(x) from the bsvi-dist checkpoint vs \(y) from the plain file")
        }

        let text = try bsvi(["inspect", plain])
        #expect(text.status == 0, "\(text.stderr)")
        #expect(text.stdout.contains("training state  absent"), "\(text.stdout)")
        #expect(text.stdout.contains("model-only"), "\(text.stdout)")
        #expect(text.stdout.contains("not all parameter datasets carry checksums"))
        for tensor in trained.model.layout.tensors { #expect(text.stdout.contains(tensor.name + " ")) }
        let json = try bsvi(["inspect", plain, "--json"])
        let j = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(j["has_training_state"] as? Bool == false)
        #expect(j["checksums_verified"] as? Bool == false)
        #expect((j["parameters"] as? [Any])?.count == trained.model.layout.tensors.count)

        let resume = try bsvi(flags + ["--max-steps", "30", "--resume", plain])
        #expect(resume.status != 0 && !resume.signaled, "\(resume.stdout)")
        #expect(resume.stderr.contains("only the model") && resume.stderr.contains("--resume"), "\(resume.stderr)")
    }

    @Test("h5dump reads a checkpoint's header and shows the Fletcher32 filter", .enabled(if: CheckpointRun.h5dumpPath != nil))
    func h5dumpReadsCheckpoint() throws {
        let dir = try makeTemporaryDirectory(prefix: "h5dump")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = dir + "/toy.h5"
        try writeToyDataset(data)
        let t = try bsvi(CheckpointRun.flags(data: data, runDir: dir + "/run") + ["--max-steps", "4"])
        #expect(t.status == 0, "\(t.stderr)")
        let h5dump = try #require(CheckpointRun.h5dumpPath)
        let header = try runCommand(h5dump, ["-H", dir + "/run/final.h5"])
        #expect(header.status == 0, "\(header.stderr)")
        for name in ["GROUP \"model\"", "GROUP \"encoder\"", "GROUP \"training\"", "GROUP \"metrics\"", "ATTRIBUTE \"format_version\"",
                     "DATASET \"kernel\"", "DATASET \"adam_first_moment\"", "DATASET \"pi_logits\"", "( 16, 8 )"] {
            #expect(header.stdout.contains(name), "h5dump -H does not show \(name)")
        }
        let kernel = try runCommand(h5dump, ["-p", "-d", "/model/decoder/dense_1/kernel", dir + "/run/final.h5"])
        #expect(kernel.status == 0, "\(kernel.stderr)")
        #expect(kernel.stdout.contains("CHECKSUM FLETCHER32"), "\(kernel.stdout)")
    }

    @Test("h5py reads a bsvi-dist checkpoint without bsvi-dist, and a model-only file h5py writes loads in eval and inspect",
          .enabled(if: CheckpointRun.h5pyAvailable))
    func h5pyInterchange() throws {
        let dir = try makeTemporaryDirectory(prefix: "h5py")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = dir + "/toy.h5"
        try writeToyDataset(data)
        let t = try bsvi(CheckpointRun.flags(data: data, runDir: dir + "/run") + ["--max-steps", "6"])
        #expect(t.status == 0, "\(t.stderr)")
        let path = dir + "/run/final.h5"
        let c = try CheckpointFile.read(path, requireTrainingState: true)
        let python = try #require(CheckpointRun.python3Path)

        // The reading side of docs/checkpoint-format.md's snippet, plus the decoder logits of two z.
        let script = dir + "/read.py"
        try """
            import json, sys, h5py, numpy as np
            def text(v): return v.decode() if isinstance(v, bytes) else str(v)
            with h5py.File(sys.argv[1], "r") as f:
                m = f["model"]
                act = {"tanh": np.tanh, "relu": lambda a: np.maximum(a, 0), "softplus": lambda a: np.logaddexp(0, a)}[text(m.attrs["activation"])]
                layers = sorted(m["decoder"].keys(), key=lambda s: int(s.split("_")[1]))
                z = np.array([[0.5, -1.0], [2.0, 0.25]], dtype=np.float64)
                h = z
                for i, name in enumerate(layers):
                    h = h @ m["decoder"][name]["kernel"][()].astype(np.float64) + m["decoder"][name]["bias"][()]
                    if i < len(layers) - 1: h = act(h)
                k = m["encoder/dense_0/kernel"]
                print(json.dumps({
                    "format": text(f.attrs["format"]), "format_version": int(f.attrs["format_version"]),
                    "step": int(f.attrs["step"]), "epoch": int(f.attrs["epoch"]), "method": text(f.attrs["method"]),
                    "input_dim": int(m.attrs["input_dim"]), "hidden_dims": [int(x) for x in m.attrs["hidden_dims"]],
                    "kernel_shape": list(k.shape), "kernel_dtype": str(k.dtype), "fletcher32": bool(k.fletcher32),
                    "kernel_bits": [int(x) for x in k[()].view(np.uint32).ravel()],
                    "world_size": int(f["training"].attrs["world_size"]),
                    "moment_length": int(f["training/adam_first_moment"].shape[0]),
                    "first_moment_bits": [int(x) for x in f["training/adam_first_moment"][()].view(np.uint32)],
                    "logits": h.tolist()}))
            """.write(toFile: script, atomically: true, encoding: .utf8)
        let r = try runCommand(python, [script, path])
        #expect(r.status == 0, "\(r.stderr)")
        let j = try parseJSONLine(r.stdout)
        #expect(j["format"] as? String == "bsvi-checkpoint" && j["format_version"] as? Int == 1)
        #expect(j["step"] as? Int == c.step && j["epoch"] as? Int == c.epoch && j["method"] as? String == "bsvi")
        #expect(j["input_dim"] as? Int == 16 && j["hidden_dims"] as? [Int] == [8])
        #expect(j["kernel_shape"] as? [Int] == [16, 8])
        #expect(j["kernel_dtype"] as? String == "float32" && j["fletcher32"] as? Bool == true)
        let kernel = try #require(c.model.layout.tensor(named: "encoder/dense_0/kernel"))
        #expect(j["kernel_bits"] as? [Int] == c.parameters[kernel.range].map { Int($0.bitPattern) })
        // The moments one value per parameter in parameter_order, without the layout's gaps.
        #expect(j["world_size"] as? Int == 1 && j["moment_length"] as? Int == c.model.layout.parameterCount)
        let firstMoment = try #require(c.training?.firstMoment)
        #expect(c.model.vectorLength > c.model.layout.parameterCount, "the test model's layout has gaps")
        #expect(j["first_moment_bits"] as? [Int] == c.model.layout.packed(firstMoment).map { Int($0.bitPattern) })
        // The logits h5py computes from the file agree with the project's own decoder.
        let logits = try #require(j["logits"] as? [[Double]])
        let params = FloatBuffer(c.parameters)
        let workspace = MLPWorkspace(mlp: c.model.decoder, capacity: 2)
        let zBuffer = FloatBuffer([0.5, -1.0, 2.0, 0.25])
        workspace.forward(zBuffer.matrix(rows: 2, cols: 2), rows: 0..<2, params: params)
        for row in 0..<2 {
            for col in 0..<16 {
                let ours = Double(workspace.output[row, col])
                #expect(abs(logits[row][col] - ours) <= 1e-5 * (1 + abs(ours)), "logit [\(row), \(col)]: h5py \(logits[row][col]) vs \(ours)")
            }
        }

        // The writing side: h5py's defaults (variable-length string attributes, contiguous
        // datasets, no checksums) in the DESIGN.md §4 layout.
        let writer = dir + "/write.py"
        try """
            import sys, h5py, numpy as np
            src, dst = sys.argv[1], sys.argv[2]
            with h5py.File(src, "r") as f, h5py.File(dst, "w") as g:
                m = g.create_group("model")
                for key in ["input_dim", "latent_dim"]: m.attrs[key] = int(f["model"].attrs[key])
                m.attrs["hidden_dims"] = np.array(f["model"].attrs["hidden_dims"], dtype=np.int32)
                m.attrs["activation"] = "tanh"
                def copy(name, obj):
                    if isinstance(obj, h5py.Dataset): g.create_dataset("model/" + name, data=obj[()])
                f["model"].visititems(copy)
            """.write(toFile: writer, atomically: true, encoding: .utf8)
        let plain = dir + "/from-h5py.h5"
        let w = try runCommand(python, [writer, path, plain])
        #expect(w.status == 0, "\(w.stderr)")
        let back = try CheckpointFile.read(plain)
        #expect(back.training == nil && back.shape == c.shape)
        #expect(back.model.layout.packed(back.parameters).map(\.bitPattern)
                    == c.model.layout.packed(c.parameters).dropLast(c.piCount).map(\.bitPattern))
        let e = try bsvi(["eval", plain, "--data", data, "--samples", "10", "--json"])
        #expect(e.status == 0, "\(e.stderr)")
        #expect((try parseJSONLine(e.stdout)["log_likelihood"] as? Double)?.isFinite == true)
        let i = try bsvi(["inspect", plain])
        #expect(i.status == 0 && i.stdout.contains("training state  absent"), "\(i.stdout)\(i.stderr)")
    }
}
