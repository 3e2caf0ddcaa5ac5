import Foundation

/// What a --run-dir already holds, as far as `--resume auto` cares: whether a run ever
/// recorded anything there. A folder that does not exist, or holds no checkpoint file, no
/// final.h5 and no metrics row (metrics.csv absent or only its header: the run stopped before
/// its first epoch or checkpoint), never started — `--resume auto` starts it fresh. Anything
/// else is an earlier run.
struct RunFolder {
    /// The run folder's own files (checkpoints/ is `CheckpointStore`'s), named once.
    static let finalCheckpoint = "final.h5", summary = "summary.json", metricsLog = "metrics.csv"

    /// The run folder's file `name`.
    static func file(_ name: String, in runDirectory: String) -> String { (runDirectory as NSString).appendingPathComponent(name) }

    let path: String
    let checkpointFiles: Int
    let hasFinalCheckpoint: Bool
    let metrics: MetricsLog.RowFacts
    var metricRows: Int { metrics.rows }

    init(path: String, store: CheckpointStore) {
        self.path = path
        checkpointFiles = store.list().count
        hasFinalCheckpoint = FileManager.default.fileExists(atPath: Self.file(Self.finalCheckpoint, in: path))
        metrics = MetricsLog.rowFacts(atPath: Self.file(Self.metricsLog, in: path))
    }

    var neverStarted: Bool { checkpointFiles == 0 && !hasFinalCheckpoint && metricRows == 0 }

    /// Rows of the first epoch only, none of a resume, but no checkpoint file and no final.h5:
    /// a run from the seed that stopped (killed, or its first checkpoint could not be written)
    /// before it saved anything to continue from. Judged from the rows alone, whatever the
    /// command now says. Rows of later epochs show that checkpoints existed and were lost, and a
    /// `resume` row that the run continued another's checkpoint: a person decides then.
    var stoppedBeforeFirstCheckpoint: Bool {
        checkpointFiles == 0 && !hasFinalCheckpoint && metrics.rows > 0 && metrics.latestEpoch <= 1 && !metrics.resumed
    }

    /// What shows an earlier run, for error messages.
    var earlierRunEvidence: String {
        var parts: [String] = []
        if metricRows > 0 { parts.append("metrics.csv with \(metricRows) row(s)") }
        if checkpointFiles > 0 { parts.append("\(checkpointFiles) checkpoint file(s)") }
        if hasFinalCheckpoint { parts.append("final.h5") }
        return parts.joined(separator: ", ")
    }
}
