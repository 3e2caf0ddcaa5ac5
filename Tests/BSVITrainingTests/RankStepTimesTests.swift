import BSVITraining
import Foundation
import Testing

@Suite("Every rank's per-step times (bench --step-times)")
struct RankStepTimesTests {
    static let times = RankStepTimes(work: [[10, 12.125, 9], [11, 10, 9.000000000000002]],
                                     allreduce: [[1.3, 0.2, 0.5], [0.3, 2.2, 0.5]])

    @Test("the CSV has one row per step and rank, step by step, and its numbers read back exactly")
    func csvRows() throws {
        let lines = Self.times.csv.split(separator: "\n").map(String.init)
        #expect(lines.first == "step,rank,work_ms,allreduce_ms")
        #expect(Array(lines.dropFirst().prefix(2)) == ["1,0,10.0,1.3", "1,1,11.0,0.3"])
        let rows = lines.dropFirst().map { $0.split(separator: ",").map(String.init) }
        #expect(rows.count == 6)
        var work = [[Double]](repeating: [], count: 2), allreduce = work
        for (i, row) in rows.enumerated() {
            #expect(Int(row[0]) == i / 2 + 1 && Int(row[1]) == i % 2)
            work[i % 2].append(try #require(Double(row[2])))
            allreduce[i % 2].append(try #require(Double(row[3])))
        }
        #expect(RankStepTimes(work: work, allreduce: allreduce) == Self.times)
    }

    @Test("written atomically: the file holds the CSV, a missing folder is exit 73 and leaves nothing")
    func writeAndRefuse() throws {
        let dir = NSTemporaryDirectory() + "bsvi-step-times-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/times.csv"
        try "an older file".write(toFile: path, atomically: true, encoding: .utf8)
        try Self.times.write(to: path)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == Self.times.csv)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["times.csv"])
        let missing = dir + "/no-such-folder/times.csv"
        do {
            try Self.times.write(to: missing)
            Issue.record("a file in a missing folder was written")
        } catch {
            #expect(ExitStatus(for: error) == .cannotCreateOutput && "\(error)".contains(missing), "\(error)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["times.csv"])
    }
}
