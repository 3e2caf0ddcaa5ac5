import BSVIStorage
import Foundation
import Testing

/// scripts/train-default, the README's main job, in a copy of the repository's layout whose
/// install-deps and swift do nothing (the suite's own build is the binary): a stop signal to the
/// script ends the run gracefully with exit 0, and "the same command plus --resume auto"
/// continues that run's folder.
@Suite("scripts/train-default", .serialized)
struct TrainDefaultScriptTests {
    /// A repository-shaped folder: scripts/{train-default, mpi-env} copied, install-deps and
    /// `swift` stand-ins that succeed, and .build/release/bsvi-dist linking to the built binary.
    static func layout(in dir: String) throws -> (script: String, path: String) {
        let fm = FileManager.default
        let repo = dir + "/repo", standIns = dir + "/bin"
        for folder in [repo + "/scripts", repo + "/.build/release", standIns] {
            try fm.createDirectory(atPath: folder, withIntermediateDirectories: true)
        }
        for name in ["train-default", "mpi-env"] {
            try fm.copyItem(atPath: repositoryRoot.appendingPathComponent("scripts/" + name).path, toPath: repo + "/scripts/" + name)
        }
        for stand in [repo + "/scripts/install-deps", standIns + "/swift"] {
            try "#!/bin/sh\nexit 0\n".write(toFile: stand, atomically: true, encoding: .utf8)
            try fm.setAttributes([.posixPermissions: 0o755], ofItemAtPath: stand)
        }
        try fm.createSymbolicLink(atPath: repo + "/.build/release/bsvi-dist", withDestinationPath: try binaryPath())
        return (repo + "/scripts/train-default", standIns + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"))
    }

    @Test("SIGTERM to train-default stops the run after a step with a checkpoint, exit 0 (mpirun alone would abort it, exit 1); --resume auto continues that folder")
    func stopAndResume() throws {
        let dir = try makeTemporaryDirectory(prefix: "traindefault")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeToyDataset(dir + "/toy.h5")
        let (script, path) = try Self.layout(in: dir)
        let flags = ["--data", dir + "/toy.h5", "--batch-size", "8", "--no-final-eval", "--hidden", "8", "--latent", "2"]
        let long = try BackgroundCommand(script, flags + ["--max-steps", "100000000"], environment: ["PATH": path])
        // Training has begun once rank 0 has announced the run.
        #expect(pollUntil(timeout: 120) { long.stdout.contains("steps in total") || !long.process.isRunning }, "\(long.stdout)")
        try #require(long.process.isRunning, "\(long.stdout)\n\(long.stderr)")
        kill(long.process.processIdentifier, SIGTERM)
        #expect(long.wait(timeout: 120))
        #expect(long.process.terminationReason == .exit && long.process.terminationStatus == 0, "\(long.stdout)\n\(long.stderr)")
        #expect(long.stdout.contains("--resume auto"), "\(long.stdout)")
        let runs = try FileManager.default.contentsOfDirectory(atPath: dir + "/repo/runs")
        try #require(runs.count == 1 && runs[0].hasPrefix("default-"), "\(runs)")
        let checkpoints = try FileManager.default.contentsOfDirectory(atPath: dir + "/repo/runs/\(runs[0])/checkpoints")
        let step = try #require(checkpoints.compactMap { Int($0.dropFirst(5).dropLast(3)) }.max(), "\(checkpoints)")

        // The same command plus --resume auto (a lower --max-steps, a schedule setting, so that it ends).
        let resumed = try runCommand(script, flags + ["--max-steps", "\(step + 2)", "--resume", "auto"],
                                     timeout: 300, environment: ["PATH": path])
        #expect(resumed.status == 0, "\(resumed.stdout)\n\(resumed.stderr)")
        #expect(resumed.stdout.contains("resuming from runs/\(runs[0])/checkpoints/ckpt-\(step).h5"), "\(resumed.stdout)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir + "/repo/runs") == runs)
        #expect(try CheckpointFile.read(dir + "/repo/runs/\(runs[0])/final.h5").step == step + 2)
    }
}
