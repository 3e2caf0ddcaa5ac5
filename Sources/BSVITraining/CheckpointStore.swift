import BSVIStorage
import Foundation

/// The checkpoints of one run: <run-dir>/checkpoints/ckpt-<step>.h5, written atomically by
/// rank 0; the newest written and the newest `keep` − 1 others are retained.
public struct CheckpointStore {
    public let folder: String
    public let keep: Int

    public init(runDirectory: String, keep: Int) {
        folder = (runDirectory as NSString).appendingPathComponent("checkpoints")
        self.keep = keep
    }

    public func path(step: Int) -> String { (folder as NSString).appendingPathComponent("ckpt-\(step).h5") }

    /// Existing checkpoints, newest (highest step) first.
    public func list() -> [(step: Int, path: String)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        return names.compactMap { name -> (Int, String)? in
            guard name.hasPrefix("ckpt-"), name.hasSuffix(".h5"),
                  let step = Int(name.dropFirst(5).dropLast(3)) else { return nil }
            return (step, (folder as NSString).appendingPathComponent(name))
        }.sorted { $0.0 > $1.0 }
    }

    /// Removes temp files left by a writer that died mid-write (they were never renamed into place).
    public func removeStaleTemporaryFiles() {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        for name in names where name.hasPrefix(".ckpt-") && name.contains(".tmp-") {
            try? FileManager.default.removeItem(atPath: (folder as NSString).appendingPathComponent(name))
        }
    }

    /// Creates the checkpoint folder; a file in its place is the user's to move (exit 73, not a
    /// Foundation error with exit 70 after an epoch of training).
    public func createFolder() throws {
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            throw TrainingError.cannotWrite(file: folder, problem: "cannot create the checkpoint folder (\(error.localizedDescription)); "
                                                + "move away what is in its place, or choose another --run-dir")
        }
    }

    /// `midWrite` runs half-way through writing the file (fault injection for tests).
    public func save(_ checkpoint: Checkpoint, midWrite: (() -> Void)? = nil) throws -> String {
        try createFolder()  // again: something may have removed it during the run
        let p = path(step: checkpoint.step)
        try CheckpointFile.write(checkpoint, to: p, midWrite: midWrite)
        // The file just written always stays (a stray or damaged file with a higher step must not
        // push it out); of the others, the newest keep − 1 stay.
        for old in list().filter({ $0.path != p }).dropFirst(keep - 1) { try? FileManager.default.removeItem(atPath: old.path) }
        return p
    }

    /// The newest checkpoint that reads and validates, with a warning for each one skipped.
    /// Damaged files are skipped with a warning; a file another program holds open is not
    /// damaged (skipping it would set a good checkpoint aside), so that error is thrown.
    public func newestValid(warn: (String) -> Void) throws -> (Checkpoint, String)? {
        for c in list() {
            do {
                let checkpoint = try CheckpointFile.read(c.path, requireTrainingState: true)
                // The name decides the order and the retention: a file whose step is another
                // (renamed, or its step edited) would resume from the wrong place.
                guard checkpoint.step == c.step else {
                    warn("warning: skipping checkpoint \(c.path): it holds step \(checkpoint.step), not the \(c.step) its name says")
                    continue
                }
                return (checkpoint, c.path)
            } catch let error as StorageError where error.kind == .ioError {
                throw error
            } catch {
                warn("warning: skipping unreadable checkpoint \(c.path): \(error)")
            }
        }
        return nil
    }
}
