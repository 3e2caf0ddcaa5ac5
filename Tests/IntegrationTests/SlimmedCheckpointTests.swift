import BSVIStorage
import Foundation
import Testing

/// A checkpoint shared without its optimizer moments (or with a metrics column deleted) still
/// evaluates with its run's settings; --resume refuses it.
@Suite("A slimmed checkpoint")
struct SlimmedCheckpointTests {
    @Test("eval takes its refinement defaults from the stored configuration (vae: 5 steps, not bsvi's 10), warns what was set aside; inspect says it; --resume refuses")
    func evaluatesWithTheRunsSettings() throws {
        let dir = try makeTemporaryDirectory(prefix: "slim")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = dir + "/toy.h5", run = dir + "/run"
        try writeToyDataset(data)
        let flags = ["train", "--data", data, "--run-dir", run, "--batch-size", "8", "--max-steps", "4", "--method", "vae", "--eval-every", "2"] + tinyModel
        let trained = try bsvi(flags)
        try #require(trained.status == 0, "\(trained.stderr)")
        let slim = dir + "/slim.h5"
        try FileManager.default.copyItem(atPath: run + "/final.h5", toPath: slim)
        let f = try HDF5File.open(slim, writable: true)
        for name in ["/training/adam_first_moment", "/training/adam_second_moment", "/metrics/elbo"] { try f.unlink(name) }
        try f.close()

        let evaluate = ["eval", "--data", data, "--samples", "5", "--json"]
        let full = try parseJSONLine(try bsvi(evaluate + [run + "/final.h5"]).stdout)
        let r = try bsvi(evaluate + [slim])
        #expect(r.status == 0, "\(r.stderr)")
        let j = try parseJSONLine(r.stdout)
        // A set-aside /training used to take its configuration with it: bsvi's 10 steps.
        #expect(j["refinement_steps"] as? Int == 5 && full["refinement_steps"] as? Int == 5, "\(j)")
        #expect(j["elbo_refined"] as? Double == full["elbo_refined"] as? Double)
        #expect(r.stderr.contains("/training lacks adam_first_moment, adam_second_moment") && r.stderr.contains("/metrics lacks elbo"), "\(r.stderr)")
        // The data fingerprint stays with the configuration: a copy of the data elsewhere is the
        // same data (no warning), other data is named.
        try FileManager.default.copyItem(atPath: data, toPath: dir + "/copy.h5")
        let copy = try bsvi(["eval", "--data", dir + "/copy.h5", "--samples", "5", slim])
        #expect(copy.status == 0 && !copy.stderr.contains("trained on"), "\(copy.stderr)")
        try writeToyDataset(dir + "/other.h5", train: 80)
        let other = try bsvi(["eval", "--data", dir + "/other.h5", "--samples", "5", slim])
        #expect(other.status == 0 && other.stderr.contains("was trained on other data than --data \(dir)/other.h5: /train 80 rows"), "\(other.stderr)")

        let shown = try bsvi(["inspect", slim])
        #expect(shown.status == 0 && shown.stdout.contains("training state  incomplete") && shown.stdout.contains("set aside       /training lacks"), "\(shown.stdout)")
        #expect(shown.stdout.contains("configuration   {"), "\(shown.stdout)")

        let resumed = try bsvi(flags.map { $0 == run ? dir + "/resumed" : $0 } + ["--resume", slim])
        #expect(resumed.status == 65 && resumed.stderr.contains("adam_first_moment"), "\(resumed.status): \(resumed.stderr)")
    }
}
