import BSVIStorage
import Foundation
import Testing

/// Each bad input ends with a message naming the file and object, a non-zero exit, no crash
/// signal, and nothing written.
@Suite("Bad input")
struct BadInputTests {
    func expectCleanFailure(_ r: CommandResult, mentions: [String], runDir: String? = nil,
                            sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(r.status != 0, "expected failure, got status 0", sourceLocation: sourceLocation)
        #expect(!r.signaled && !r.timedOut, "killed by a signal or hung: \(r.stderr)", sourceLocation: sourceLocation)
        for m in mentions {
            #expect(r.stderr.contains(m), "stderr should mention '\(m)': \(r.stderr)", sourceLocation: sourceLocation)
        }
        #expect(r.stderr.split(separator: "\n").count <= 5, "one clear message, not a dump: \(r.stderr)", sourceLocation: sourceLocation)
        if let runDir {
            #expect(!FileManager.default.fileExists(atPath: runDir), "nothing should be written to \(runDir)", sourceLocation: sourceLocation)
        }
    }

    func train(_ data: String, _ dir: String, _ extra: [String] = []) throws -> CommandResult {
        try bsvi(["train", "--data", data, "--run-dir", dir + "/run", "--batch-size", "8", "--max-steps", "2"] + tinyModel + extra)
    }

