import BSVIStorage
import BSVITraining
import Foundation
import Testing

/// Ranks that read their own copy of the dataset (docs/cluster.md) compare what they see
/// before anything depends on it. Each rank runs in its own folder with `--data data.h5`, so
/// every rank opens a different file at the same path, as on hosts with their own copies.
@Suite("Ranks agree on the dataset", .serialized)
struct DataAgreementTests {
    /// Folders `hostA` and `hostB` in `dir`, each with a data.h5 written by `write`.
    func hostFolders(_ dir: String, _ write: (String, Int) throws -> Void) throws -> [String] {
        try ["hostA", "hostB"].enumerated().map { i, name in
            let folder = dir + "/" + name
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try write(folder + "/data.h5", i)
            return folder
        }
    }

    func train(_ folders: [String], runDir: String) throws -> CommandResult {
        // --stall-timeout 30: were the ranks to enter different collectives, the watchdog would
        // end the job only after 30 s, with status 74 and a "stalled" message.
        try mpirunBSVI(inFolders: folders, ["train", "--data", "data.h5", "--run-dir", runDir, "--batch-size", "10", "--epochs", "1",
                                            "--stall-timeout", "30"] + tinyModel, timeout: 120)
    }

    /// One clean collective failure: status 65 well before the watchdog, reported once by rank 0.
    func expectRefused(_ r: CommandResult, mentions: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(r.status == ExitStatus.badData.rawValue && !r.timedOut, "status \(r.status): \(r.stderr)", sourceLocation: sourceLocation)
        #expect(r.seconds < 25, "took \(r.seconds) s: the watchdog, not the check, ended it", sourceLocation: sourceLocation)
        #expect(!r.stderr.contains("stalled"), "\(r.stderr)", sourceLocation: sourceLocation)
        for m in ["rank 0: data.h5: the ranks see different files at this path: 1 of 2 ranks differ from rank 0 (host \(localHostName()))",
                  "(give every rank the same dataset file (copies must be identical))"] + mentions {
            #expect(r.stderr.contains(m), "stderr should contain '\(m)': \(r.stderr)", sourceLocation: sourceLocation)
        }
        #expect(!r.stderr.contains("rank 1:"), "only rank 0 reports: \(r.stderr)", sourceLocation: sourceLocation)
    }

    @Test("copies whose /train differs stop every rank with exit 65 naming the file, the rank, its host and both row counts, before anything is written",
          arguments: [
              // 300 rows: 30 steps against rank 0's 20, so the ranks would meet in different collectives (a hang).
              300,
              // 205 rows: the same 20 steps, so nothing would hang, but the shuffles would differ (rows used twice or never).
              205,
          ])
    func trainRowsDiffer(otherRows: Int) throws {
        let dir = try makeTemporaryDirectory(prefix: "agree")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let folders = try hostFolders(dir) { path, i in try writeToyDataset(path, train: i == 0 ? 200 : otherRows) }
        let r = try train(folders, runDir: dir + "/run")
        expectRefused(r, mentions: ["rank 1 (host \(localHostName())) sees /train \(otherRows) rows × 16 (rank 0: 200 rows × 16)"])
        #expect(!FileManager.default.fileExists(atPath: dir + "/run"), "nothing may be written")
    }

