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
        abstract: "Importance-sampled log-likelihood, ELBO(λ₀) and ELBO after refinement of a checkpoint; runs under mpirun too.")

    @Argument(help: "Checkpoint file (only the model part is needed).") var checkpoint: String
    @Option(help: "Dataset file.") var data: String = RunConfiguration.defaultDataPath
    @Option(help: "Split: test, valid or train (repeat the option for several splits).") var split: [DataSplit] = [.test]
    @Option(help: "Importance samples K per example.") var samples: Int = 5000
    @Option(help: "Evaluate only the first N rows (0: all).") var limit: Int = 0
    @Option(help: "Importance-sampling proposal: encoder (λ₀) or refined (λ_k).") var proposal: Proposal = .encoder
    @Option(help: "SVI steps for ELBO(λ_k) and the refined proposal (default: the checkpoint's k for svi/bsvi, at least 1; otherwise 5).") var refineSteps: Int?
    @Option(help: "SVI step size (default: the checkpoint's).") var sviLr: Float?
    @Option(help: "SVI rule (default: the checkpoint's).") var sviRule: RefinementRule?
    @Option(help: "Seed of the evaluation noise.") var seed: UInt64 = 1
    @Option(help: "Abort the job if a collective has not completed in this many seconds (0: never).") var stallTimeout: Double = 300
    @Flag(help: "Amortization-gap diagnostics (Cremer et al. 2018): ELBO after --gap-steps SVI steps stands in for the best Gaussian; reports the approximation and amortization gaps.")
    var gaps = false
    @Option(help: "SVI steps per example for --gaps.") var gapSteps: Int = 200
    @Flag(help: "Print one JSON object per split instead of text.") var json = false

    func validate() throws {
        if samples < 1 { throw ValidationError("--samples must be ≥ 1, got \(samples)") }
        if limit < 0 { throw ValidationError("--limit must be ≥ 0 (0: all rows), got \(limit)") }
        if let r = refineSteps, r < 0 { throw ValidationError("--refine-steps must be ≥ 0, got \(r)") }
        if gapSteps < 1 { throw ValidationError("--gap-steps must be ≥ 1, got \(gapSteps)") }
        if let l = sviLr, !(l >= 0) { throw ValidationError("--svi-lr must be ≥ 0, got \(l)") }
    }

    func run() throws {
        // A signal abandons the evaluation on every rank within a few examples (exit 75).
        bsvi_install_stop_handlers()
        let comm = makeCommunicator(stallTimeout: stallTimeout)
        runCollectively(comm) {
            let ckpt = try ModelDistribution.load(checkpoint, comm: comm)
            let dataset = try BinaryDataset(path: data)
            var refinement = RunConfiguration.evaluationRefinement(checkpointConfig: ckpt.configJSON)
            if let r = refineSteps { refinement.steps = r }
            if gaps { refinement.steps = gapSteps }
            if let l = sviLr { refinement.learningRate = l }
            if let r = sviRule { refinement.rule = r }
            let params = FloatBuffer(ckpt.parameters)
            let progress = ProgressReporter(enabled: comm.isRoot && !json)
            for split in split {
                let r = try DistributedEvaluation.run(
                    comm: comm, dataset: dataset, split: split, limit: limit, model: ckpt.model, params: params, samples: samples,
                    refinement: refinement, proposal: proposal, seed: seed, stopRequested: { bsvi_stop_signal() != 0 },
                    progress: { done, total in progress.update("evaluating \(split.rawValue): \(done)/\(total)", fraction: Double(done) / Double(max(total, 1))) })
                if comm.isRoot { try report(r, refinement: refinement, ranks: comm.size, progress: progress) }
            }
        }
    }

    func report(_ r: EvaluationResult, refinement: RefinementSettings, ranks: Int, progress: ProgressReporter) throws {
        // Cremer et al. (2018): log p − ELBO(λ₀) = [log p − ELBO(q*)] + [ELBO(q*) − ELBO(λ₀)],
        // approximation gap + amortization gap, with q* approximated by many SVI steps.
        let approximationGap = r.logLikelihood - r.elboRefined
        let inferenceGap = r.logLikelihood - r.elbo
        if json {
            var object: [String: Any] = [
                "checkpoint": checkpoint, "split": r.split, "examples": r.examples, "samples": r.samples,
                "proposal": r.proposal, "refinement_steps": r.refinementSteps, "log_likelihood": r.logLikelihood,
                "elbo": r.elbo, "elbo_refined": r.elboRefined, "amortization_gap": r.amortizationGap,
                "ranks": ranks, "seconds": r.seconds,
                "peak_resident_mib": ResidentMemory.peakMiB ?? -1,
            ]
            if gaps {
                object["approximation_gap"] = approximationGap
                object["inference_gap"] = inferenceGap
            }
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        progress.line(String(format: """
            %@ split: %d examples, K = %d samples from the %@ proposal
              log p(x)      ≈ %.4f nats per example
              ELBO(λ₀)      = %.4f
              ELBO(λ_%d)     = %.4f  (refined: %@ η=%g)
              amortization gap ELBO(λ_k) − ELBO(λ₀) = %.4f
            """, r.split, r.examples, r.samples, r.proposal, r.logLikelihood, r.elbo, r.refinementSteps, r.elboRefined,
            refinement.rule.rawValue, Double(refinement.learningRate), r.amortizationGap))
        if gaps {
            progress.line(String(format: """
                  inference gap     log p − ELBO(λ₀)  = %.4f
                  approximation gap log p − ELBO(λ*)  = %.4f   (λ* ≈ %d SVI steps)
                  amortization gap  ELBO(λ*) − ELBO(λ₀) = %.4f
                """, inferenceGap, approximationGap, r.refinementSteps, r.amortizationGap))
        }
    }
}
