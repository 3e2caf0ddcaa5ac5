import ArgumentParser
import BSVI
import BSVIParallel
import BSVIStorage
import BSVITraining
import CStopSignal
import Foundation

/// The flags `eval` and `compare` share: what to evaluate on, how, and where the results go.
struct SplitEvaluationOptions: ParsableArguments {
    @Option(help: "Dataset file.") var data: String = RunConfiguration.defaultDataPath
    @Option(help: "Importance samples K per example.") var samples: Int = 5000
    @Option(help: "Evaluate only the first N rows (0: all).") var limit: Int = 0
    @Option(help: "Importance-sampling proposal: encoder (λ₀) or refined (λ_k).") var proposal: Proposal = .encoder
    @Option(help: "SVI steps for ELBO(λ_k) and the refined proposal (default: the training's k for svi/bsvi, at least 1; 5 for vae/iwae; bsvi's default k for a file without /training).") var refineSteps: Int?
    @Option(help: "SVI step size (default: the training's; bsvi's default for a file without /training).") var sviLr: Float?
    @Option(help: "SVI rule (default: the training's; bsvi's default for a file without /training).") var sviRule: RefinementRule?
    @Option(help: "The decoder's products while scoring samples: highest (float32, the default: the same bits on every CPU), high (bfloat16 pairs hi + lo on AMX tiles, each product within about 2^-16 of float32's) or medium (one bfloat16 per factor, about 2^-8, on AMX tiles or AVX512_BF16 vectors); high needs an Intel CPU with AMX, medium AMX or AVX512_BF16 (AMD Zen 4 and later), both the avx512 kernel path (docs/evaluation.md).")
    var matmulPrecision: MatmulPrecision = .highest
    @Option(help: "Seed of the evaluation noise (with the example id it keys every draw).") var seed: UInt64 = 1
    @Option(help: "Write each example's values to this HDF5 file (layout in docs/evaluation.md); replaced if it exists.")
    var perExample: String?
    @Option(help: "Abort the job if a collective has not completed in this many seconds (0: never).") var stallTimeout: Double = 300
    @Flag(help: "Print JSON instead of text.") var json = false

    func validate() throws {
        if !(1...EvaluationSection.maxSamples).contains(samples) {
            throw ValidationError("--samples must be between 1 and \(EvaluationSection.maxSamples), got \(samples)")
        }
        if limit < 0 { throw ValidationError("--limit must be ≥ 0 (0: all rows), got \(limit)") }
        if let r = refineSteps, !(0...EvaluationSection.maxRefinementSteps).contains(r) {
            throw ValidationError("--refine-steps must be between 0 and \(EvaluationSection.maxRefinementSteps), got \(r)")
        }
        if let l = sviLr, !(l >= 0 && l.isFinite) { throw ValidationError("--svi-lr must be finite and ≥ 0, got \(l)") }
        if !(stallTimeout >= 0 && stallTimeout.isFinite) { throw ValidationError("--stall-timeout must be ≥ 0 seconds (0: never), got \(stallTimeout)") }
        if let p = perExample, p.isEmpty { throw ValidationError("--per-example needs a file name, e.g. --per-example test-examples.h5") }
    }

    /// What eval's and compare's text reports add after the proposal: nothing at float32, else
    /// the reduced precision of the decoder's products.
    var matmulPrecisionNote: String {
        matmulPrecision == .highest ? "" : ", decoder products at --matmul-precision \(matmulPrecision.rawValue)"
    }

    /// The evaluation's SVI refinement: the checkpoint's, with the flags' overrides.
    func refinement(checkpointConfig: String?) -> RefinementSettings {
        var r = RunConfiguration.evaluationRefinement(checkpointConfig: checkpointConfig)
        if let s = refineSteps { r.steps = s }
        if let l = sviLr { r.learningRate = l }
        if let rule = sviRule { r.rule = rule }
        return r
    }

