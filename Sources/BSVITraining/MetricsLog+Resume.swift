import BSVIStorage
import Foundation

extension MetricsLog {
    /// Makes metrics.csv agree with the checkpoint a run resumes from, before the run appends
    /// anything, so that every step's rows appear once. A run killed after its last checkpoint
    /// had written rows for steps it will now train again; those rows go. Kept: the header,
    /// every row at or before `step`, except an `eval` row at `step` itself that `history` (the
    /// checkpoint's evaluation history) does not record — the final test evaluation's row is
    /// written after the checkpoint of its step and before the checkpoint that records it. A row
    /// cut short by a crash mid-append goes too, and, when the run `continuesEpoch` (it trains
    /// on from `step`, inside an epoch), the `train_partial` row of that epoch at `step`: its full
    /// row, or a new partial one, follows. The rewrite is atomic (`AtomicFile`): a crash during
    /// it leaves the old file; a temp file such a crash left behind is removed first. Returns how
    /// many rows were removed; the file is not touched when there is none.
    @discardableResult
    public func discardRows(after step: Int, history: [MetricRecord], continuesEpoch: Bool = false) throws -> Int {
        try discardRows(after: step, history: history, continuesEpoch: continuesEpoch, midWrite: {})
    }

    /// `midWrite` runs when half of the new file is written (tests kill the process there).
    func discardRows(after step: Int, history: [MetricRecord], continuesEpoch: Bool = false, midWrite: () -> Void) throws -> Int {
        AtomicFile.removeStaleTemporaryFiles(of: path)  // a rewrite killed half-way; the caller holds the folder's lock
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw StorageError(file: path, problem: "cannot be read to remove the rows after step \(step): \(systemReason(error))",
                               fix: "check the file's permissions, or move it away to start a new one", kind: .ioError)
        }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: true)
        guard let header = lines.first else { return 0 }
        let columns = header.split(separator: ",", omittingEmptySubsequences: false)
        guard let kind = columns.firstIndex(of: "kind"), let stepColumn = columns.firstIndex(of: "step"),
              let split = columns.firstIndex(of: "split") else {
            throw StorageError(file: path, problem: "the header has no kind, step and split columns, so the rows after step \(step) cannot be found",
                               fix: "move the file away; the run starts a new one", kind: .badData)
        }
        var rows = lines.dropFirst()
        let rowsBefore = rows.count
        let endsCleanly = text.hasSuffix("\n")
        if !endsCleanly, let last = rows.last, last.split(separator: ",", omittingEmptySubsequences: false).count != columns.count {
            rows.removeLast()  // torn by a crash mid-append
        }
        let recordedHere = Set(history.filter { $0.step == step }.map(\.split))
        let kept = rows.filter { row in
            let fields = row.split(separator: ",", omittingEmptySubsequences: false)
            // A row we cannot read is left alone: it is not ours to judge.
            guard fields.count > max(kind, stepColumn, split), let rowStep = Int(fields[stepColumn]) else { return true }
            if rowStep > step { return false }
            // The epoch the run ended in goes on from here: its full row comes at its end.
            if continuesEpoch && rowStep == step && fields[split] == Substring(MetricsLog.partialEpochSplit) { return false }
            return !(rowStep == step && fields[kind] == "eval" && !recordedHere.contains(String(fields[split])))
        }
        let removed = rowsBefore - kept.count
        // A file without its last newline is rewritten even so, or the next row would join that line.
        guard removed > 0 || !endsCleanly else { return 0 }
        let bytes = Array(([header] + kept).map { $0 + "\n" }.joined().utf8)
        try AtomicFile.write(to: path) { temporary in
            guard FileManager.default.createFile(atPath: temporary, contents: nil),
                  let handle = FileHandle(forWritingAtPath: temporary) else {
                throw StorageError(file: temporary, problem: "cannot be created", kind: .cannotCreateOutput)
            }
            defer { try? handle.close() }
            try handle.write(contentsOf: bytes[..<(bytes.count / 2)])
            midWrite()
            try handle.write(contentsOf: bytes[(bytes.count / 2)...])
        }
        return removed
    }
}
