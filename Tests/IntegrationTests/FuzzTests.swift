import BSVIStorage
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
        for key in ["seconds", "checkpoint", "file", "peak_resident_mib"] { object[key] = nil }
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
}
