import BSVIStorage
import Foundation

/// Output files a command writes at the end of long work (`--per-example`, `--step-times`,
/// `sample --out`).
public enum OutputFile {
    /// Fails now, not after the long work, when `path` could not be created: its folder must
    /// exist and be writable, it must not be a folder, and it must not be one of the command's
    /// `inputs` (a checkpoint or dataset replaced by the output would be lost). `flag` names the
    /// option in the message.
    public static func checkCanCreate(_ path: String, flag: String, inputs: [String] = []) throws {
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        do { try AtomicFile.checkDestination(path) } catch let error as StorageError {
            throw TrainingError.cannotWrite(file: path, problem: "cannot create \(flag) file: \(error.problem); \(error.fix ?? "choose another path")")
        }
        guard FileManager.default.isWritableFile(atPath: folder) else {
            throw TrainingError.cannotWrite(file: path, problem: "cannot create \(flag) file: folder \(folder) is not writable; choose another path")
        }
        if let output = FileIdentity(path), let input = inputs.first(where: { FileIdentity($0) == output }) {
            throw TrainingError.invalidConfiguration(flag: flag, problem: "\(path) is the input \(input); writing it would destroy the input. Choose another file name")
        }
    }
}
