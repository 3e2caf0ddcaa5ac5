import BSVI
import Foundation

/// <run-dir>/metrics.csv, appended by rank 0: one `train` row per epoch, one `eval` row per
/// evaluation and one `resume` row each time a run continues from a checkpoint. Every row
/// names the number of ranks that produced it (`ranks`), so a run continued on another
/// allocation shows where its world size changed. Resumed runs append to the same file.
public final class MetricsLog {
    public static let header = "kind,epoch,step,split,examples,samples,bound,log_likelihood,elbo,elbo_refined,amortization_gap,examples_per_s,skipped_steps,wall_seconds,resident_mib,ranks"
    /// The header before the `ranks` column; such files gain the column (empty in old rows) when a run resumes into them.
    static let headerWithoutRanks = "kind,epoch,step,split,examples,samples,bound,log_likelihood,elbo,elbo_refined,amortization_gap,examples_per_s,skipped_steps,wall_seconds,resident_mib"
    public let path: String
    let worldSize: Int

    public init(path: String, worldSize: Int) throws {
        self.path = path
        self.worldSize = worldSize
        func cannotWrite() -> TrainingError {
            .invalidConfiguration(flag: "--run-dir", problem: "cannot create \(path); check that the folder is writable")
        }
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: Data((Self.header + "\n").utf8)) else { throw cannotWrite() }
        } else if let text = try? String(contentsOfFile: path, encoding: .utf8), text.hasPrefix(Self.headerWithoutRanks + "\n") {
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            let migrated = [Self.header] + lines.dropFirst().map { $0.isEmpty ? "" : $0 + "," }
            do { try migrated.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8) } catch { throw cannotWrite() }
        }
    }

    /// Data rows (not the header) in a metrics.csv; 0 if there is no such file.
    public static func recordCount(atPath path: String) -> Int { rowFacts(atPath: path).rows }

    /// What a metrics.csv's rows show of its run: how many there are, the latest epoch they
    /// reach, and whether the run was ever resumed (a `resume` row).
    public struct RowFacts: Equatable {
        public var rows = 0
        public var latestEpoch = 0
        public var resumed = false
    }

    /// A metrics.csv as its header's column names and each data row's fields; nil when the file
    /// cannot be read or is empty.
    static func table(atPath path: String) -> (columns: [Substring], rows: [[Substring]])? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        let lines = text.split(separator: "\n")
        guard let header = lines.first else { return nil }
        func fields(_ line: Substring) -> [Substring] { line.split(separator: ",", omittingEmptySubsequences: false) }
        return (fields(header), lines.dropFirst().map(fields))
    }

    public static func rowFacts(atPath path: String) -> RowFacts {
        var facts = RowFacts()
        guard let (columns, rows) = table(atPath: path) else { return facts }
        let kind = columns.firstIndex(of: "kind"), epoch = columns.firstIndex(of: "epoch")
        for fields in rows {
            facts.rows += 1
            if let kind, kind < fields.count, fields[kind] == "resume" { facts.resumed = true }
            // A row whose epoch cannot be read counts as late: it cannot prove an early stop.
            let rowEpoch = epoch.flatMap { $0 < fields.count ? Int(fields[$0]) : nil } ?? Int.max
            facts.latestEpoch = max(facts.latestEpoch, rowEpoch)
        }
        return facts
    }

    /// Whether the file holds an epoch's partial training row at `step`: the row a run that
    /// ended there (`--max-steps`) wrote when it finished. A run stopped by a signal at that step
    /// never finished, so a resume with no steps left finds none and writes it.
    public func hasPartialEpochRow(atStep step: Int) -> Bool {
        guard let (columns, rows) = Self.table(atPath: path),
              let stepColumn = columns.firstIndex(of: "step"), let split = columns.firstIndex(of: "split") else { return false }
        return rows.contains { fields in
            fields.count > max(stepColumn, split) && Int(fields[stepColumn]) == step
                && fields[split] == Substring(Self.partialEpochSplit)
        }
    }

    /// Appends one row. A failure (disk full, the file gone) is an error of the run, not a lost
    /// row; the throwing FileHandle calls are used because the older `write(_:)` traps instead.
    private func append(_ fields: [String]) throws {
        let row = Data(((fields + ["\(worldSize)"]).joined(separator: ",") + "\n").utf8)
        do {
            guard let h = FileHandle(forWritingAtPath: path) else {
                throw TrainingError.cannotWrite(file: path, problem: "cannot open metrics.csv to append a row; check that the run folder still exists and is writable")
            }
            try h.seekToEnd()
            try h.write(contentsOf: row)
            try h.close()  // where a network file system reports a full disk or quota
        } catch let error as TrainingError {
            throw error
        } catch {
            throw TrainingError.writeFailed(file: path, problem: "cannot append a row to metrics.csv (\(error.localizedDescription)); free disk space or choose another --run-dir, then resume with --resume auto")
        }
    }

    private static func f(_ x: Double) -> String { String(numbers: "%.6f", x) }

    /// Rank 0's resident memory when the row is written (to show memory does not grow over epochs).
    private static func residentField() -> String { ResidentMemory.currentMiB.map { String(format: "%.1f", $0) } ?? "" }

    /// An epoch's training sums, as means per example.
    /// The split of a training row for an epoch the run ended in (`--max-steps` short of the
    /// epoch's end): its steps so far. A resume from that step removes it (the epoch goes on).
    public static let partialEpochSplit = "train_partial"

    /// `examplesPerSecond` is nil (an empty field) when this process timed none of the epoch's
    /// examples: a resume with no steps left writes the row its stopped predecessor did not.
    public func recordEpoch(epoch: Int, step: Int, sums: ObjectiveSums, examplesPerSecond: Double?, skippedSteps: Int, wallSeconds: Double,
                            partial: Bool = false) throws {
        let elbo = sums.mean(\.elboInitial), elboRefined = sums.mean(\.elboRefined)
        try append(["train", "\(epoch)", "\(step)", partial ? Self.partialEpochSplit : "train", "\(sums.examples)", "", Self.f(sums.mean(\.bound)), "", Self.f(elbo),
                Self.f(elboRefined), Self.f(elboRefined - elbo), examplesPerSecond.map { String(format: "%.1f", $0) } ?? "", "\(skippedSteps)", String(format: "%.3f", wallSeconds),
                Self.residentField()])
    }

    public func recordEvaluation(_ r: EvaluationResult, epoch: Int, step: Int, skippedSteps: Int, wallSeconds: Double) throws {
        try append(["eval", "\(epoch)", "\(step)", r.split, "\(r.examples)", "\(r.samples)", "", Self.f(r.logLikelihood),
                Self.f(r.elbo), Self.f(r.elboRefined), Self.f(r.amortizationGap),
                String(format: "%.1f", Double(r.examples) / max(r.seconds, 1e-9)), "\(skippedSteps)", String(format: "%.3f", wallSeconds),
                Self.residentField()])
    }

    /// A run continues at `step` (the epoch it belongs to) on this log's world size; the
    /// checkpoint was written by `previousWorldSize` ranks (in `split`, e.g. "from 4 ranks").
    public func recordResume(epoch: Int, step: Int, skippedSteps: Int, previousWorldSize: Int) throws {
        try append(["resume", "\(epoch)", "\(step)", "from \(previousWorldSize) ranks", "", "", "", "", "", "", "", "", "\(skippedSteps)",
                "0.000", Self.residentField()])
    }
}
