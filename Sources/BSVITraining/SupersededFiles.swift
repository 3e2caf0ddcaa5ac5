import BSVIStorage
import Foundation

/// A run resumed from an earlier step than its newest checkpoint (`--resume …/ckpt-20.h5` when
/// ckpt-60 exists) abandons what came after: left in place, ckpt-60 would outrank every checkpoint
/// the continued run writes, so retention would delete those and the next `--resume auto` would
/// pick up the abandoned run. Its checkpoints after the step, with its final.h5 and
/// summary.json (and a copy of metrics.csv), move into `<run-dir>/superseded-<UTC time>/` —
/// kept, out of the way.
enum SupersededFiles {
    /// Moves them (rank 0, with the run folder locked); returns what it says about it, or nil
    /// when there was nothing to move.
    static func setAside(after step: Int, store: CheckpointStore, runDirectory: String) throws -> String? {
        let later = store.list().filter { $0.step > step }
        let finalPath = (runDirectory as NSString).appendingPathComponent("final.h5")
        let fm = FileManager.default
        // A final.h5 of another step is another branch's end, even with no later checkpoint left.
        let foreignFinal = fm.fileExists(atPath: finalPath) && (try? CheckpointFile.read(finalPath))?.step != step
        guard !later.isEmpty || foreignFinal else { return nil }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        let base = (runDirectory as NSString).appendingPathComponent("superseded-\(formatter.string(from: Date()))")
        var folder = base
        var n = 1
        while fm.fileExists(atPath: folder) {  // a second resume within the same second
            n += 1
            folder = "\(base)-\(n)"
        }
        let runFiles = ["final.h5", "summary.json"].map { (runDirectory as NSString).appendingPathComponent($0) }.filter { fm.fileExists(atPath: $0) }
        // metrics.csv stays (the continued run keeps its rows up to the step); a copy keeps the
        // abandoned rows after it, which the resume then removes from the run's own file.
        let metrics = (runDirectory as NSString).appendingPathComponent("metrics.csv")
        do {
            try fm.createDirectory(atPath: folder, withIntermediateDirectories: true)
            for path in later.map(\.path) + runFiles {
                try fm.moveItem(atPath: path, toPath: (folder as NSString).appendingPathComponent((path as NSString).lastPathComponent))
            }
            if fm.fileExists(atPath: metrics) { try fm.copyItem(atPath: metrics, toPath: (folder as NSString).appendingPathComponent("metrics.csv")) }
        } catch {
            throw TrainingError.cannotWrite(file: folder, problem: "cannot move the abandoned run's later checkpoints aside (\(error.localizedDescription)); "
                                            + "check that the run folder is writable, or move them away yourself")
        }
        let names = later.map { ($0.path as NSString).lastPathComponent } + runFiles.map { ($0 as NSString).lastPathComponent }
        return "resuming from step \(step): the files of the branch it abandons (\(names.joined(separator: ", "))) moved to \(folder), with a copy of metrics.csv"
    }
}
