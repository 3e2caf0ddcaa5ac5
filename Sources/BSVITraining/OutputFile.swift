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
        if let problem = creationProblem(inFolder: folder) {
            throw TrainingError.cannotWrite(file: path, problem: "cannot create \(flag) file: folder \(folder) is not writable (\(problem)); choose another path")
        }
        if let output = FileIdentity(path), let input = inputs.first(where: { FileIdentity($0) == output }) {
            throw TrainingError.invalidConfiguration(flag: flag, problem: "\(path) is the input \(input); writing it would destroy the input. Choose another file name")
        }
    }

    /// Creates and removes a probe file in `folder`; nil when that worked, else why not.
    /// Permission bits alone do not tell: root passes `access(W_OK)` on read-only mounts,
    /// sysfs (/sys) and folders a quota or an ACL closes.
    static func creationProblem(inFolder folder: String) -> String? {
        var template = Array("\(folder)/.bsvi-dist-probe-XXXXXX".utf8CString)
        let descriptor = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard descriptor >= 0 else { return String(cString: strerror(errno)) }
        close(descriptor)
        unlink(template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })
        return nil
    }
}
