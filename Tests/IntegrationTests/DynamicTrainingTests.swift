import BSVI
import BSVIStorage
import BSVITraining
import DataFixtures
import Foundation
import Testing

/// Training on a dynamically binarized dataset through the release binary: `prepare-data
/// --binarize dynamic` stores /train as intensities and every epoch draws a fresh binary image
/// of each example keyed by (seed, epoch, example id). So a resumed run is bit-exact, the run
/// does not depend on the number of ranks, and evaluation uses the stored binary /valid and /test.
@Suite("Training with dynamic binarization", .serialized)
struct DynamicTrainingTests {
    static let trainRows = 96, validRows = 24, testRows = 20, width = 16

    /// Intensity rows: noisy copies of 4 grey-level prototypes (pixels near 30 or 225, a few
    /// mid-grey), so a VAE has something to learn and the draws really vary.
    static func intensities(rows: Int, seed: UInt64) -> [UInt8] {
        let levels: [Int] = [30, 225, 128, 225, 30]
        let noise = DataFixtures.pseudoRandomBytes(rows * (width + 1), seed: seed)
        return (0..<rows).flatMap { r -> [UInt8] in
            let prototype = Int(noise[r * (width + 1)]) % 4
            return (0..<width).map { c in
                let level = levels[(prototype + c * (prototype + 1)) % levels.count]
                return UInt8(clamping: level + Int(noise[r * (width + 1) + 1 + c]) % 41 - 20)
            }
        }
    }

    /// Writes .npy inputs and converts them with `prepare-data --binarize dynamic` into
    /// `dir`/dynamic.h5: /train 96 intensity rows, /valid the last 24 training rows and /test
    /// 20 rows, both binarized once. Returns the dataset's path.
    static func prepareDynamicData(_ dir: String) throws -> String {
        let train = intensities(rows: trainRows + validRows, seed: 41), test = intensities(rows: testRows, seed: 42)
        try DataFixtures.write(dir + "/train.npy", DataFixtures.npy(train.map(Double.init), shape: [trainRows + validRows, 4, 4], type: .uint8))
        try DataFixtures.write(dir + "/test.npy", DataFixtures.npy(test.map(Double.init), shape: [testRows, 4, 4], type: .uint8))
        let p = try bsvi(["prepare-data", "--train", dir + "/train.npy", "--test", dir + "/test.npy", "--valid-from-train", "\(validRows)",
                          "--binarize", "dynamic", "--seed", "3", "--output", dir + "/dynamic.h5"])
        try #require(p.status == 0, "\(p.stderr)")
        return dir + "/dynamic.h5"
    }

    static let announcement = "dynamic binarization: a fresh binary image of every row each epoch"

    @Test("N steps straight = K steps (stopped mid-way through the second epoch by --max-steps), then --resume auto to N: identical bits",
          arguments: [1, 2])
    func resumeIsBitExact(ranks: Int) throws {
        let dir = try makeTemporaryDirectory(prefix: "dynresume\(ranks)")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = try Self.prepareDynamicData(dir)
        let perEpoch = CheckpointRun.stepsPerEpoch(trainRows: Self.trainRows)
        let total = 2 * perEpoch
        // Mid-epoch in the second epoch: the resumed process loads epoch 1 as its first epoch,
        // so draws keyed by anything the process counts (rather than the epoch) would differ.
        let stop = perEpoch + perEpoch / 2 + 1
        try #require(stop > perEpoch && stop < total && stop % perEpoch != 0)
        func flags(_ run: String) -> [String] {
            CheckpointRun.flags(data: data, runDir: run) + ["--eval-every", "1", "--eval-limit", "8"]
        }

        let straight = try CheckpointRun.train(ranks: ranks, flags(dir + "/straight") + ["--max-steps", "\(total)"])
        #expect(straight.status == 0, "\(straight.stderr)")
        #expect(straight.stdout.contains(Self.announcement), "\(straight.stdout)")
        let first = try CheckpointRun.train(ranks: ranks, flags(dir + "/split") + ["--max-steps", "\(stop)"])
        #expect(first.status == 0, "\(first.stderr)")
        let second = try CheckpointRun.train(ranks: ranks, flags(dir + "/split") + ["--max-steps", "\(total)", "--resume", "auto"])
        #expect(second.status == 0, "\(second.stdout)\n\(second.stderr)")
        #expect(second.stdout.contains("resuming from \(dir)/split/checkpoints/ckpt-\(stop).h5 at step \(stop)"), "\(second.stdout)")

        let a = try CheckpointFile.read(dir + "/straight/final.h5", requireTrainingState: true)
        let b = try CheckpointFile.read(dir + "/split/final.h5", requireTrainingState: true)
        #expect(a.step == total)
        CheckpointRun.expectIdenticalState(a, b, "dynamic data, P=\(ranks), split at step \(stop)")
        #expect(a.history.map(\.step) == [perEpoch, total])
        #expect(b.history.map(\.logLikelihood.bitPattern) == a.history.map(\.logLikelihood.bitPattern))
    }

