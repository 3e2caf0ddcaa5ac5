import BSVIStorage
import Foundation

/// Every rank's per-step timings of a lockstep run, as `bench` records them: each step's work
/// (from leaving the last allreduce to entering this one) and its time in the allreduce, in ms.
/// Gathered to every rank after the timed steps; LockstepSplit summarises them, and
/// `bench --step-times FILE.csv` writes them out, so a cluster's slow node or a host's spells of
/// slow steps can be read step by step.
public struct RankStepTimes: Equatable {
    /// work[r][s] and allreduce[r][s]: rank r's work before step s's allreduce and its time in it;
    /// at least one rank, every rank with the same number of steps.
    public let work: [[Double]]
    public let allreduce: [[Double]]

    public init(work: [[Double]], allreduce: [[Double]]) {
        let steps = work.first?.count ?? 0
        precondition(!work.isEmpty && work.count == allreduce.count
                         && (work + allreduce).allSatisfy { $0.count == steps }, "one series per rank, all of one length")
        self.work = work
        self.allreduce = allreduce
    }

    /// From an allgather of every rank's work series followed by its allreduce series, rank 0's first.
    public init(gathered: [Double], ranks: Int) {
        let perRank = gathered.count / ranks, steps = perRank / 2
        let series = (0..<ranks).map { r in Array(gathered[(r * perRank)..<((r + 1) * perRank)]) }
        self.init(work: series.map { Array($0[0..<steps]) }, allreduce: series.map { Array($0[steps...]) })
    }

    /// The same series without the first step (unchanged when there is only one).
    public var droppingFirstStep: RankStepTimes {
        guard (work.first?.count ?? 0) > 1 else { return self }
        return RankStepTimes(work: work.map { Array($0.dropFirst()) }, allreduce: allreduce.map { Array($0.dropFirst()) })
    }

    /// This rank's series in the layout `init(gathered:ranks:)` reads.
    public static func gatherable(work: [Double], allreduce: [Double]) -> [Double] { work + allreduce }

    public static let csvHeader = "step,rank,work_ms,allreduce_ms"

    /// One row per step and rank (steps counted from 1, the first timed step), step by step;
    /// every number as Swift prints a Double, so it reads back exactly.
    public var csv: String {
        var lines = [Self.csvHeader]
        for s in 0..<(work.first?.count ?? 0) {
            for r in work.indices { lines.append("\(s + 1),\(r),\(work[r][s]),\(allreduce[r][s])") }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Writes `csv` to `path` atomically (AtomicFile), replacing any older file.
    public func write(to path: String) throws {
        let text = csv
        try AtomicFile.write(to: path) { temporary in
            guard FileManager.default.createFile(atPath: temporary, contents: Data(text.utf8)) else {
                throw StorageError(file: path, problem: "cannot create \(temporary): \(String(cString: strerror(errno)))",
                                   fix: "choose a writable folder", kind: .cannotCreateOutput)
            }
        }
    }
}
