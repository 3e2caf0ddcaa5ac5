import ArgumentParser
import BSVI
import BSVIParallel
import BSVIStorage
import BSVITraining
import CStopSignal
import Foundation

struct Compare: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Paired comparison of two checkpoints: log p̂_A(x) − log p̂_B(x) on the same examples with common random numbers, mean ± standard error; runs under mpirun too.",
        discussion: """
            Both checkpoints are evaluated on the same rows with the same seed. Evaluation noise is keyed by \
            (seed, example id), so models with the same latent size draw the same ε for every example and \
            sample (common random numbers). With different latent sizes the comparison is still paired by \
            example but the noise is shared only in part; a warning says so and the JSON has \
            "common_random_numbers": false. See docs/evaluation.md.
            """)

    @Argument(help: "Checkpoint A.") var a: String
    @Argument(help: "Checkpoint B.") var b: String
    @Option(help: "Split: test, valid or train.") var split: DataSplit = .test
    @OptionGroup var options: SplitEvaluationOptions

    func run() throws {
        // A signal abandons the comparison on every rank within a few examples (exit 75); they
        // are held since main began (StopsGracefully).
        let comm = makeCommunicator(stallTimeout: options.stallTimeout)
        runCollectively(comm) {
            try options.matmulPrecision.checkAvailable(comm: comm)
            let modelA = try ModelDistribution.load(a, comm: comm)
            let modelB = try ModelDistribution.load(b, comm: comm)
            let shapeA = modelA.model.shape, shapeB = modelB.model.shape
            guard shapeA.inputDim == shapeB.inputDim else {
                throw CollectiveError(message: "\(b): input_dim \(shapeB.inputDim) differs from \(a)'s \(shapeA.inputDim) "
                                      + "(compare checkpoints trained on the same data)", exitStatus: .badData, silent: !comm.isRoot)
            }
            let commonRandomNumbers = shapeA.latentDim == shapeB.latentDim
            if !commonRandomNumbers && comm.isRoot {
                printError("warning: latent sizes differ (A: \(shapeA.latentDim), B: \(shapeB.latentDim)), so the models cannot draw the "
                           + "same ε: the difference is still paired by example, but its Monte Carlo noise is shared only in part")
            }
            try options.checkPerExampleOutput(comm: comm, checkpoints: [a, b])
            let dataset = try options.openDataset(comm: comm, trainedOn: modelA.trainingDataPath)
            options.warnIfTrainedOnOtherData([(a, modelA), (b, modelB)], dataset: dataset, comm: comm)
            let progress = ProgressReporter(enabled: comm.isRoot && !options.json)
            let evaluationA = try options.evaluate(modelA, label: "A on ", split: split,
                                                   refinement: options.refinement(checkpointConfig: modelA.configJSON),
                                                   dataset: dataset, comm: comm, progress: progress)
            let evaluationB = try options.evaluate(modelB, label: "B on ", split: split,
                                                   refinement: options.refinement(checkpointConfig: modelB.configJSON),
                                                   dataset: dataset, comm: comm, progress: progress)
            let comparison = CheckpointComparison(aCheckpoint: a, bCheckpoint: b, a: evaluationA, b: evaluationB,
                                                  commonRandomNumbers: commonRandomNumbers)
            // The results first: a --per-example file that cannot be written must not take them with it.
            if comm.isRoot { try report(comparison.summary, ranks: comm.size, progress: progress) }
            if let path = options.perExample {
                try comm.rootDecides { try PerExampleFile.write(comparison, data: options.data, to: path) }
                progress.line("  per-example values: \(path)")  // rank 0, text output only
            }
        }
    }

    func report(_ r: ComparisonSummary, ranks: Int, progress: ProgressReporter) throws {
        if options.json {
            var object = try JSONSerialization.jsonObject(with: JSONEncoder.snakeCase.encode(r)) as? [String: Any] ?? [:]
            object["ranks"] = ranks
            object["data"] = options.data
            object["proposal"] = options.proposal.rawValue
            object["matmul_precision"] = options.matmulPrecision.rawValue
            if let path = options.perExample { object["per_example"] = path }
            try printJSONLine(object)
            return
        }
        // A refined proposal is each model's own: name how many SVI steps built it.
        let proposal = (options.proposal == .refined ? "refined proposal (A: λ_\(r.aRefinementSteps), B: λ_\(r.bRefinementSteps))" : "encoder proposal")
            + options.matmulPrecisionNote
        progress.line(String(numbers: """
            compare on the %@ split: %d examples, K = %d samples from the %@, seed %llu, %@
              A %@: log p(x) ≈ %.4f ± %.4f (mean ESS %.1f%% of K)
              B %@: log p(x) ≈ %.4f ± %.4f (mean ESS %.1f%% of K)
              A − B = %.4f ± %.4f nats per example (mean ± paired standard error); A better on %.1f%% of examples
            """, r.split, r.examples, r.samples, proposal, r.seed,
            r.commonRandomNumbers ? "common random numbers" : "no common random numbers (latent sizes differ)",
            r.aCheckpoint, r.aLogLikelihood, r.aLogLikelihoodSE, 100 * r.aEssFractionMean,
            r.bCheckpoint, r.bLogLikelihood, r.bLogLikelihoodSE, 100 * r.bEssFractionMean,
            r.difference, r.differenceSE, 100 * r.aBetterFraction))
    }
}