    /// The objective gradient (mean over the global batch) of the first step, computed in this
    /// process from the images DynamicBinarization draws for `drawEpoch` from the stored
    /// intensities of the first global batch of epoch 0 — the union of the ranks' examples.
    static func referenceGradient(data: String, seed: UInt64, drawEpoch: Int) throws -> [Float] {
        var objective = ObjectiveSection()
        objective.method = .bsvi; objective.k = 3; objective.pi = .learned
        let ds = try BinaryDataset(path: data)
        let (n, width) = try ds.shape(of: .train)
        var intensities = [UInt8](repeating: 0, count: n * width)
        try intensities.withUnsafeMutableBufferPointer { try ds.readIntensityRows(.train, rows: 0..<n, into: $0.baseAddress!) }
        let batch = WorldSizeTests.batch
        let ids = Array(ShardPlan.epochPermutation(totalRows: n, seed: seed, epoch: 0).prefix(batch))
        let xb = FloatBuffer(count: batch * width)
        let x = xb.matrix(rows: batch, cols: width)
        intensities.withUnsafeBufferPointer {
            DynamicBinarization.draw(batch: ids, from: $0.baseAddress!, firstRow: 0, seed: seed, epoch: drawEpoch, into: x)
        }
        let model = VAEModel(shape: ModelShape(inputDim: width, latentDim: 2, hiddenDims: [8], activation: .tanh),
                             piCount: objective.settings.piCount)
        let params = model.makeInitialParameters(seed: seed)
        let grads = FloatBuffer(count: model.vectorLength)
        BatchObjective(model: model, settings: objective.settings, batchCapacity: batch)
            .accumulate(x: x, exampleIDs: ids, noise: NoiseSource(seed: seed, purpose: .trainingNoise, context: 0), params: params, grads: grads)
        return grads.array.map { $0 / Float(batch) }
    }

    /// The largest |a − b| relative to |b| plus b's root mean square.
    static func relativeDifference(_ a: [Float], _ b: [Float]) -> Float {
        let rms = (b.reduce(0) { $0 + $1 * $1 } / Float(b.count)).squareRoot()
        return zip(a, b).map { abs($0 - $1) / (abs($1) + rms) }.max() ?? .infinity
    }

    @Test("1 and 2 ranks draw the same images (first-step gradient = the one drawn in process) and stay within WorldSizeTests' tolerance for 200 steps")
    func sameRunOnOneAndTwoRanks() throws {
        let dir = try makeTemporaryDirectory(prefix: "dynranks")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = try Self.prepareDynamicData(dir)

        // The first step's gradient, on each world size, against the in-process reference.
        let reference = try Self.referenceGradient(data: data, seed: 5, drawEpoch: 0)
        let otherDraw = try Self.referenceGradient(data: data, seed: 5, drawEpoch: 1)
        // The comparison tells draws apart: another epoch's images give another gradient.
        #expect(Self.relativeDifference(otherDraw, reference) > 1e-2)
        for p in [1, 2] {
            let dump = dir + "/grad\(p).bin"
            let r = try WorldSizeTests.train(ranks: p, WorldSizeTests.flags(data: data, runDir: dir + "/g\(p)")
                                                + ["--epochs", "0", "--max-steps", "1", "--no-final-eval", "--dump-gradient", dump])
            try #require(r.status == 0, "P=\(p): \(r.stderr)")
            let dumped = try Data(contentsOf: URL(fileURLWithPath: dump)).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            try #require(dumped.count == reference.count)
            // As MPITests: up to summation order, 1e-4 relative.
            let worst = Self.relativeDifference(dumped, reference)
            #expect(worst < 1e-4, "P=\(p): the first gradient differs from the in-process one by \(worst) (relative)")
        }

        var runs: [Int: (Checkpoint, Double)] = [:]
        for p in [1, 2] {
            let run = dir + "/p\(p)"
            let r = try WorldSizeTests.run(ranks: p, data: data, runDir: run, until: WorldSizeTests.steps)
            try #require(r.status == 0, "P=\(p): \(r.stderr)")
            #expect(r.stdout.contains(Self.announcement), "\(r.stdout)")
            runs[p] = (try CheckpointFile.read(run + "/final.h5", requireTrainingState: true), try WorldSizeTests.finalLogLikelihood(run))
        }
        let (reference1, referenceLL) = runs[1]!
        let (c, ll) = runs[2]!
        WorldSizeTests.expectClose(c, ll, to: reference1, referenceLL, "dynamic data, P=2 vs P=1")
    }

