import BSVIStorage
import Foundation

/// A run resumed from an earlier step than its newest checkpoint (`--resume …/ckpt-20.h5` when
/// ckpt-60 exists) abandons what came after: left in place, ckpt-60 would outrank every checkpoint
/// the continued run writes, so retention would delete those and the next `--resume auto` would
/// pick up the abandoned run. Its checkpoints after the step, with its final.h5 and
/// summary.json (and a copy of metrics.csv), move into `<run-dir>/superseded-<UTC time>/` —
/// kept, out of the way.
enum SupersededFiles {
    /// Moves them (rank 0, with the run folder locked); returns what it says about it and the
    /// folder, or nil when there was nothing to move.
    /// `finalIsTheEnd`: whether final.h5 is the checkpoint's end (`finalIsTheEnd(of:runDirectory:)`).
    static func setAside(after step: Int, finalIsTheEnd: Bool, store: CheckpointStore,
                         runDirectory: String) throws -> (message: String, folder: String)? {
        let later = store.list().filter { $0.step > step }
        // A final.h5 that is not this checkpoint's end is another branch's, even with no later
        // checkpoint left (at another step, or at this step with other parameters).
        let foreignFinal = FileManager.default.fileExists(atPath: finalPath(runDirectory)) && !finalIsTheEnd
        guard !later.isEmpty || foreignFinal else { return nil }
        let folder = newFolder(in: runDirectory)
        let runFiles = existing([RunFolder.finalCheckpoint, RunFolder.summary], in: runDirectory)
        // metrics.csv stays (the continued run keeps its rows up to the step); a copy keeps the
        // abandoned rows after it, which the resume then removes from the run's own file.
        try move(later.map(\.path) + runFiles, copying: existing([RunFolder.metricsLog], in: runDirectory), into: folder,
                 what: "the abandoned run's later checkpoints")
        let names = later.map { ($0.path as NSString).lastPathComponent } + runFiles.map { ($0 as NSString).lastPathComponent }
        return ("resuming from step \(step): the files of the branch it abandons (\(names.joined(separator: ", "))) moved to \(folder), with a copy of metrics.csv",
                folder)
    }

    /// A checkpoint resumed from a superseded-* folder of the run belongs to the branch set aside
    /// there, and so do the rows up to its step: the folder's copy of metrics.csv has them, the
    /// run's own file another branch's. That copy replaces the run's file (atomically), whose
    /// rows are kept in `aside` (the folder this resume set the other branch's files aside in,
    /// or a new one). Returns what it says, or nil when the checkpoint is not in such a folder
    /// or the folder holds no metrics.csv.
    static func restoreRows(ofBranchOf checkpointPath: String, aside: String?, runDirectory: String) throws -> String? {
        let branch = URL(fileURLWithPath: checkpointPath).standardizedFileURL.deletingLastPathComponent()
        guard branch.lastPathComponent.hasPrefix("superseded-"),
              branch.deletingLastPathComponent().path == URL(fileURLWithPath: runDirectory).standardizedFileURL.path else { return nil }
        let rows = branch.appendingPathComponent(RunFolder.metricsLog).path
        guard FileManager.default.fileExists(atPath: rows) else { return nil }
        let current = existing([RunFolder.metricsLog], in: runDirectory)
        let keptIn = aside ?? newFolder(in: runDirectory)
        if aside == nil && !current.isEmpty { try move([], copying: current, into: keptIn, what: "the run's metrics.csv") }
        let target = RunFolder.file(RunFolder.metricsLog, in: runDirectory)
        do {
            try AtomicFile.write(to: target) { temporary in try FileManager.default.copyItem(atPath: rows, toPath: temporary) }
        } catch {
            throw TrainingError.cannotWrite(file: target, problem: "cannot take the resumed branch's rows from \(rows) (\(error.localizedDescription)); "
                                            + "check that the run folder is writable")
        }
        return "metrics.csv: the rows up to the checkpoint are its branch's, from \(rows)"
            + (current.isEmpty ? "" : "; the rows it replaces are kept in \(keptIn)")
    }

    /// The metrics.csv (and any summary.json) of a run that stopped before its first checkpoint:
    /// nothing to continue, so `--resume auto` starts it again; its rows move aside, not away.
    static func setAsideRowsWithoutCheckpoint(runDirectory: String) throws -> String {
        let folder = newFolder(in: runDirectory)
        try move(existing([RunFolder.metricsLog, RunFolder.summary], in: runDirectory), into: folder, what: "the stopped run's metrics.csv")
        return "--resume auto: \(runDirectory) holds metrics rows of its first epoch but no checkpoint (the run stopped before its first); "
            + "starting it again from the seed, its old rows moved to \(folder) (their settings cannot be checked without a checkpoint)"
    }

    /// Moves `paths` (and copies `copying`) into `folder`, which it creates; a failure names `what`.
    static func move(_ paths: [String], copying: [String] = [], into folder: String, what: String) throws {
        let fm = FileManager.default
        func destination(_ path: String) -> String { (folder as NSString).appendingPathComponent((path as NSString).lastPathComponent) }
        do {
            try fm.createDirectory(atPath: folder, withIntermediateDirectories: true)
            for path in paths { try fm.moveItem(atPath: path, toPath: destination(path)) }
            for path in copying { try fm.copyItem(atPath: path, toPath: destination(path)) }
        } catch {
            throw TrainingError.cannotWrite(file: folder, problem: "cannot move \(what) aside (\(error.localizedDescription)); "
                                            + "check that the run folder is writable, or move the files away yourself")
        }
    }

    /// The run folder's files of these names that exist.
    static func existing(_ names: [String], in runDirectory: String) -> [String] {
        names.map { RunFolder.file($0, in: runDirectory) }.filter { FileManager.default.fileExists(atPath: $0) }
    }

    static func finalPath(_ runDirectory: String) -> String { RunFolder.file(RunFolder.finalCheckpoint, in: runDirectory) }

    /// Whether the run folder's final.h5 is the end of the run `checkpoint` belongs to: the same
    /// step and the same parameters, bit for bit (final.h5 is the last checkpoint's copy). A
    /// final.h5 another program holds open is not judged (it would be set aside): that error is
    /// thrown.
    static func finalIsTheEnd(of checkpoint: Checkpoint, runDirectory: String) throws -> Bool {
        let final: Checkpoint
        do {
            final = try CheckpointFile.read(finalPath(runDirectory))
        } catch let error as StorageError where error.kind == .ioError {
            throw error
        } catch {
            return false
        }
        return final.step == checkpoint.step && final.parameters.elementsEqual(checkpoint.parameters) { $0.bitPattern == $1.bitPattern }
    }

    /// `<run-dir>/superseded-<UTC time>`, numbered if that exists (a second resume within a second).
    static func newFolder(in runDirectory: String) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        let base = (runDirectory as NSString).appendingPathComponent("superseded-\(formatter.string(from: Date()))")
        var folder = base
        var n = 1
        while FileManager.default.fileExists(atPath: folder) {
            n += 1
            folder = "\(base)-\(n)"
        }
        return folder
    }
}