    @Test func missingAndNonHDF5Files() throws {
        let dir = try makeTemporaryDirectory(prefix: "bad")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        expectCleanFailure(try train(dir + "/nope.h5", dir), mentions: ["nope.h5", "not found"], runDir: dir + "/run")
        try "hello".write(toFile: dir + "/text.h5", atomically: true, encoding: .utf8)
        expectCleanFailure(try train(dir + "/text.h5", dir), mentions: ["text.h5", "not an HDF5 file"], runDir: dir + "/run")
        // A truncated dataset file.
        try writeToyDataset(dir + "/toy.h5")
        let data = try Data(contentsOf: URL(fileURLWithPath: dir + "/toy.h5"))
        try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: dir + "/trunc.h5"))
        expectCleanFailure(try train(dir + "/trunc.h5", dir), mentions: ["trunc.h5"], runDir: dir + "/run")
    }

    @Test("a FIFO or a folder where an HDF5 file is read exits 66 naming it, without waiting for a writer (inspect once hung)")
    func fifoAndFolderInputs() throws {
        let dir = try makeTemporaryDirectory(prefix: "bad")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeToyDataset(dir + "/toy.h5")
        #expect(mkfifo(dir + "/fifo.h5", 0o600) == 0)
        try FileManager.default.createDirectory(atPath: dir + "/folder.h5", withIntermediateDirectories: true)
        for (input, says) in [("fifo.h5", "is not a regular file"), ("folder.h5", "is a folder")] {
            let path = dir + "/" + input
            for arguments in [["inspect", path], ["inspect", path, "--json"], ["eval", path, "--data", dir + "/toy.h5", "--samples", "5"],
                              ["train", "--data", path, "--run-dir", dir + "/run", "--batch-size", "8", "--max-steps", "2"] + tinyModel] {
                let r = try bsvi(arguments, timeout: 60)
                expectCleanFailure(r, mentions: [input, says], runDir: dir + "/run")
                #expect(r.status == 66, "\(arguments): \(r.status) \(r.stderr)")
            }
        }
    }

    @Test func malformedSplits() throws {
        let dir = try makeTemporaryDirectory(prefix: "bad")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func file(_ name: String, _ body: (HDF5File) throws -> Void) throws -> String {
            let path = dir + "/" + name
            let f = try HDF5File.create(path)
            try body(f)
            try f.close()
            return path
        }
        let ones = [UInt8](repeating: 1, count: 96 * 16)
        let noTrain = try file("notrain.h5") { f in try ones.withUnsafeBufferPointer { try f.writeUInt8("/valid", $0, shape: [96, 16]) } }
        expectCleanFailure(try train(noTrain, dir), mentions: ["notrain.h5", "/train", "missing"], runDir: dir + "/run")
        let floats = try file("float.h5") { f in try f.writeFloats("/train", [Float](repeating: 1, count: 96 * 16), shape: [96, 16]) }
        expectCleanFailure(try train(floats, dir), mentions: ["float.h5", "/train", "float32", "uint8"], runDir: dir + "/run")
        let flat = try file("rank1.h5") { f in try ones.withUnsafeBufferPointer { try f.writeUInt8("/train", $0, shape: [96 * 16]) } }
        expectCleanFailure(try train(flat, dir), mentions: ["rank1.h5", "/train", "rank is 1"], runDir: dir + "/run")
        var twos = ones
        twos[5 * 16 + 3] = 2
        twos[9 * 16] = 255
        let nonBinary = try file("nonbinary.h5") { f in try twos.withUnsafeBufferPointer { try f.writeUInt8("/train", $0, shape: [96, 16]) } }
        expectCleanFailure(try train(nonBinary, dir), mentions: ["nonbinary.h5", "/train", "2 values are not 0/1", "first in row 5"],
                           runDir: dir + "/run")
        let empty = try file("empty.h5") { f in try [UInt8]().withUnsafeBufferPointer { try f.writeUInt8("/train", $0, shape: [0, 16]) } }
        expectCleanFailure(try train(empty, dir), mentions: ["empty.h5", "/train", "zero rows"], runDir: dir + "/run")
        let few = try file("few.h5") { f in try ones.withUnsafeBufferPointer { try f.writeUInt8("/train", UnsafeBufferPointer(rebasing: $0[0..<(4 * 16)]), shape: [4, 16]) } }
        expectCleanFailure(try train(few, dir), mentions: ["few.h5", "/train has 4 rows"], runDir: dir + "/run")
    }

    @Test func checkpointDoesNotMatchData() throws {
        let dir = try makeTemporaryDirectory(prefix: "bad")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeToyDataset(dir + "/toy.h5")
        try writeToyDataset(dir + "/wide.h5", width: 20)
        let r = try train(dir + "/toy.h5", dir, ["--no-final-eval"])
        #expect(r.status == 0, "\(r.stderr)")
        let e = try bsvi(["eval", dir + "/run/final.h5", "--data", dir + "/wide.h5", "--samples", "5"])
        expectCleanFailure(e, mentions: ["wide.h5", "20 pixels", "input_dim is 16"])
    }

    @Test("invalid flags", arguments: [
        (["--method", "hmc"], "hmc"), (["--k=-1"], "--k"), (["--batch-size", "0"], "--batch-size"),
        (["--lr=-0.1"], "--lr"), (["--svi-lr=-1"], "--svi-lr"), (["--eval-samples", "0"], "--eval-samples"),
    ])
    func invalidFlags(flags: [String], mention: String) throws {
        let dir = try makeTemporaryDirectory(prefix: "bad")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeToyDataset(dir + "/toy.h5")
        expectCleanFailure(try train(dir + "/toy.h5", dir, flags), mentions: [mention], runDir: dir + "/run")
    }

    @Test("under mpirun a batch smaller than the number of ranks is refused once, by rank 0, before MPI starts")
    func batchSmallerThanRanks() throws {
        let dir = try makeTemporaryDirectory(prefix: "bad")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeToyDataset(dir + "/toy.h5")
        let r = try mpirunBSVI(ranks: 3, ["train", "--data", dir + "/toy.h5", "--run-dir", dir + "/run", "--batch-size", "2"] + tinyModel,
                               timeout: 60)
        #expect(r.status != 0 && !r.timedOut)
        #expect(r.stderr.components(separatedBy: "invalid --batch-size: 2 is smaller than the 3 ranks").count == 2, "\(r.stderr)")
        #expect(r.stderr.contains("use --batch-size 3 or more"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/run"))
    }

    @Test func runDirectoryIsAFile() throws {
        let dir = try makeTemporaryDirectory(prefix: "bad")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeToyDataset(dir + "/toy.h5")
        try "x".write(toFile: dir + "/run", atomically: true, encoding: .utf8)
        let r = try train(dir + "/toy.h5", dir)
        expectCleanFailure(r, mentions: ["--run-dir", "is a file"])
        #expect(try String(contentsOfFile: dir + "/run", encoding: .utf8) == "x")
        // Under mpirun rank 0 alone says it, and every rank leaves cleanly: every rank used to
        // print it, then MPI_Abort's banner.
        let ranks = try mpirunBSVI(ranks: 2, ["train", "--data", dir + "/toy.h5", "--run-dir", dir + "/run", "--batch-size", "8",
                                              "--max-steps", "2"] + tinyModel, timeout: 120)
        #expect(ranks.status == 64 && !ranks.timedOut, "\(ranks.status): \(ranks.stderr)")
        #expect(ranks.stderr.components(separatedBy: "is a file").count == 2 && ranks.stderr.contains("rank 0: invalid --run-dir"), "\(ranks.stderr)")
        #expect(!ranks.stderr.contains("rank 1:") && !ranks.stderr.contains("MPI_ABORT"), "\(ranks.stderr)")
        #expect(try String(contentsOfFile: dir + "/run", encoding: .utf8) == "x")
    }
}
