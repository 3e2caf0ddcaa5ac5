import ArgumentParser
import BSVI
import BSVIParallel
import BSVIStorage
import BSVITraining
import CStopSignal
import Foundation

struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Importance-sampled log-likelihood, ELBO(λ₀) and ELBO after refinement of a checkpoint, with standard errors and importance-weight diagnostics; runs under mpirun too.",
        discussion: "Every number is explained in docs/evaluation.md; to compare two checkpoints use `bsvi-dist compare`.")

    @Argument(help: "Checkpoint file (only the model part is needed).") var checkpoint: String
    @Option(help: "Split: test, valid or train (repeat the option for several splits).") var split: [DataSplit] = [.test]
    @OptionGroup var options: SplitEvaluationOptions
    @Flag(help: "Amortization-gap diagnostics (Cremer et al. 2018): the best Gaussian λ* is estimated by --gap-steps SVI steps (Adam, η = 0.1 unless --svi-rule/--svi-lr say otherwise) whose step size decays as η/√(1 + 20j/N), averaging the last three quarters of the iterates; reports the inference gap (log p − ELBO(λ₀)) split into the approximation gap (log p − ELBO(λ*)) and the amortization gap (ELBO(λ*) − ELBO(λ₀)).")
    var gaps = false
    @Option(help: "SVI steps per example for --gaps (used instead of --refine-steps).") var gapSteps: Int = 1000

    func validate() throws {
        if !(1...EvaluationSection.maxRefinementSteps).contains(gapSteps) {
            throw ValidationError("--gap-steps must be between 1 and \(EvaluationSection.maxRefinementSteps), got \(gapSteps)")
        }
        // --gaps refines with --gap-steps: a --refine-steps beside it would be silently unused.
        if gaps, let steps = options.refineSteps {
            throw ValidationError("--refine-steps \(steps) has no effect with --gaps, which refines with --gap-steps (\(gapSteps)); pass one or the other")
        }
        // A split named twice would be evaluated twice, at twice the cost, into two identical results.
        if let repeated = split.first(where: { s in split.filter { $0 == s }.count > 1 }) {
            throw ValidationError("--split \(repeated.rawValue) is given more than once; name each split once")
        }
        if options.perExample != nil && split.count > 1 {
            throw ValidationError("--per-example writes one split's examples; run eval once per --split")
        }
    }

    func run() throws {
        // A signal abandons the evaluation on every rank within a few examples (exit 75); they
        // are held since main began (StopsGracefully).
        let comm = makeCommunicator(stallTimeout: options.stallTimeout)
        runCollectively(comm) {
            try options.matmulPrecision.checkAvailable(comm: comm)
            let ckpt = try ModelDistribution.load(checkpoint, comm: comm)
            try options.checkPerExampleOutput(comm: comm, checkpoints: [checkpoint])
            let dataset = try options.openDataset(comm: comm, trainedOn: ckpt.trainingDataPath)
            options.warnIfTrainedOnOtherData([(checkpoint, ckpt)], dataset: dataset, comm: comm)
            let refinement = gaps ? gapRefinement() : options.refinement(checkpointConfig: ckpt.configJSON)
            let progress = ProgressReporter(enabled: comm.isRoot && !options.json)
            // Every split first, then the reports: a stop signal (exit 75) leaves nothing printed or
            // written, not the first split's results alone.
            let evaluations = try split.map { split in
                try options.evaluate(ckpt, label: "", split: split, refinement: refinement, dataset: dataset, comm: comm, progress: progress)
            }
            for examples in evaluations {
                // The results first: a --per-example file that cannot be written (a full disk)
                // must not take the evaluation's numbers with it.
                if comm.isRoot { try report(examples.summary, refinement: refinement, rowsPerRank: examples.rowsPerRank, progress: progress) }
                if let path = options.perExample {
                    try comm.rootDecides { try PerExampleFile.write(examples, checkpoint: checkpoint, data: options.data, to: path) }
                    progress.line("  per-example values: \(path)")  // rank 0, text output only
                }
            }
        }
    }

    /// --gaps searches each example's best Gaussian the same way whatever the training's
    /// refinement was: the optimum does not depend on it, and Adam's per-coordinate steps need no
    /// tuning to a model's gradient scale (sgd and momentum did, and fell short even tuned).
    /// --svi-rule and --svi-lr still override it.
    func gapRefinement() -> RefinementSettings {
        var r = RefinementSettings(steps: gapSteps, learningRate: options.sviLr ?? 0.1, rule: options.sviRule ?? .adam)
        r.target = .optimum
        return r
    }

    func report(_ r: EvaluationResult, refinement: RefinementSettings, rowsPerRank: [Int], progress: ProgressReporter) throws {
        // Cremer et al. (2018): log p − ELBO(λ₀) = [log p − ELBO(q*)] + [ELBO(q*) − ELBO(λ₀)],
        // approximation gap + amortization gap, with q* approximated by many SVI steps.
        let approximationGap = r.logLikelihood - r.elboRefined
        let inferenceGap = r.logLikelihood - r.elbo
        if options.json {
            var object: [String: Any] = [
                "checkpoint": checkpoint, "data": options.data, "split": r.split, "examples": r.examples, "samples": r.samples, "seed": options.seed,
                "proposal": r.proposal, "refinement_steps": r.refinementSteps, "matmul_precision": options.matmulPrecision.rawValue,
                "log_likelihood": r.logLikelihood, "log_likelihood_se": r.logLikelihoodSE,
                "elbo": r.elbo, "elbo_se": r.elboSE, "elbo_refined": r.elboRefined, "elbo_refined_se": r.elboRefinedSE,
                "amortization_gap": r.amortizationGap,
                "ess_fraction_mean": r.essFractionMean, "ess_fraction_p05": r.essFractionP05, "max_weight_mean": r.maxWeightMean,
                "ranks": rowsPerRank.count, "rows_per_rank": rowsPerRank, "seconds": r.seconds,
                "peak_resident_mib": ResidentMemory.peakMiB ?? -1,
            ]
            if let path = options.perExample { object["per_example"] = path }
            if gaps {
                object["approximation_gap"] = approximationGap
                object["inference_gap"] = inferenceGap
            }
            try printJSONLine(object)
            return
        }
        // The labels padded to one width, so that the numbers line up for any k.
        let refinedLabel = (gaps ? "ELBO(λ*)" : "ELBO(λ_\(r.refinementSteps))").padding(toLength: 13, withPad: " ", startingAt: 0)
        progress.line(String(numbers: """
            %@ split: %d examples, K = %d samples from the %@ proposal%@ (± standard error over examples)
              log p(x)      ≈ %.4f ± %.4f nats per example
              ELBO(λ₀)      = %.4f ± %.4f
              %@ = %.4f ± %.4f  (refined: %@ η=%g)
              amortization gap %@ − ELBO(λ₀) = %.4f
              importance weights: ESS/K mean %.4f, 5th percentile %.4f; largest normalised weight mean %.4f
            """, r.split, r.examples, r.samples, r.proposal,
            options.matmulPrecisionNote,
            r.logLikelihood, r.logLikelihoodSE, r.elbo, r.elboSE,
            refinedLabel, r.elboRefined, r.elboRefinedSE, refinement.rule.rawValue, Double(refinement.learningRate),
            gaps ? "ELBO(λ*)" : "ELBO(λ_k)", r.amortizationGap, r.essFractionMean, r.essFractionP05, r.maxWeightMean))
        if gaps {
            progress.line(String(numbers: """
                  inference gap     log p − ELBO(λ₀)  = %.4f
                  approximation gap log p − ELBO(λ*)  = %.4f   (λ*: mean of the last ¾ of %d decaying SVI steps)
                  amortization gap  ELBO(λ*) − ELBO(λ₀) = %.4f
                """, inferenceGap, approximationGap, r.refinementSteps, r.amortizationGap))
        }
    }
}