    /// Rank 0 warns for each checkpoint trained on other data than `dataset`: evaluating on the
    /// default --data by mistake, or on another dataset of the same shape (MNIST for
    /// Fashion-MNIST), would otherwise pass without a word. What the checkpoint's run recorded
    /// decides (a copy elsewhere is the same data): shapes and binarization, then /train's rows;
    /// a checkpoint from before that was recorded is compared by its recorded path, when that
    /// file is here. A collective (each rank reads its part of /train, once for all).
    func warnIfTrainedOnOtherData(_ checkpoints: [(path: String, model: DistributedModel)], dataset: BinaryDataset, comm: Communicator) {
        let here = TrainingData.compared(with: checkpoints.map(\.model.trainingData), dataset, comm: comm)
        guard comm.isRoot else { return }
        for (checkpoint, model) in checkpoints {
            let trained = model.trainingDataPath
            // The run's --data is worth naming unless it is this very file (since re-prepared).
            let advice = trained.flatMap { path in
                FileIdentity.sameFile(path, data) ? nil
                    : "; pass --data \(path) (its run's --data) to evaluate on the data it was trained on"
            } ?? ""
            if model.trainingData != nil {
                let differences = here.differences(from: model.trainingData, referenceName: "trained on")
                if !differences.isEmpty {
                    printError("warning: \(checkpoint) was trained on other data than --data \(data): " + differences.joined(separator: "; ") + advice)
                }
            } else if let trained, let trainedFile = FileIdentity(trained), let dataFile = FileIdentity(data), trainedFile != dataFile {
                printError("warning: \(checkpoint) was trained on \(trained), not on --data \(data)" + advice)
            }
        }
    }

    /// The --data file, the same on every rank (a collective; see `requireSameDataset`). A
    /// missing file names the flag and, when known, the data the checkpoint trained on
    /// (`trainedOn`): the default data/fashion-mnist.h5 is relative to where eval runs.
    func openDataset(comm: Communicator, trainedOn: String? = nil) throws -> BinaryDataset {
        let dataset = try comm.onEveryRank {
            do { return try BinaryDataset(path: data) } catch let e as StorageError where e.kind == .missingInput && e.file == data {
                let recorded = trainedOn.flatMap { FileIdentity.sameFile($0, data) ? nil : $0 }
                throw StorageError(file: data, problem: "file not found",
                                   fix: "pass --data FILE" + (recorded.map { "; the checkpoint was trained on --data \($0)" } ?? ", the dataset to evaluate on"),
                                   kind: .missingInput)
            }
        }
        try comm.requireSameDataset(dataset)
        return dataset
    }

    /// Rank 0 checks that the --per-example file can be created, and is none of the command's
    /// inputs (`checkpoints` and --data), before any long evaluation.
    func checkPerExampleOutput(comm: Communicator, checkpoints: [String]) throws {
        guard let path = perExample else { return }
        try comm.rootDecides { try OutputFile.checkCanCreate(path, flag: "--per-example", inputs: checkpoints + [data]) }
    }

    /// One checkpoint's per-example evaluation of `split` on every rank; a stop signal abandons it
    /// on every rank (EvaluationInterrupted, exit 75).
    func evaluate(_ ckpt: DistributedModel, label: String, split: DataSplit, refinement: RefinementSettings,
                  dataset: BinaryDataset, comm: Communicator, progress: ProgressReporter) throws -> PerExampleEvaluation {
        try DistributedEvaluation.evaluateExamples(
            comm: comm, dataset: dataset, split: split, limit: limit, model: ckpt.model, params: FloatBuffer(ckpt.parameters),
            samples: samples, refinement: refinement, proposal: proposal, seed: seed, matmulPrecision: matmulPrecision,
            stopRequested: { bsvi_stop_signal() != 0 },
            progress: { done, total in
                progress.update("evaluating \(label)\(split.rawValue): \(done)/\(total)", fraction: Double(done) / Double(max(total, 1)))
            })
    }
}

/// One JSON object on one line, keys sorted.
func printJSONLine(_ object: [String: Any]) throws {
    let data = try JSONSerialization.data(withJSONObject: jsonSafe(object), options: [.sortedKeys, .withoutEscapingSlashes])
    print(String(decoding: data, as: UTF8.self))
}

/// JSON has no NaN or ±∞, and JSONSerialization refuses them: a diverging refinement would lose
/// the whole evaluation. They become the strings "nan", "inf" and "-inf", as in `inspect --json`.
private func jsonSafe(_ value: Any) -> Any {
    switch value {
    case let d as Double where !d.isFinite: return d.isNaN ? "nan" : d > 0 ? "inf" : "-inf"
    case let f as Float where !f.isFinite: return f.isNaN ? "nan" : f > 0 ? "inf" : "-inf"
    case let dictionary as [String: Any]: return dictionary.mapValues(jsonSafe)
    case let array as [Any]: return array.map(jsonSafe)
    default: return value
    }
}
