import ArgumentParser
import BSVI
import BSVIStorage
import BSVITraining
import Foundation

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Describe a dataset (splits, rows, binarization, fraction of ones) or a checkpoint, reading every chunk so its checksums are verified.")

    @Argument(help: "A dataset (/train, /valid, /test) or a checkpoint file.") var file: String
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        do {
            if try DatasetInspector.isDataset(file) {
                try describeDataset(DatasetInspector.inspect(file))
            } else {
                try describeCheckpoint(CheckpointInspector.inspect(file))
            }
        } catch let e as ExitCode {
            throw e
        } catch {
            throw failure(error, fallback: .badData)
        }
    }

    func encoder() -> JSONEncoder {
        let e = JSONEncoder.snakeCase
        e.outputFormatting.insert(.prettyPrinted)
        return e
    }

    func describeDataset(_ r: DatasetReport) throws {
        if json {
            print(String(decoding: try encoder().encode(r), as: UTF8.self))
        } else {
            print("dataset         \(r.file)")
            print("source          \(r.source ?? "(not recorded)")")
            var binarization = r.binarization ?? "(not recorded)"
            if let seed = r.binarizationSeed { binarization += " (seed \(seed))" }
            if let t = r.binarizationThreshold { binarization += " (intensity > \(t))" }
            print("binarization    \(binarization)")
            print("image shape     \(r.imageHeight.map(String.init) ?? "?")×\(r.imageWidth.map(String.init) ?? "?")")
            print("checksums       \(r.checksumsVerified ? "Fletcher32 verified on every chunk of every split" : "not verified for every split (a split is missing, unreadable or without checksums: see below)")")
            print("")
            var rows = [["split", "rows", "width", "holds", "fraction of ones", "checksummed"]]
            for s in r.splits {
                rows.append([s.name, "\(s.rows)", "\(s.width)", s.holds + (s.nonBinaryValues > 0 ? " (\(s.nonBinaryValues) NOT 0/1)" : ""),
                             String(numbers: "%.4f", s.fractionOfOnes) + (s.holds == "intensities" ? " (expected per draw)" : ""),
                             s.checksummed ? "yes" : "no"])
            }
            printTable(rows)
        }
        for warning in r.warnings { printError("warning: \(r.file): \(warning)") }
        if !r.problems.isEmpty {
            printError("error: \(r.file): not a usable dataset: \(r.problems.joined(separator: "; ")) (rebuild it with `bsvi-dist prepare-data`)")
            throw ExitCode(FailureKind.badData.rawValue)
        }
    }

    func describeCheckpoint(_ report: CheckpointReport) throws {
        if json {
            print(String(decoding: try encoder().encode(report), as: UTF8.self))
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
            print("training state  \(r.unreadableTrainingState?.contains("/training") == true ? "incomplete" : "absent") (model only: eval/sample/inspect work, --resume does not)")
            if let c = r.configuration { print("configuration   \(c)") }
        }
        if let note = r.unreadableTrainingState { print("set aside       \(note)") }
        print("checksums       \(r.checksumsVerified ? "Fletcher32 verified on every parameter dataset" : "not all parameter datasets carry checksums (read OK)")")
        print("")
        var rows = [["parameter", "shape", "count", "mean", "std", "min", "max", "finite"]]
        for p in r.parameters {
            rows.append([p.name, "[" + p.shape.map(String.init).joined(separator: ", ") + "]", "\(p.count)",
                         String(numbers: "%.4g", p.mean), String(numbers: "%.4g", p.std), String(numbers: "%.4g", p.min),
                         String(numbers: "%.4g", p.max), p.finite ? "yes" : "NO"])
        }
        printTable(rows)
        if let pi = r.pi {
            print("\nlearned π       " + pi.map { String(numbers: "%.4f", $0) }.joined(separator: " "))
        }
        print("\nmetric history (\(r.history.count) evaluations)")
        for h in r.history {
            // Padded here: Foundation's %@ ignores a field width.
            print(String(numbers: "  step %6d epoch %3d %@ n=%-6d K=%-5d log p(x) %.4f  ELBO %.4f  ELBO(λ_k) %.4f",
                         h.step, h.epoch, h.split.padding(toLength: max(5, h.split.count), withPad: " ", startingAt: 0), h.examples,
                         h.samples, h.logLikelihood, h.elbo, h.elboRefined))
        }
    }

    /// Columns padded to their widest cell.
    func printTable(_ rows: [[String]]) {
        let widths = (0..<rows[0].count).map { c in rows.map { $0[c].count }.max()! }
        for row in rows {
            let line = row.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }.joined(separator: "  ")
            print(line.replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression))
        }
    }
}
