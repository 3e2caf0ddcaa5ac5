@testable import BSVITraining
import BSVIStorage
import BSVI
import Foundation
import Testing

/// After a resume, metrics.csv holds each step's rows once: `discardRows(after:history:)`.
@Suite("metrics.csv after a resume")
struct MetricsResumeTests {
    static func scratchFile() throws -> String {
        let dir = NSTemporaryDirectory() + "bsvi-metrics-resume-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir + "/metrics.csv"
    }

    static func lines(_ path: String) throws -> [String] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
    }

    /// (kind, step, split) of each data row.
    static func rows(_ path: String) throws -> [String] {
        let all = try lines(path)
        let header = all[0].split(separator: ",").map(String.init)
        let kind = header.firstIndex(of: "kind")!, step = header.firstIndex(of: "step")!, split = header.firstIndex(of: "split")!
        return all.dropFirst().map { line in
            let f = line.split(separator: ",", omittingEmptySubsequences: false)
            return "\(f[kind])@\(f[step]):\(f[split])"
        }
    }

    static func evaluation(_ split: String) -> EvaluationResult {
        EvaluationResult(split: split, examples: 10, samples: 5, proposal: "encoder", refinementSteps: 0,
                         logLikelihood: -90, logLikelihoodSE: 1, elbo: -95, elboSE: 1, elboRefined: -94, elboRefinedSE: 1,
                         essFractionMean: 0.5, essFractionP05: 0.1, maxWeightMean: 0.2, seconds: 1)
    }

    static func record(_ split: String, step: Int) -> MetricRecord {
        MetricRecord(step: step, epoch: step / 5, split: split, examples: 10, samples: 5, logLikelihood: -90, elbo: -95, elboRefined: -94)
    }

    /// Three epochs of 5 steps with a validation after each, as a run killed after step 15
    /// (before its checkpoint) left them; the newest checkpoint is at step 10.
    static func logOfKilledRun() throws -> MetricsLog {
        let log = try MetricsLog(path: try scratchFile(), worldSize: 2)
        for epoch in 1...3 {
            try log.recordEpoch(epoch: epoch, step: 5 * epoch, sums: ObjectiveSums(examples: 50, bound: -100.0 * 50, elboInitial: -99.0 * 50, elboRefined: -98.0 * 50),
                            examplesPerSecond: 10, skippedSteps: 0, wallSeconds: Double(epoch))
            try log.recordEvaluation(evaluation("valid"), epoch: epoch, step: 5 * epoch, skippedSteps: 0, wallSeconds: Double(epoch))
        }
        return log
    }

    @Test("rows of steps after the checkpoint go, rows at or before it stay byte for byte; the resume row follows them")
    func rowsAfterTheCheckpointGo() throws {
        let log = try Self.logOfKilledRun()
        defer { try? FileManager.default.removeItem(atPath: (log.path as NSString).deletingLastPathComponent) }
        let before = try Self.lines(log.path)
        let removed = try log.discardRows(after: 10, history: [Self.record("valid", step: 5), Self.record("valid", step: 10)])
        #expect(removed == 2)
        #expect(try Self.lines(log.path) == Array(before.prefix(5)))
        try log.recordResume(epoch: 2, step: 10, skippedSteps: 0, previousWorldSize: 2)
        #expect(try Self.rows(log.path) == ["train@5:train", "eval@5:valid", "train@10:train", "eval@10:valid", "resume@10:from 2 ranks"])
        // The run trains step 11 on: its rows come after the resume row, each step once.
        try log.recordEpoch(epoch: 3, step: 15, sums: ObjectiveSums(examples: 50, bound: -100.0 * 50, elboInitial: -99.0 * 50, elboRefined: -98.0 * 50),
                        examplesPerSecond: 10, skippedSteps: 0, wallSeconds: 3)
        #expect(try Self.rows(log.path).filter { $0.hasPrefix("train@15") }.count == 1)
    }

    @Test("resume rows: one after the checkpoint goes with its step's rows, one at or before it stays")
    func earlierResumeRows() throws {
        let log = try Self.logOfKilledRun()
        defer { try? FileManager.default.removeItem(atPath: (log.path as NSString).deletingLastPathComponent) }
        try log.recordResume(epoch: 1, step: 5, skippedSteps: 0, previousWorldSize: 4)
        try log.recordResume(epoch: 3, step: 15, skippedSteps: 0, previousWorldSize: 2)
        try log.discardRows(after: 5, history: [Self.record("valid", step: 5)])
        #expect(try Self.rows(log.path) == ["train@5:train", "eval@5:valid", "resume@5:from 4 ranks"])
    }

    @Test("an evaluation row at the checkpoint's own step stays only if the checkpoint records it (the final test evaluation)")
    func finalEvaluationAtTheCheckpointStep() throws {
        let log = try Self.logOfKilledRun()
        defer { try? FileManager.default.removeItem(atPath: (log.path as NSString).deletingLastPathComponent) }
        try log.recordEvaluation(Self.evaluation("test"), epoch: 3, step: 15, skippedSteps: 0, wallSeconds: 4)
        let history = [5, 10, 15].map { Self.record("valid", step: $0) }
        // The checkpoint that records the test evaluation: nothing to remove, the file is not rewritten.
        let inode = try FileManager.default.attributesOfItem(atPath: log.path)[.systemFileNumber] as? Int
        #expect(try log.discardRows(after: 15, history: history + [Self.record("test", step: 15)]) == 0)
        #expect(try FileManager.default.attributesOfItem(atPath: log.path)[.systemFileNumber] as? Int == inode)
        // The checkpoint written before it (killed before the second one): the test row goes, the run evaluates again.
        #expect(try log.discardRows(after: 15, history: history) == 1)
        #expect(try Self.rows(log.path).last == "eval@15:valid")
    }

    @Test("an old metrics.csv without the ranks column: migrated on opening, then trimmed the same way")
    func oldFileWithoutRanks() throws {
        let path = try Self.scratchFile()
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        let oldHeader = MetricsLog.header.split(separator: ",").dropLast().joined(separator: ",")
        let oldRows = [5, 10, 15].map { "train,\($0 / 5),\($0),train,50,,-100.0,,-100.0,-100.0,0.0,1000.0,0,10.0,80.0" }
        try ([oldHeader] + oldRows).map { $0 + "\n" }.joined().write(toFile: path, atomically: true, encoding: .utf8)
        let log = try MetricsLog(path: path, worldSize: 3)
        #expect(try log.discardRows(after: 10, history: []) == 1)
        #expect(try Self.lines(path) == [MetricsLog.header, oldRows[0] + ",", oldRows[1] + ","])
    }

    @Test("a row cut short by a crash mid-append is removed, so the next row starts on its own line")
    func tornRow() throws {
        let log = try Self.logOfKilledRun()
        defer { try? FileManager.default.removeItem(atPath: (log.path as NSString).deletingLastPathComponent) }
        let handle = try #require(FileHandle(forWritingAtPath: log.path))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("train,4,20,tra".utf8))
        try handle.close()
        #expect(try log.discardRows(after: 15, history: [15].map { Self.record("valid", step: $0) }) == 1)
        try log.recordResume(epoch: 3, step: 15, skippedSteps: 0, previousWorldSize: 2)
        let lines = try Self.lines(log.path)
        #expect(lines.allSatisfy { $0.split(separator: ",", omittingEmptySubsequences: false).count == lines[0].split(separator: ",").count })
        #expect(try Self.rows(log.path).suffix(2) == ["eval@15:valid", "resume@15:from 2 ranks"])
    }

    @Test("a process killed half-way through the rewrite leaves the old file; the next resume clears its temp file")
    func crashMidRewrite() async throws {
        let log = try Self.logOfKilledRun()
        let path: String = log.path, folder = (log.path as NSString).deletingLastPathComponent
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let before = try String(contentsOfFile: path, encoding: .utf8)
        await #expect(processExitsWith: .signal(SIGKILL)) { [path = path as String] in
            let log = try MetricsLog(path: path, worldSize: 2)
            _ = try log.discardRows(after: 5, history: [], midWrite: { kill(getpid(), SIGKILL) })
        }
        #expect(try String(contentsOfFile: path, encoding: .utf8) == before)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasPrefix(".metrics.csv.tmp-") }
        #expect(leftovers.count == 1, "the child did not die mid-write: \(leftovers)")

        #expect(try log.discardRows(after: 5, history: [Self.record("valid", step: 5)]) == 4)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder) == ["metrics.csv"])
        #expect(try Self.rows(path) == ["train@5:train", "eval@5:valid"])
    }
}