    @Test("an MPMD launch that gives a rank another --data names that rank's path (exit 65, nothing written)")
    func mpmdOtherData() throws {
        let dir = try makeTemporaryDirectory(prefix: "agree")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeToyDataset(dir + "/a.h5", train: 200)
        try writeToyDataset(dir + "/b.h5", train: 205)
        let binary = try binaryPath()
        let flags = ["train", "--run-dir", dir + "/run", "--batch-size", "10", "--epochs", "1", "--stall-timeout", "30"] + tinyModel
        let r = try runCommand(mpirunPath(), ["--oversubscribe", "-np", "1", binary] + flags + ["--data", dir + "/a.h5"]
                                   + [":", "-np", "1", binary] + flags + ["--data", dir + "/b.h5"], timeout: 120)
        #expect(r.status == ExitStatus.badData.rawValue && !r.timedOut && !r.stderr.contains("stalled"), "status \(r.status): \(r.stderr)")
        #expect(r.stderr.contains("rank 0: \(dir)/a.h5: the ranks see different files: 1 of 2 ranks differ from rank 0 (host \(localHostName())): "
                                  + "rank 1 (host \(localHostName()), --data \(dir)/b.h5) sees /train 205 rows × 16 (rank 0: 200 rows × 16)"),
                "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/run"), "nothing may be written")
    }

    @Test("a split missing from the file every rank reads is reported once, by rank 0, with exit 65 and no MPI_Abort (train and eval)")
    func splitMissingEverywhere() throws {
        let dir = try makeTemporaryDirectory(prefix: "nosplit")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = dir + "/notest.h5"
        let row = (0..<16).map { UInt8($0 % 2) }
        try BinaryDatasetWriter.write(to: data, splits: [
            .init(name: .train, rows: 40, width: 16, values: Array((0..<40).map { _ in row }.joined())),
            .init(name: .valid, rows: 8, width: 16, values: Array((0..<8).map { _ in row }.joined())),
        ], imageHeight: 4, imageWidth: 4, source: "toy")
        let train = try mpirunBSVI(ranks: 2, ["train", "--data", data, "--run-dir", dir + "/run", "--batch-size", "10", "--max-steps", "2"] + tinyModel,
                                   timeout: 120)
        try writeToyDataset(dir + "/toy.h5")
        let checkpoint = try trainTinyCheckpoint(data: dir + "/toy.h5", runDir: dir + "/trained", seed: 5, epochs: 1)
        let eval = try mpirunBSVI(ranks: 2, ["eval", checkpoint, "--data", data, "--samples", "5"], timeout: 120)
        // Each rank used to print it, then MPI_Abort's banner.
        for r in [train, eval] {
            #expect(r.status == 65 && !r.timedOut, "\(r.status): \(r.stderr)")
            #expect(r.stderr.components(separatedBy: "/test: split is missing").count == 2 && r.stderr.contains("rank 0: \(data): /test"), "\(r.stderr)")
            #expect(!r.stderr.contains("rank 1:") && !r.stderr.contains("MPI_ABORT"), "\(r.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: dir + "/run/checkpoints"), "nothing may be written")
    }

    @Test("a dataset missing on every rank is reported once, by rank 0; missing on one host only, by that rank, named (66, nothing written)")
    func missingCopies() throws {
        let dir = try makeTemporaryDirectory(prefix: "missing")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let folders = try hostFolders(dir) { path, i in if i == 0 { try writeToyDataset(path) } }
        let oneHost = try train(folders, runDir: dir + "/run")
        #expect(oneHost.status == 66, "\(oneHost.stderr)")
        #expect(oneHost.stderr.contains("rank 1: data.h5: file not found") && !oneHost.stderr.contains("rank 0:"), "\(oneHost.stderr)")
        try FileManager.default.removeItem(atPath: folders[0] + "/data.h5")
        let everywhere = try train(folders, runDir: dir + "/run")
        #expect(everywhere.status == 66, "\(everywhere.stderr)")
        // Every rank used to print the same line (and MPI_Abort's banner).
        #expect(everywhere.stderr.contains("rank 0: data.h5: file not found") && !everywhere.stderr.contains("rank 1:"), "\(everywhere.stderr)")
        #expect(!everywhere.stderr.contains("MPI_ABORT"), "every rank leaves MPI cleanly: \(everywhere.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/run"), "nothing may be written")
    }

    @Test("copies of the same shape from another source are refused too, naming the attributes")
    func sourceDiffers() throws {
        let dir = try makeTemporaryDirectory(prefix: "agree")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let folders = try hostFolders(dir) { path, i in try writeToyDataset(path, train: 200, source: i == 0 ? "toy" : "other") }
        let r = try train(folders, runDir: dir + "/run")
        expectRefused(r, mentions: ["rank 1 (host \(localHostName())) sees its attributes (source, binarization"])
        #expect(!r.stderr.contains("/train 200"), "the shapes agree and are not reported: \(r.stderr)")
    }

    @Test("identical copies train: every process computes the same fingerprint")
    func identicalCopiesTrain() throws {
        let dir = try makeTemporaryDirectory(prefix: "agree")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeToyDataset(dir + "/original.h5", train: 200)
        let folders = try hostFolders(dir) { path, _ in try FileManager.default.copyItem(atPath: dir + "/original.h5", toPath: path) }
        let r = try train(folders, runDir: dir + "/run")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("on 2 rank(s)"), "\(r.stdout)")
        #expect(FileManager.default.fileExists(atPath: dir + "/run/final.h5"))
    }

    @Test("eval and compare refuse copies whose /test differs (each rank would deal a different number of rows)")
    func evaluationCopiesDiffer() throws {
        let dir = try makeTemporaryDirectory(prefix: "agree")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let folders = try hostFolders(dir) { path, i in try writeToyDataset(path, test: i == 0 ? 20 : 36) }
        let checkpoint = try trainTinyCheckpoint(data: folders[0] + "/data.h5", runDir: dir + "/run", seed: 1, epochs: 1)
        let mention = "rank 1 (host \(localHostName())) sees /test 36 rows × 16 (rank 0: 20 rows × 16)"
        let evaluation = try mpirunBSVI(inFolders: folders, ["eval", checkpoint, "--data", "data.h5", "--samples", "5", "--stall-timeout", "30"],
                                        timeout: 120)
        expectRefused(evaluation, mentions: [mention])
        #expect(evaluation.stdout.isEmpty, "no result may be reported: \(evaluation.stdout)")
        let comparison = try mpirunBSVI(inFolders: folders, ["compare", checkpoint, checkpoint, "--data", "data.h5", "--samples", "5",
                                                             "--stall-timeout", "30"], timeout: 120)
        expectRefused(comparison, mentions: [mention])
    }
}
