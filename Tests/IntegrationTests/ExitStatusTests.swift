import BSVIStorage
import Foundation
import Testing

/// Every subcommand exits with the statuses of sysexits.h (README "Exit status"), and one run
/// holds a run folder at a time.
@Suite("Exit statuses and the run-folder lock", .serialized)
struct ExitStatusTests {
    static let train = ["train", "--batch-size", "8", "--epochs", "1", "--no-final-eval"] + tinyModel

    static func folderWithData() throws -> String {
        let dir = try makeTemporaryDirectory(prefix: "status")
        try writeToyDataset(dir + "/toy.h5")
        return dir
    }

    @Test("64: a bad flag or flag value, in every subcommand")
    func usage() throws {
        let dir = try Self.folderWithData()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for command in [["train", "--method", "nope"], ["train", "--k", "-1", "--data", dir + "/toy.h5"], ["train", "--lr", "0"],
                        ["eval", dir + "/x.h5", "--samples", "0"], ["compare", dir + "/x.h5", dir + "/y.h5", "--limit", "-1"],
                        ["compare", dir + "/x.h5"], ["bench", "--steps", "0"],
                        ["sample", dir + "/x.h5", "--out", dir + "/x.png", "--rows", "0", "--reconstructions", "0"],
                        ["prepare-data", "--binarize", "sometimes", "--output", dir + "/p.h5"], ["inspect"]] {
            let r = try bsvi(command)
            #expect(r.status == 64, "\(command): \(r.status) \(r.stderr)")
            #expect(!r.stderr.isEmpty)
        }
    }

    @Test("65: a dataset or checkpoint that is readable but wrong; 66: one that is missing")
    func badAndMissingInput() throws {
        let dir = try Self.folderWithData()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try BinaryDatasetWriter.write(to: dir + "/bad.h5", splits: [
            .init(name: .train, rows: 16, width: 16, values: [UInt8](repeating: 7, count: 256)),
            .init(name: .valid, rows: 1, width: 16, values: [UInt8](repeating: 0, count: 16)),
            .init(name: .test, rows: 1, width: 16, values: [UInt8](repeating: 0, count: 16)),
        ], imageHeight: 4, imageWidth: 4, source: "bad values")
        let badData = try bsvi(Self.train + ["--data", dir + "/bad.h5", "--run-dir", dir + "/r1"])
        #expect(badData.status == 65, "\(badData.stderr)")
        #expect(badData.stderr.contains("not 0/1"))
        let notACheckpoint = try bsvi(["eval", dir + "/toy.h5", "--data", dir + "/toy.h5"])
        #expect(notACheckpoint.status == 65, "\(notACheckpoint.stderr)")

        for command in [Self.train + ["--data", dir + "/missing.h5", "--run-dir", dir + "/r2"],
                        ["eval", dir + "/missing.h5", "--data", dir + "/toy.h5"], ["inspect", dir + "/missing.h5"],
                        ["compare", dir + "/missing.h5", dir + "/missing.h5", "--data", dir + "/toy.h5"],
                        Self.train + ["--data", dir + "/toy.h5", "--run-dir", dir + "/r3", "--resume", dir + "/missing.h5"]] {
            let r = try bsvi(command)
            #expect(r.status == 66, "\(command): \(r.status) \(r.stderr)")
            #expect(r.stderr.contains("missing.h5"))
        }
    }

    @Test("65: --resume with a checkpoint of another experiment, naming each flag; 70: too many non-finite steps")
    func resumeMismatchAndFailedTraining() throws {
        let dir = try Self.folderWithData()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let run = dir + "/run"
        #expect(try bsvi(Self.train + ["--data", dir + "/toy.h5", "--run-dir", run, "--svi-lr", "0.05"]).status == 0)
        let other = try bsvi(Self.train + ["--data", dir + "/toy.h5", "--run-dir", run, "--resume", "auto", "--epochs", "2",
                                           "--svi-lr", "0.02", "--vae-samples", "3"])
        #expect(other.status == 65)
        #expect(other.stderr.contains("--svi-lr 0.05 → 0.02") && other.stderr.contains("--vae-samples 1 → 3"), "\(other.stderr)")

        let nan = try bsvi(Self.train + ["--data", dir + "/toy.h5", "--run-dir", dir + "/nan", "--inject-nan", "0-100:0",
                                         "--max-bad-steps", "3"])
        #expect(nan.status == 70, "\(nan.stderr)")
        #expect(nan.stderr.contains("3 consecutive steps had non-finite"))
    }