    @Test("a dataset converted with --binarize dynamic trains under mpirun -np 2, evaluates on its binary splits, and refuses a binary read of /train")
    func trainsUnderMPI() throws {
        let dir = try makeTemporaryDirectory(prefix: "dynmpi")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = try Self.prepareDynamicData(dir)
        let i = try bsvi(["inspect", data, "--json"])
        #expect(i.status == 0, "\(i.stderr)")
        let j = try #require(try JSONSerialization.jsonObject(with: Data(i.stdout.utf8)) as? [String: Any])
        #expect(j["binarization"] as? String == "dynamic")
        let splits = try #require(j["splits"] as? [[String: Any]])
        #expect(splits.map { $0["holds"] as? String } == ["intensities", "binary", "binary"])

        let run = dir + "/run"
        let t = try mpirunBSVI(ranks: 2, ["train", "--data", data, "--run-dir", run, "--batch-size", "16", "--epochs", "2", "--seed", "5",
                                          "--eval-every", "1"] + tinyModel + ["--method", "bsvi", "--k", "3", "--pi", "learned"])
        #expect(t.status == 0 && t.stderr.isEmpty, "\(t.stderr)")
        #expect(t.stdout.contains("on 2 rank(s)") && t.stdout.contains(Self.announcement), "\(t.stdout)")
        let summary = try readJSON(run + "/summary.json")
        let sums = try #require(summary["parameter_checksums"] as? [String])
        #expect(sums.count == 2 && Set(sums).count == 1, "parameters differ across ranks: \(sums)")
        #expect(summary["steps"] as? Int == 2 * (Self.trainRows / 16))
        let final = try #require(summary["final_evaluation"] as? [String: Any])
        #expect(final["examples"] as? Int == Self.testRows)
        #expect((final["log_likelihood"] as? Double).map { $0.isFinite && $0 < 0 } == true, "\(final)")
        let checkpoint = try CheckpointFile.read(run + "/final.h5")
        #expect(checkpoint.history.filter { $0.split == "valid" }.map(\.examples) == [Self.validRows, Self.validRows])

        let e = try mpirunBSVI(ranks: 2, ["eval", run + "/final.h5", "--data", data, "--split", "valid", "--split", "test",
                                          "--samples", "10", "--json"])
        #expect(e.status == 0, "\(e.stderr)")
        let lines = e.stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(lines.map { $0["split"] as? String } == ["valid", "test"], "\(e.stdout)")
        #expect(lines.map { $0["examples"] as? Int } == [Self.validRows, Self.testRows])
        #expect(lines.allSatisfy { ($0["log_likelihood"] as? Double)?.isFinite == true })

        // /train has no fixed binary image to evaluate: refused, naming the file, the split and what to use.
        let onTrain = try bsvi(["eval", run + "/final.h5", "--data", data, "--split", "train", "--samples", "10"])
        #expect(onTrain.status == 65, "\(onTrain.stderr)")
        #expect(onTrain.stderr.contains("dynamic.h5") && onTrain.stderr.contains("/train")
                    && onTrain.stderr.contains("dynamic binarization") && onTrain.stderr.contains("/valid or /test"), "\(onTrain.stderr)")
    }
}
