import Foundation

/// Output files a command writes at the end of long work (`--per-example`, `--step-times`).
public enum OutputFile {
    /// Fails now, not after the long work, when `path` could not be created: its folder must
    /// exist and be writable. `flag` names the option in the message.
    public static func checkCanCreate(_ path: String, flag: String) throws {
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        var isFolder: ObjCBool = false
        // The file is replaced by a rename at the end, which cannot replace a folder.
        if FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), isFolder.boolValue {
            throw TrainingError.cannotWrite(file: path, problem: "cannot create \(flag) file: \(path) is a folder; pass a file's path to \(flag) (a new name, or a file to replace)")
        }
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder), isFolder.boolValue,
              FileManager.default.isWritableFile(atPath: folder) else {
            throw TrainingError.cannotWrite(file: path, problem: "cannot create \(flag) file: folder \(folder) does not exist or is not writable; create it or choose another path")
        }
    }
}
