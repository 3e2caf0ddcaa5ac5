import BSVIStorage
import DataFixtures
import Foundation
import Testing

/// Random byte flips and truncations of a valid dataset and a valid checkpoint. Every command
/// must either fail cleanly (non-zero status, a message on stderr, no signal, no hang) or —
/// when the damage fell on bytes HDF5 never reads (e.g. free space) — produce exactly the
/// result of the undamaged file. Every byte that is read is covered by a checksum (metadata:
/// HDF5 1.10 format; data: Fletcher32), so damaged content can never pass silently.
@Suite("Fuzzing corrupt inputs", .serialized)
struct FuzzTests {
    struct Corruptor {
        var state: UInt64
        mutating func next() -> UInt64 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return state >> 11
        }
        /// 1–4 byte flips (XOR with a non-zero byte), or a truncation.
        mutating func corrupt(_ original: Data) -> (Data, String) {
            var d = original
            if next() % 4 == 0 {
                let keep = Int(next() % UInt64(d.count))
                return (d.prefix(keep), "truncated to \(keep) bytes")
            }
            var what: [String] = []
            for _ in 0..<(1 + Int(next() % 4)) {
                let at = Int(next() % UInt64(d.count))
                let mask = UInt8(1 + next() % 255)
                d[at] ^= mask
                what.append("byte \(at) ^= \(mask)")
            }
            return (d, what.joined(separator: ", "))
        }
    }

    /// The JSON result without the fields that name the input file or time the run.
    func content(_ stdout: String) -> NSDictionary? {
        guard let line = stdout.split(separator: "\n").last,
              var object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else {
            // inspect --json is pretty-printed over several lines
            guard var whole = (try? JSONSerialization.jsonObject(with: Data(stdout.utf8))) as? [String: Any] else { return nil }
            whole["file"] = nil
            return whole as NSDictionary
        }
        for key in ["seconds", "checkpoint", "data", "file", "peak_resident_mib"] { object[key] = nil }
        return object as NSDictionary
    }

    func expectCleanOrIdentical(_ r: CommandResult, reference: CommandResult, what: String, command: String,
                                sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(!r.signaled && !r.timedOut, "\(command) on a file with \(what): killed by a signal or hung\n\(r.stderr)",
                sourceLocation: sourceLocation)
        if r.status == 0 {
            let mine = content(r.stdout), theirs = content(reference.stdout)
            #expect(mine != nil && mine == theirs,
                    "\(command) succeeded on a file with \(what) but gave a different result:\n\(r.stdout)\nvs\n\(reference.stdout)",
                    sourceLocation: sourceLocation)
        } else {
            #expect(!r.stderr.isEmpty && r.stderr.split(separator: "\n").count <= 5,
                    "\(command) failed without one clear message (\(what)): \(r.stderr)", sourceLocation: sourceLocation)
        }
    }

    @Test func corruptCheckpoints() throws {
        let dir = try makeTemporaryDirectory(prefix: "fuzzckpt")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeToyDataset(dir + "/toy.h5")
        let train = ["train", "--data", dir + "/toy.h5", "--batch-size", "8", "--seed", "2", "--no-final-eval"] + tinyModel
        let t = try bsvi(train + ["--run-dir", dir + "/run", "--max-steps", "6"])
        try #require(t.status == 0, "\(t.stderr)")
        let original = try Data(contentsOf: URL(fileURLWithPath: dir + "/run/final.h5"))
        func commands(_ path: String, _ tag: String) -> [[String]] {
            [["inspect", path, "--json"],
             ["eval", path, "--data", dir + "/toy.h5", "--samples", "10", "--json"],
             train + ["--run-dir", dir + "/resume-\(tag)", "--max-steps", "8", "--resume", path]]
        }
        let reference = try commands(dir + "/run/final.h5", "ref").map { try bsvi($0, timeout: 60) }
        for r in reference { try #require(r.status == 0, "\(r.stderr)") }
        let referenceParams = try CheckpointFile.read(dir + "/resume-ref/final.h5").parameters
        var fuzz = Corruptor(state: 20261125)
        for i in 0..<40 {
            let (bad, what) = fuzz.corrupt(original)
            let path = dir + "/bad-\(i).h5"
            try bad.write(to: URL(fileURLWithPath: path))
            for (c, command) in commands(path, "\(i)").enumerated() {
                let r = try bsvi(command, timeout: 60)
                if c == 2 {
                    // A resumed run that succeeded must have resumed the undamaged state.
                    #expect(!r.signaled && !r.timedOut, "resume on \(what): signal or hang")
                    if r.status == 0 {
                        #expect(try CheckpointFile.read(dir + "/resume-\(i)/final.h5").parameters == referenceParams,
                                "resume from a file with \(what) succeeded with different parameters")
                    } else {
                        #expect(!r.stderr.isEmpty, "resume failed silently on \(what)")
                    }
                } else {
                    expectCleanOrIdentical(r, reference: reference[c], what: what, command: command[0])
                }
            }
        }
    }

    @Test func corruptDatasets() throws {
        let dir = try makeTemporaryDirectory(prefix: "fuzzdata")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeToyDataset(dir + "/toy.h5")
        let t = try bsvi(["train", "--data", dir + "/toy.h5", "--batch-size", "8", "--run-dir", dir + "/run", "--max-steps", "3",
                          "--no-final-eval"] + tinyModel)
        try #require(t.status == 0, "\(t.stderr)")
        func commands(_ data: String, _ tag: String) -> [[String]] {
            [["eval", dir + "/run/final.h5", "--data", data, "--samples", "10", "--json"],
             ["train", "--data", data, "--batch-size", "8", "--run-dir", dir + "/t-\(tag)", "--max-steps", "12"] + tinyModel]
        }
        let reference = try commands(dir + "/toy.h5", "ref").map { try bsvi($0, timeout: 60) }
        for r in reference { try #require(r.status == 0, "\(r.stderr)") }
        let referenceParams = try CheckpointFile.read(dir + "/t-ref/final.h5").parameters
        let original = try Data(contentsOf: URL(fileURLWithPath: dir + "/toy.h5"))
        var fuzz = Corruptor(state: 4242)
        for i in 0..<40 {
            let (bad, what) = fuzz.corrupt(original)
            let path = dir + "/bad-\(i).h5"
            try bad.write(to: URL(fileURLWithPath: path))
            let cmds = commands(path, "\(i)")
            let e = try bsvi(cmds[0], timeout: 60)
            expectCleanOrIdentical(e, reference: reference[0], what: what, command: "eval")
            let r = try bsvi(cmds[1], timeout: 60)
            #expect(!r.signaled && !r.timedOut, "train on a dataset with \(what): signal or hang")
            if r.status == 0 {
                #expect(try CheckpointFile.read(dir + "/t-\(i)/final.h5").parameters == referenceParams,
                        "train on a dataset with \(what) succeeded with different parameters")
            } else {
                #expect(!r.stderr.isEmpty && !FileManager.default.fileExists(atPath: dir + "/t-\(i)/final.h5"))
            }
        }
    }

    /// Files whose headers or attributes declare absurd sizes (crafted, not random: a random
    /// flip rarely lands on a size). Before the fix each killed the command with SIGILL (an
    /// overflowing multiplication) or SIGABRT (allocating what the header promised); each must
    /// now exit 64 or 65 with one message naming the file.
    @Test func hostileSizes() throws {
        let dir = try makeTemporaryDirectory(prefix: "fuzzsizes")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func idx(_ dims: [UInt32], data: Int) -> Data {
            var bytes: [UInt8] = [0, 0, 0x08, UInt8(dims.count)]
            for d in dims { withUnsafeBytes(of: d.bigEndian) { bytes += $0 } }
            return Data(bytes + [UInt8](repeating: 0, count: data))
        }
        try idx([1, 0xffff_ffff, 0xffff_ffff], data: 16).write(to: URL(fileURLWithPath: dir + "/huge3.idx3-ubyte"))
        try idx([1, 0xffff_ffff], data: 12).write(to: URL(fileURLWithPath: dir + "/nd.idx2-ubyte"))
        try Data(DataFixtures.npy([], shape: [1, 1 << 62, 4], type: .uint8)).write(to: URL(fileURLWithPath: dir + "/huge.npy"))
        try writeToyDataset(dir + "/toy.h5")
        let attr = try HDF5File.open(dir + "/toy.h5", writable: true)
        try attr.setAttribute("image_height", Int64(1) << 62)
        try attr.setAttribute("image_width", Int64(4))
        try attr.close()
        let wide = try HDF5File.create(dir + "/wide.h5")
        for s in ["/train", "/valid", "/test"] { try wide.createUInt8Dataset(s, rows: 1 << 20, width: 1 << 30, chunkRows: 1) }
        try wide.close()
        let t = try bsvi(["train", "--data", dir + "/wide.h5", "--batch-size", "8", "--run-dir", dir + "/never", "--max-steps", "1"] + tinyModel)
        #expect(!t.signaled && t.status == 65 && t.stderr.contains(dir + "/wide.h5"), "train on wide.h5: \(t.status) \(t.stderr)")
        try writeToyDataset(dir + "/ok.h5")
        let run = try bsvi(["train", "--data", dir + "/ok.h5", "--batch-size", "8", "--run-dir", dir + "/run", "--max-steps", "1",
                            "--no-final-eval"] + tinyModel)
        try #require(run.status == 0, "\(run.stderr)")
        // Model-only (as another tool might write it), with attributes implying 40 GB of floats.
        let ckpt = dir + "/big.h5"
        var c = try CheckpointFile.read(dir + "/run/final.h5")
        c.training = nil
        try CheckpointFile.write(c, to: ckpt)
        let big = try HDF5File.open(ckpt, writable: true)
        try big.setAttribute("input_dim", on: "/model", Int64(100_000))
        try big.setAttribute("hidden_dims", on: "/model", [Int64(100_000)])
        try big.close()

        let out = dir + "/out.h5"
        let cases: [(args: [String], file: String, status: Int32)] = [
            (["prepare-data", "--train", dir + "/huge3.idx3-ubyte", "--test", dir + "/huge3.idx3-ubyte", "--output", out, "--valid-from-train", "1"],
             dir + "/huge3.idx3-ubyte", 65),
            (["prepare-data", "--train", dir + "/nd.idx2-ubyte", "--test", dir + "/nd.idx2-ubyte", "--output", out, "--valid-from-train", "1"],
             dir + "/nd.idx2-ubyte", 65),
            (["prepare-data", "--train", dir + "/huge.npy", "--test", dir + "/huge.npy", "--output", out, "--valid-from-train", "1"],
             dir + "/huge.npy", 65),
            (["prepare-data", "--train", dir + "/huge.npy", "--test", dir + "/huge.npy", "--output", out, "--valid-from-train", "1",
              "--image-shape", "4294967296x4294967296"], "--image-shape", 64),
            // An image shape is only sample's to read: a warning naming the file, exit 0.
            (["inspect", dir + "/toy.h5"], dir + "/toy.h5", 0),
            (["inspect", dir + "/wide.h5"], dir + "/wide.h5", 65),
            (["inspect", ckpt], ckpt, 65),
            (["eval", ckpt, "--data", dir + "/ok.h5", "--samples", "10"], ckpt, 65),
        ]
        for (args, file, status) in cases {
            let r = try bsvi(args, timeout: 60)
            #expect(!r.signaled && !r.timedOut && r.status == status && r.stderr.contains(file),
                    "\(args.joined(separator: " ")): status \(r.status)\(r.signaled ? " (signal)" : ""), expected \(status) naming \(file):\n\(r.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: out))
    }
}
