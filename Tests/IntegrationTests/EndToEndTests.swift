import BSVI
import BSVIStorage
import BSVITraining
import Foundation
import Testing

/// Writes an uncompressed IDX3 ubyte image file.
func writeIDX(_ path: String, count: Int, height: Int, width: Int, pixel: (Int, Int) -> UInt8) throws {
    var bytes: [UInt8] = [0, 0, 8, 3]
    for v in [count, height, width] { bytes += [UInt8(v >> 24 & 0xff), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }
    for i in 0..<count { for p in 0..<(height * width) { bytes.append(pixel(i, p)) } }
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

@Suite("End to end, single process")
struct EndToEndTests {
    @Test("prepare-data's default (fashion-mnist) reads the IDX folder: the last 10,000 training images become /valid")
    func prepareData() throws {
        let dir = try makeTemporaryDirectory(prefix: "prep")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // 10,050 training images of 4×4: the last 10,000 become /valid (Fashion-MNIST: 50,000 / 10,000).
        try writeIDX(dir + "/train-images-idx3-ubyte", count: 10_050, height: 4, width: 4) { i, p in UInt8((i * 7 + p * 31) % 256) }
        try writeIDX(dir + "/t10k-images-idx3-ubyte", count: 12, height: 4, width: 4) { _, p in p < 8 ? 255 : 0 }
        let out = dir + "/data.h5"
        let r = try bsvi(["prepare-data", "--source", dir, "--output", out])
        #expect(r.status == 0, "\(r.stderr)")
        let ds = try BinaryDataset(path: out)
        #expect(try ds.shape(of: .train) == (50, 16))
        #expect(try ds.shape(of: .valid) == (10_000, 16))
        #expect(try ds.shape(of: .test) == (12, 16))
        #expect(ds.intAttribute("image_height") == 4 && ds.intAttribute("image_width") == 4)
        #expect(ds.binarization == "bernoulli" && ds.intAttribute("binarization_seed") == 20190411)
        // Pixels of intensity 255 are always 1 and of intensity 0 always 0.
        let testRows = try ds.readAll(.test)
        let test = testRows.matrix(rows: 12, cols: 16)
        for i in 0..<12 { for p in 0..<16 { #expect(test[i, p] == (p < 8 ? 1 : 0)) } }
        // Refuses to overwrite without --force.
        let again = try bsvi(["prepare-data", "--source", dir, "--output", out])
        #expect(again.status == 73 && again.stderr.contains("--force"))
        // A missing source names the file and the Debian package.
        let missing = try bsvi(["prepare-data", "--source", dir + "/nowhere", "--output", dir + "/x.h5"])
        #expect(missing.status == 66 && missing.stderr.contains("dataset-fashion-mnist"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/x.h5"))
    }

    @Test("each method trains, writes a checkpoint that reads back, and evaluates",
          arguments: [["--method", "vae"], ["--method", "iwae", "--k", "3"], ["--method", "svi", "--k", "3"],
                      ["--method", "bsvi", "--k", "3", "--pi", "uniform"], ["--method", "bsvi", "--k", "2", "--pi", "last"],
                      ["--method", "bsvi", "--k", "2", "--pi", "learned", "--svi-rule", "momentum", "--svi-lr", "0.01"]])
    func trainEachMethod(method: [String]) throws {
        let dir = try makeTemporaryDirectory(prefix: "e2e")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeToyDataset(dir + "/toy.h5")
        let run = dir + "/run"
        let r = try bsvi(["train", "--data", dir + "/toy.h5", "--run-dir", run, "--batch-size", "8", "--epochs", "2"] + tinyModel + method)
        #expect(r.status == 0, "\(r.stderr)")
        // Metrics: one train row per epoch, one final test evaluation.
        let csv = try String(contentsOfFile: run + "/metrics.csv", encoding: .utf8).split(separator: "\n")
        #expect(csv.first?.hasPrefix("kind,epoch,step") == true)
        #expect(csv.filter { $0.hasPrefix("train,") }.count == 2)
        #expect(csv.filter { $0.hasPrefix("eval,") && $0.contains(",test,") }.count == 1)
        // The checkpoint holds the model of DESIGN.md §4 and reads back.
        let ckpt = try CheckpointFile.read(run + "/final.h5", requireTrainingState: true)
        #expect(ckpt.shape.inputDim == 16 && ckpt.shape.latentDim == 2 && ckpt.shape.hiddenDims == [8])
        #expect(ckpt.step == 2 * (96 / 8))
        #expect(ckpt.parameters.allSatisfy { $0.isFinite })
        #expect(ckpt.history.last?.split == "test")
        // Evaluating the checkpoint reproduces the run's final evaluation (same seed, K, rows).
        let e = try bsvi(["eval", run + "/final.h5", "--data", dir + "/toy.h5", "--samples", "20", "--json"])
        #expect(e.status == 0, "\(e.stderr)")
        let j = try parseJSONLine(e.stdout)
        #expect(j["examples"] as? Int == 20)
        #expect(j["samples"] as? Int == 20)
        let ll = try #require(j["log_likelihood"] as? Double), elbo = try #require(j["elbo"] as? Double)
        #expect(ll.isFinite && elbo.isFinite && ll < 0)
        #expect(abs(ll - ckpt.history.last!.logLikelihood) < 1e-6)
    }

    @Test("a method without objective flags trains with its own defaults; flags override them; --help lists them")
    func methodDefaultsReachTheRun() throws {
        let dir = try makeTemporaryDirectory(prefix: "defaults")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeToyDataset(dir + "/toy.h5")
        func storedObjective(_ flags: [String], warns: Bool = false) throws -> ObjectiveSection {
            let run = dir + "/run-\(flags.joined())"
            let r = try bsvi(["train", "--data", dir + "/toy.h5", "--run-dir", run, "--batch-size", "8", "--max-steps", "1",
                              "--no-final-eval"] + tinyModel + flags)
            try #require(r.status == 0, "\(r.stderr)")
            #expect(r.stderr.contains("does not use") == warns, "\(flags): \(r.stderr)")
            let config = try #require(try CheckpointFile.read(run + "/final.h5").training?.configJSON)
            return try RunConfiguration.fromJSON(config).objective
        }
        for method in [TrainingMethod.svi, .bsvi] {
            let o = try storedObjective(["--method", method.rawValue])
            let d = MethodDefaults.of(method)
            #expect(o.k == d.k && o.sviRule == d.sviRule, "\(method): \(o)")
            #expect(o.sviLearningRate == d.sviLearningRate && o.pi == d.pi, "\(method): \(o)")
        }
        let o = try storedObjective(["--method", "svi", "--svi-lr", "0.3", "--k", "2", "--svi-rule", "sgd"])
        #expect(o.sviLearningRate == 0.3 && o.k == 2 && o.sviRule == .sgd)
        // A flag the method does not use is kept as given, with a warning.
        let unused = try storedObjective(["--method", "vae", "--k", "7", "--pi", "last"], warns: true)
        #expect(unused.k == 7 && unused.pi == .last)
        let help: String = try bsvi(["train", "--help"]).stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        let expected = "(default: " + MethodDefaults.describe({ "\($0.sviLearningRate)" }, methods: [.svi, .bsvi, .iwae, .vae]) + ")"
        #expect(help.contains(expected), "\(help)")
    }

    @Test("training improves the held-out log-likelihood of the untrained model")
    func trainingImproves() throws {
        let dir = try makeTemporaryDirectory(prefix: "improve")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeToyDataset(dir + "/toy.h5", train: 400)
        let base = ["train", "--data", dir + "/toy.h5", "--batch-size", "20", "--method", "bsvi", "--k", "3"] + tinyModel
        let untrained = try bsvi(base + ["--run-dir", dir + "/a", "--max-steps", "1", "--lr", "1e-6"])
        let trained = try bsvi(base + ["--run-dir", dir + "/b", "--epochs", "15", "--lr", "0.01"])
        #expect(untrained.status == 0 && trained.status == 0, "\(untrained.stderr)\(trained.stderr)")
        let before = try CheckpointFile.read(dir + "/a/final.h5").history.last!.logLikelihood
        let after = try CheckpointFile.read(dir + "/b/final.h5").history.last!.logLikelihood
        #expect(after > before + 1, "log-likelihood \(before) → \(after)")
    }
}