    @Test("73: a second run on a folder another run holds is refused at once, naming the holder; 0 for the graceful stop of the first")
    func runFolderInUse() throws {
        let dir = try Self.folderWithData()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let run = dir + "/run"
        let first = try BackgroundCommand(try binaryPath(), ["train", "--data", dir + "/toy.h5", "--run-dir", run, "--batch-size", "8",
                                                             "--epochs", "0", "--max-steps", "100000000"] + tinyModel)
        // The lock file names its holder once the first run has taken the folder.
        #expect(pollUntil(timeout: 30) {
            ((try? String(contentsOfFile: run + "/.lock", encoding: .utf8)) ?? "").contains("pid=\(first.process.processIdentifier)")
        })
        let second = try bsvi(["train", "--data", dir + "/toy.h5", "--run-dir", run, "--batch-size", "8", "--epochs", "1",
                               "--resume", "auto"] + tinyModel)
        #expect(second.status == 73, "\(second.stderr)")
        #expect(second.stderr.contains("in use by another run") && second.stderr.contains("\(first.process.processIdentifier)"))
        #expect(second.seconds < 10, "refused at once")
        kill(first.process.processIdentifier, SIGTERM)
        #expect(first.wait(timeout: 60))
        #expect(first.process.terminationStatus == 0, "\(first.stderr)")
        // The folder is free again, and the metrics of the stopped run hold no row twice.
        let resumed = try bsvi(["train", "--data", dir + "/toy.h5", "--run-dir", run, "--batch-size", "8", "--epochs", "0",
                                "--max-steps", "100000000", "--resume", "auto", "--inject-stop-during", "checkpoint",
                                "--checkpoint-every", "3"] + tinyModel)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        let rows = try String(contentsOfFile: run + "/metrics.csv", encoding: .utf8).split(separator: "\n").filter { $0.hasPrefix("train,") }
        let keys = rows.map { $0.split(separator: ",").prefix(3).joined(separator: ",") }
        #expect(Set(keys).count == keys.count, "a step's row appears twice: \(rows)")
    }

    @Test("75: eval and compare stopped by a signal before they finished; nothing is printed as a result")
    func evaluationStopped() throws {
        let dir = try Self.folderWithData()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeToyDataset(dir + "/long.h5", test: 2000)
        #expect(try bsvi(Self.train + ["--data", dir + "/long.h5", "--run-dir", dir + "/run"]).status == 0)
        let checkpoint = dir + "/run/final.h5"
        for (command, result) in [(["eval", checkpoint], "log_likelihood"), (["compare", checkpoint, checkpoint], "difference")] {
            let running = try BackgroundCommand(try binaryPath(), command + ["--data", dir + "/long.h5", "--samples", "4000", "--json",
                                                                             "--per-example", dir + "/examples.h5"])
            // Once the process catches SIGTERM (its handler is installed: SigCgt in /proc), the signal
            // is a stop request rather than the default end.
            #expect(pollUntil(timeout: 30) { catches(SIGTERM, pid: running.process.processIdentifier) })
            kill(running.process.processIdentifier, SIGTERM)
            #expect(running.wait(timeout: 30))
            #expect(running.process.terminationStatus == 75, "\(command[0]): \(running.stderr)")
            #expect(running.stderr.contains("stopped by a signal while evaluating /test"))
            #expect(!running.stdout.contains(result))
            #expect(!FileManager.default.fileExists(atPath: dir + "/examples.h5"), "no per-example file from a stopped \(command[0])")
        }
    }
}

/// Whether process `pid` has a handler for `signal` (SigCgt in /proc/<pid>/status).
func catches(_ signal: Int32, pid: Int32) -> Bool {
    let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
    guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("SigCgt:") }),
          let mask = UInt64(line.dropFirst(7).trimmingCharacters(in: .whitespaces), radix: 16) else { return false }
    return mask & (1 << UInt64(signal - 1)) != 0
}
