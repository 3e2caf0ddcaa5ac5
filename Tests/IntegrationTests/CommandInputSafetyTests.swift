import BSVIStorage
import Foundation
import Testing

/// Mistakes a user can make with the reporting commands end with a message and a usage exit,
/// before anything is written: an output that is one of the inputs, sizes that cannot be drawn,
/// values JSON cannot hold.
@Suite("Command inputs: outputs that would destroy inputs, impossible sizes, non-finite JSON")
struct CommandInputSafetyTests {
    final class Fixture {
        let dir: String
        let data: String
        let checkpoint: String
        init() throws {
            dir = try makeTemporaryDirectory(prefix: "inputs")
            data = dir + "/toy.h5"
            try writeToyDataset(data)
            checkpoint = try trainTinyCheckpoint(data: data, runDir: dir + "/run", seed: 3, epochs: 1)
        }
        deinit { try? FileManager.default.removeItem(atPath: dir) }
    }

    @Test("eval, compare and sample refuse to write over their own checkpoint or dataset; the inputs stay intact")
    func outputIsAnInput() throws {
        let f = try Fixture()
        let checkpointBytes = try Data(contentsOf: URL(fileURLWithPath: f.checkpoint))
        let dataBytes = try Data(contentsOf: URL(fileURLWithPath: f.data))
        let link = f.dir + "/alias.h5"  // the same file under another name
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: f.checkpoint)
        for arguments in [["eval", f.checkpoint, "--data", f.data, "--samples", "5", "--per-example", f.checkpoint],
                          ["eval", f.checkpoint, "--data", f.data, "--samples", "5", "--per-example", f.data],
                          ["eval", f.checkpoint, "--data", f.data, "--samples", "5", "--per-example", link],
                          ["compare", f.checkpoint, f.checkpoint, "--data", f.data, "--samples", "5", "--per-example", f.checkpoint],
                          ["sample", f.checkpoint, "--out", f.checkpoint],
                          // sample reads --data for the image shape, reconstructions or not.
                          ["sample", f.checkpoint, "--data", f.data, "--out", f.data],
                          ["bench", "--data", f.data, "--batch-size", "8", "--steps", "1", "--warmup", "0", "--eval-examples", "0",
                           "--step-times", f.data]] {
            let r = try bsvi(arguments)
            #expect(r.status == 64 && !r.signaled && r.stderr.contains("would destroy the input"), "\(arguments): \(r.stderr)")
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: f.checkpoint)) == checkpointBytes)
        #expect(try Data(contentsOf: URL(fileURLWithPath: f.data)) == dataBytes)
        // Nor over a FIFO or device: the final rename once replaced the machine's /dev/null.
        let fifo = f.dir + "/fifo.h5"
        #expect(mkfifo(fifo, 0o600) == 0)
        for arguments in [["eval", f.checkpoint, "--data", f.data, "--samples", "5", "--per-example", fifo],
                          ["sample", f.checkpoint, "--data", f.data, "--out", fifo]] {
            let r = try bsvi(arguments)
            #expect(r.status == 73 && r.stderr.contains("not a regular file"), "\(arguments): \(r.stderr)")
        }
        var info = stat()
        #expect(stat(fifo, &info) == 0 && info.st_mode & S_IFMT == S_IFIFO)
    }

    @Test("an output ending in '/', or whose temp file's name would pass 255 bytes, is refused (73) before the work, by every command that writes one")
    func outputNamesThatCannotBeWritten() throws {
        let f = try Fixture()
        // A name of 250 bytes is legal; its temp file's, .NAME.tmp-PID, is not.
        let long = f.dir + "/" + String(repeating: "p", count: 247) + ".h5"
        #expect(FileManager.default.createFile(atPath: long, contents: nil))
        try FileManager.default.removeItem(atPath: long)
        for (output, problem) in [(f.dir + "/keep.h5/", "ends in '/'"), (long, "the file name is too long")] {
            for arguments in [["eval", f.checkpoint, "--data", f.data, "--samples", "5", "--per-example", output],
                              ["sample", f.checkpoint, "--data", f.data, "--out", output],
                              ["bench", "--data", f.data, "--batch-size", "8", "--steps", "1", "--warmup", "0", "--eval-examples", "0",
                               "--step-times", output],
                              ["prepare-data", "--train", f.data + ":/train", "--test", f.data + ":/test", "--output", output]]
                // prepare-data has refused an --output ending in '/' as a usage error (64) since its first version.
                where !(arguments[0] == "prepare-data" && output.hasSuffix("/")) {
                let r = try bsvi(arguments)
                #expect(r.status == 73 && !r.signaled && r.stderr.contains(problem), "\(arguments): \(r.stderr)")
                // Refused before the work: eval printed no estimate, bench timed no step.
                #expect(!r.stdout.contains("log p") && !r.stdout.contains("examples/s"), "\(arguments): \(r.stdout)")
            }
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: f.dir).allSatisfy { !$0.hasPrefix(".") && !$0.hasPrefix("ppp") && $0 != "keep.h5" })
    }

    @Test("sample refuses impossible image sizes, grids and refinement steps with exit 64, never a crash")
    func sampleSizes() throws {
        let f = try Fixture()
        for extra in [["--image-size=-4x-4"], ["--image-size", "4611686018427387904x4"], ["--rows", "4611686018427387904"],
                      ["--columns", "0"], ["--refine-steps=-3", "--reconstructions", "2"],
                      // eval's bound: 2^63 − 1 steps ran until killed.
                      ["--refine-steps", "9223372036854775807", "--reconstructions", "2"]] {
            let r = try bsvi(["sample", f.checkpoint, "--data", f.data, "--out", f.dir + "/s.png"] + extra)
            #expect(r.status == 64 && !r.signaled, "\(extra): \(r.status) \(r.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: f.dir + "/s.png"))
        // More reconstructions than the split has: it says how many it drew.
        let r = try bsvi(["sample", f.checkpoint, "--data", f.data, "--out", f.dir + "/s.png", "--reconstructions", "25", "--columns", "24",
                          "--rows", "1"])
        #expect(r.status == 0 && r.stdout.contains("20 reconstructions"), "\(r.stdout) \(r.stderr)")
        // 24 columns of 4×4 tiles with 1-pixel gaps (the 25 asked for would make 25); the data row
        // under the prior row holds 20 images and 4 blank (white, not black) padding tiles.
        let png = try PNGFile.readGray(f.dir + "/s.png")
        #expect(png.width == 24 * 5 + 1, "\(png.width)")
        let paddingTile = (6..<10).flatMap { y in (0..<4).map { x in png.pixels[y * png.width + 23 * 5 + 1 + x] } }
        #expect(paddingTile.allSatisfy { $0 == 255 }, "\(paddingTile)")
    }

    @Test("eval --json writes non-finite values as strings instead of failing the whole evaluation")
    func nonFiniteJSON() throws {
        let f = try Fixture()
        // A refinement step this large diverges: ELBO(λ_k) = −∞ (or NaN).
        let r = try bsvi(["eval", f.checkpoint, "--data", f.data, "--samples", "5", "--svi-rule", "sgd", "--svi-lr", "1000", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let object = try parseJSONLine(r.stdout)
        #expect(object["log_likelihood"] is Double)
        // The refinement must have diverged, or this test checks nothing.
        #expect(["-inf", "inf", "nan"].contains(object["elbo_refined"] as? String), "\(r.stdout)")
    }

    @Test("flags eval and train both check: --stall-timeout ≥ 0, a finite --svi-lr; bench names --batch-size when the data is too small")
    func flagChecks() throws {
        let f = try Fixture()
        for extra in [["--stall-timeout=-1"], ["--stall-timeout", "nan"], ["--svi-lr", "inf"]] {
            let r = try bsvi(["eval", f.checkpoint, "--data", f.data, "--samples", "5"] + extra)
            #expect(r.status == 64 && !r.signaled, "\(extra): \(r.stderr)")
        }
        // A negative value after a space reaches the option's own check (it used to be taken for
        // an option: "Missing value for '--svi-lr'").
        let evaluate = ["eval", f.checkpoint, "--data", f.data, "--samples", "5"]
        for (arguments, says) in [(evaluate + ["--svi-lr", "-1"], "--svi-lr"), (evaluate + ["--limit", "-3"], "got -3"),
                                  (["train", "--data", f.data, "--run-dir", f.dir + "/neg", "--k", "-1"], "must be between 0 and 100000, got -1"),
                                  // Bounded, so that one example's evaluation cannot outlast a stop signal for hours.
                                  (evaluate + ["--samples", "9223372036854775807"], "--samples must be between 1 and 10000000"),
                                  (evaluate + ["--refine-steps", "1000000000000"], "--refine-steps must be between 0 and 100000"),
                                  // It used to evaluate the split twice and report it twice.
                                  (evaluate + ["--split", "test", "--split", "valid", "--split", "test"], "--split test is given more than once")] {
            let r = try bsvi(arguments)
            #expect(r.status == 64 && r.stderr.contains(says) && !r.stderr.contains("Missing value"), "\(arguments): \(r.stderr)")
        }
        let gaps = try bsvi(["eval", f.checkpoint, "--data", f.data, "--samples", "5", "--gaps", "--refine-steps", "3"])
        #expect(gaps.status == 64 && gaps.stderr.contains("--refine-steps 3 has no effect with --gaps"), "\(gaps.stderr)")
        let bench = try bsvi(["bench", "--data", f.data, "--batch-size", "200", "--steps", "1", "--eval-examples", "0"])
        #expect(bench.status == 64 && bench.stderr.contains("--batch-size") && bench.stderr.contains("96 rows"), "\(bench.stderr)")
    }
}
