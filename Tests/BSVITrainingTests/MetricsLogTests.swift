import BSVITraining
import BSVI
import Foundation
import Testing

@Suite("metrics.csv")
struct MetricsLogTests {
    func scratchFile() throws -> String {
        let dir = NSTemporaryDirectory() + "bsvi-metrics-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir + "/metrics.csv"
    }

    func rows(_ path: String) throws -> [[String]] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
            .map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
    }

    @Test("every row names its world size; a resume row records the change")
    func ranksColumnAndResumeRow() throws {
        let path = try scratchFile()
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        try MetricsLog(path: path, worldSize: 4)
            .recordEpoch(epoch: 1, step: 9, sums: ObjectiveSums(examples: 90, bound: -1.0 * 90, elboInitial: -1.0 * 90, elboRefined: -1.0 * 90), examplesPerSecond: 1, skippedSteps: 0, wallSeconds: 1)
        let resumed = try MetricsLog(path: path, worldSize: 2)
        try resumed.recordResume(epoch: 1, step: 12, skippedSteps: 0, previousWorldSize: 4)
        let r = try rows(path)
        let header = r[0]
        #expect(header.last == "ranks" && r.allSatisfy { $0.count == header.count }, "\(r)")
        #expect(r[1][0] == "train" && r[1].last == "4")
        #expect(r[2][0] == "resume" && r[2][header.firstIndex(of: "step")!] == "12"
                && r[2][header.firstIndex(of: "split")!] == "from 4 ranks" && r[2].last == "2")
        #expect(MetricsLog.recordCount(atPath: path) == 2)
        #expect(MetricsLog.recordCount(atPath: path + ".absent") == 0)
    }

    @Test("a metrics.csv written before the ranks column gains it (empty in its old rows) when a run resumes into it")
    func oldFileGainsTheColumn() throws {
        let path = try scratchFile()
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        let oldHeader = MetricsLog.header.split(separator: ",").dropLast().joined(separator: ",")
        let oldRow = "train,1,500,train,50000,,-100.0,,-100.0,-100.0,0.0,1000.0,0,10.0,80.0"
        try (oldHeader + "\n" + oldRow + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        try MetricsLog(path: path, worldSize: 3).recordResume(epoch: 1, step: 500, skippedSteps: 0, previousWorldSize: 2)
        let r = try rows(path)
        #expect(r.map { $0.joined(separator: ",") } == [MetricsLog.header, oldRow + ",", r[2].joined(separator: ",")])
        #expect(r.allSatisfy { $0.count == r[0].count } && r[2].last == "3")
    }
    @Test("a row that cannot be written (disk full, the file gone) is an error naming metrics.csv, not a lost row or a trap")
    func failedAppendThrows() throws {
        let path = try scratchFile()
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        let log = try MetricsLog(path: path, worldSize: 1)
        let sums = ObjectiveSums(examples: 10, bound: -10, elboInitial: -10, elboRefined: -10)
        // /dev/full accepts the open and fails every write with ENOSPC, as a full disk does.
        try FileManager.default.removeItem(atPath: path)
        try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: "/dev/full")
        do {
            try log.recordEpoch(epoch: 1, step: 1, sums: sums, examplesPerSecond: 1, skippedSteps: 0, wallSeconds: 1)
            Issue.record("a write to a full device succeeded")
        } catch let error as TrainingError {
            #expect(error.exitStatus == .ioError)
            #expect("\(error)".contains(path) && "\(error)".contains("metrics.csv") && "\(error)".contains("--resume auto"), "\(error)")
        }
        try FileManager.default.removeItem(atPath: path)
        #expect(throws: TrainingError.self) {
            try log.recordResume(epoch: 1, step: 1, skippedSteps: 0, previousWorldSize: 1)
        }
    }
}
