import BSVIStorage
import Foundation
import Testing

/// An SVI refinement that diverges on some example makes ELBO(λ_k) −∞: a legitimate value
/// (docs/evaluation.md) that every file of the run must carry without becoming unreadable.
@Suite("A diverging refinement (ELBO(λ_k) = −∞)")
struct DivergedRefinementTests {
    @Test("the run finishes and its files open: checkpoints carry the −∞ epoch sum, summary.json and compare --json say \"-inf\"")
    func runWithDivergedRefinement() throws {
        let dir = try makeTemporaryDirectory(prefix: "diverged")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = dir + "/toy.h5", run = dir + "/run"
        try writeToyDataset(data)
        // Plain SGD with a step size of 200 throws λ far enough on some example that its ELBO overflows.
        let flags = ["train", "--data", data, "--run-dir", run, "--batch-size", "8", "--epochs", "2", "--seed", "3",
                     "--method", "bsvi", "--k", "3", "--svi-rule", "sgd", "--svi-lr", "200"] + tinyModel
        let r = try bsvi(flags)
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        let final = try CheckpointFile.read(run + "/final.h5", requireTrainingState: true)
        let sums = try #require(final.training?.epochSums, "final.h5 carries no epoch sums")
        try #require(sums.elboRefined == -.infinity, "the refinement did not diverge, so this test checks nothing: \(sums)")
        // Each file a user opens next: it used to be refused (exit 65) for its −∞ epoch sum.
        #expect(try bsvi(["inspect", run + "/final.h5"]).status == 0)
        #expect(try bsvi(["eval", run + "/final.h5", "--data", data, "--samples", "10"]).status == 0)
        let resumed = try bsvi(flags + ["--resume", "auto"])
        #expect(resumed.status == 0 && resumed.stdout.contains("nothing left to do"), "\(resumed.stdout)\n\(resumed.stderr)")
        // summary.json was lost to an EncodingError (exit 70) on every attempt.
        let summary = try readJSON(run + "/summary.json")
        let evaluation = try #require(summary["final_evaluation"] as? [String: Any])
        #expect(evaluation["elbo_refined"] as? String == "-inf", "\(evaluation)")
        #expect(evaluation["log_likelihood"] is Double)
        let compared = try bsvi(["compare", run + "/final.h5", run + "/final.h5", "--data", data, "--samples", "10",
                                 "--proposal", "refined", "--json"])
        #expect(compared.status == 0, "\(compared.stderr)")
        let object = try parseJSONLine(compared.stdout)
        #expect(object["examples"] as? Int == 20)
    }
}
