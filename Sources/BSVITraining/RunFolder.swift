import Foundation

/// What a --run-dir already holds, as far as `--resume auto` cares: whether a run ever
/// recorded anything there. A folder that does not exist, or holds no checkpoint file, no
/// final.h5 and no metrics row (metrics.csv absent or only its header: the run stopped before
/// its first epoch or checkpoint), never started — `--resume auto` starts it fresh. Anything
/// else is an earlier run.
struct RunFolder {
    let path: String
    let checkpointFiles: Int
    let hasFinalCheckpoint: Bool
    let metricRows: Int
    /// The largest step of metrics.csv's rows (0 without rows).
    let lastMetricsStep: Int

    init(path: String, store: CheckpointStore) {
        self.path = path
        checkpointFiles = store.list().count
        hasFinalCheckpoint = FileManager.default.fileExists(atPath: (path as NSString).appendingPathComponent("final.h5"))
        metricRows = MetricsLog.recordCount(atPath: (path as NSString).appendingPathComponent("metrics.csv"))
        lastMetricsStep = MetricsLog.lastStep(atPath: (path as NSString).appendingPathComponent("metrics.csv")) ?? 0
    }

    var neverStarted: Bool { checkpointFiles == 0 && !hasFinalCheckpoint && metricRows == 0 }

    /// Rows, but no checkpoint file and no final.h5, and no row after the step of the run's
    /// first checkpoint: the run stopped (killed, or that checkpoint could not be written)
    /// before it saved anything to continue from. Rows of later steps show that checkpoints
    /// existed and were lost: a person decides then.
    func stoppedBeforeFirstCheckpoint(_ schedule: TrainingSchedule) -> Bool {
        checkpointFiles == 0 && !hasFinalCheckpoint && metricRows > 0 && lastMetricsStep <= schedule.firstCheckpointStep
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
