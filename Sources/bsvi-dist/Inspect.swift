import ArgumentParser
import BSVIStorage
import Foundation

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show what a checkpoint holds and verify its checksums.")

    @Argument(help: "Checkpoint file.") var checkpoint: String
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        let report: CheckpointReport
        do {
            report = try CheckpointInspector.inspect(checkpoint)
        } catch {
            printError("error: \(error)")
            throw ExitCode(1)
        }
        if json {
            let e = JSONEncoder()
            e.outputFormatting = [.prettyPrinted, .sortedKeys]
            e.keyEncodingStrategy = .convertToSnakeCase
            e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
            print(String(decoding: try e.encode(report), as: UTF8.self))
            return
        }
        let r = report
        print("checkpoint      \(r.file)")
        print("format          \(r.format ?? "(none: model-only file)") version \(r.formatVersion.map(String.init) ?? "-")")
        print("method          \(r.method)")
        print("step / epoch    \(r.step) / \(r.epoch)")
        print("model           input \(r.model.inputDim), hidden \(r.model.hiddenDims), latent \(r.model.latentDim), \(r.model.activation.rawValue), bernoulli")
        if r.hasTrainingState {
            print("world size      \(r.worldSize ?? 0)")
            print("seed            \(r.seed ?? 0)")
            print("adam steps      \(r.adamStep ?? 0) (skipped steps: \(r.skippedSteps ?? 0))")
            print("configuration   \(r.configuration ?? "")")
        } else {
            print("training state  absent (model only: eval/sample/inspect work, --resume does not)")
        }
        print("checksums       \(r.checksumsVerified ? "Fletcher32 verified on every parameter dataset" : "not all parameter datasets carry checksums (read OK)")")
        print("")
        let header = ["parameter", "shape", "count", "mean", "std", "min", "max", "finite"]
        var rows = [header]
        for p in r.parameters {
            rows.append([p.name, "[" + p.shape.map(String.init).joined(separator: ", ") + "]", "\(p.count)",
                         String(format: "%.4g", p.mean), String(format: "%.4g", p.std), String(format: "%.4g", p.min),
                         String(format: "%.4g", p.max), p.finite ? "yes" : "NO"])
        }
        let widths = (0..<header.count).map { c in rows.map { $0[c].count }.max()! }
        for row in rows {
            print(row.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }.joined(separator: "  "))
        }
        if let pi = r.pi {
            print("\nlearned π       " + pi.map { String(format: "%.4f", $0) }.joined(separator: " "))
        }
        print("\nmetric history (\(r.history.count) evaluations)")
        for h in r.history {
            print(String(format: "  step %6d epoch %3d %-5@ n=%-6d K=%-5d log p(x) %.4f  ELBO %.4f  ELBO(λ_k) %.4f",
                         h.step, h.epoch, h.split, h.examples, h.samples, h.logLikelihood, h.elbo, h.elboRefined))
        }
    }
}
