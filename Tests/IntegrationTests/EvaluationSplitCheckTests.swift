import BSVIStorage
import Foundation
import Testing

/// The splits a run will evaluate are checked at start-up (values 0/1, every chunk's checksum),
/// limited to the rows evaluation will use, so a bad /valid or /test row stops the run before
/// training, not after it.
@Suite("Evaluation splits checked at start-up", .serialized)
struct EvaluationSplitCheckTests {
    static let width = 16

    /// Random 0/1 rows (a different stream per split, so each split's bytes are unique in the file).
    static func bits(_ rows: Int, seed: UInt64) -> [UInt8] {
        var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        return (0..<(rows * width)).map { _ in
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            return UInt8(state >> 63)
        }
    }

    /// A dataset of 96/24/20 rows whose /valid and /test are `valid` and `test` (default: random bits).
    static func write(_ path: String, valid: [UInt8]? = nil, test: [UInt8]? = nil) throws {
        try BinaryDatasetWriter.write(to: path, splits: [
            .init(name: .train, rows: 96, width: width, values: bits(96, seed: 1)),
            .init(name: .valid, rows: 24, width: width, values: valid ?? bits(24, seed: 2)),
            .init(name: .test, rows: 20, width: width, values: test ?? bits(20, seed: 3)),
        ], imageHeight: 4, imageWidth: 4, source: "test")
    }

    /// /test with a 7 in row 15.
    static func testWithBadRow15() -> [UInt8] {
        var test = bits(20, seed: 3)
        test[15 * width + 3] = 7
        return test
    }

    func train(_ data: String, _ runDir: String, _ extra: [String] = []) throws -> CommandResult {
        try bsvi(["train", "--data", data, "--run-dir", runDir, "--batch-size", "8", "--epochs", "2"] + tinyModel + extra, timeout: 120)
    }

    /// Status 65, the message, and nothing trained or written.
    func expectRefusedBeforeTraining(_ r: CommandResult, runDir: String, mentions: [String],
                                     sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(r.status == 65 && !r.signaled && !r.timedOut, "status \(r.status): \(r.stderr)", sourceLocation: sourceLocation)
        for m in mentions { #expect(r.stderr.contains(m), "stderr should contain '\(m)': \(r.stderr)", sourceLocation: sourceLocation) }
        #expect(!r.stdout.contains("epoch 1 done"), "trained before refusing: \(r.stdout)", sourceLocation: sourceLocation)
        #expect(!FileManager.default.fileExists(atPath: runDir), "nothing may be written to \(runDir)", sourceLocation: sourceLocation)
    }

    @Test("a value that is not 0/1 in /test stops the run before the first epoch; --no-final-eval skips the check; --eval-limit limits it")
    func badTestValue() throws {
        let dir = try makeTemporaryDirectory(prefix: "evalcheck")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.write(dir + "/badtest.h5", test: Self.testWithBadRow15())
        expectRefusedBeforeTraining(try train(dir + "/badtest.h5", dir + "/run"), runDir: dir + "/run",
                                    mentions: ["badtest.h5: /test: 1 values are not 0/1 (first in row 15)"])
        // Without the final evaluation /test is never read, so it is not checked either.
        let skipped = try train(dir + "/badtest.h5", dir + "/skip", ["--no-final-eval"])
        #expect(skipped.status == 0, "\(skipped.stderr)")
        #expect(FileManager.default.fileExists(atPath: dir + "/skip/final.h5"))
        // Evaluation of the first 15 rows never meets row 15.
        let limited = try train(dir + "/badtest.h5", dir + "/limited", ["--eval-limit", "15"])
        #expect(limited.status == 0, "\(limited.stderr)")
        #expect(limited.stdout.contains("15 examples"), "\(limited.stdout)")
        // …and of the first 16 does.
        expectRefusedBeforeTraining(try train(dir + "/badtest.h5", dir + "/run16", ["--eval-limit", "16"]), runDir: dir + "/run16",
                                    mentions: ["/test: 1 values are not 0/1 (first in row 15)"])
    }

    @Test("a bad /valid row stops a run that evaluates /valid (--eval-every), before training; a run that does not is unaffected")
    func badValidValue() throws {
        let dir = try makeTemporaryDirectory(prefix: "evalcheck")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var valid = Self.bits(24, seed: 2)
        valid[20 * Self.width] = 2
        try Self.write(dir + "/badvalid.h5", valid: valid)
        expectRefusedBeforeTraining(try train(dir + "/badvalid.h5", dir + "/run", ["--eval-every", "1"]), runDir: dir + "/run",
                                    mentions: ["badvalid.h5: /valid: 1 values are not 0/1 (first in row 20)"])
        let r = try train(dir + "/badvalid.h5", dir + "/plain")
        #expect(r.status == 0, "\(r.stderr)")
    }

    @Test("a damaged chunk of /test (its Fletcher32 checksum fails) stops the run before training")
    func damagedTestChunk() throws {
        let dir = try makeTemporaryDirectory(prefix: "evalcheck")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.write(dir + "/data.h5")
        // /test's 320 bytes are stored as they are (one chunk, checksummed, not compressed):
        // turn one 0 into 1, a value still 0/1, so only the checksum can tell.
        var bytes = try Data(contentsOf: URL(fileURLWithPath: dir + "/data.h5"))
        let stored = try #require(bytes.range(of: Data(Self.bits(20, seed: 3))), "/test's bytes not found in the file")
        let zero = try #require(bytes[stored].firstIndex(of: 0))
        bytes[zero] = 1
        try bytes.write(to: URL(fileURLWithPath: dir + "/damaged.h5"))
        expectRefusedBeforeTraining(try train(dir + "/damaged.h5", dir + "/run"), runDir: dir + "/run",
                                    mentions: ["damaged.h5", "/test", "Fletcher32"])
        #expect(try train(dir + "/damaged.h5", dir + "/skip", ["--no-final-eval"]).status == 0)
    }

    @Test("under mpirun the rank whose part of /test holds the bad row reports it and the job ends before any epoch")
    func badTestValueOnOneRank() throws {
        let dir = try makeTemporaryDirectory(prefix: "evalcheck")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.write(dir + "/badtest.h5", test: Self.testWithBadRow15())
        // With P = 2 rank 1 checks rows 10…19 of /test, rank 0 rows 0…9.
        let r = try mpirunBSVI(ranks: 2, ["train", "--data", dir + "/badtest.h5", "--run-dir", dir + "/run", "--batch-size", "8",
                                          "--epochs", "2", "--stall-timeout", "30"] + tinyModel, timeout: 60)
        #expect(r.status != 0 && !r.timedOut)
        #expect(r.seconds < 10, "mpirun took \(r.seconds) s to end")
        let line = try #require(r.stderr.split(separator: "\n").first { $0.hasPrefix("rank 1:") }, "\(r.stderr)")
        #expect(line.contains("badtest.h5: /test: 1 values are not 0/1 (first in row 15)"))
        #expect(!r.stdout.contains("epoch 1 done"), "\(r.stdout)")
        // Rank 0 may have begun the run folder before the abort reached it, but trained nothing.
        let metrics = (try? String(contentsOfFile: dir + "/run/metrics.csv", encoding: .utf8)) ?? ""
        #expect(!metrics.contains("\ntrain,"), "an epoch was recorded: \(metrics)")
        #expect(metrics.split(separator: "\n").count <= 1, "only the header may be there: \(metrics)")
        let checkpoints = (try? FileManager.default.contentsOfDirectory(atPath: dir + "/run/checkpoints")) ?? []
        #expect(checkpoints.isEmpty, "\(checkpoints)")
    }
}
