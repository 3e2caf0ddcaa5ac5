import BSVI
import BSVIStorage
import Foundation

/// The `--per-example FILE.h5` files of `eval` and `compare` (docs/evaluation.md), written by
/// rank 0 atomically (AtomicFile: a crash leaves no partial file), replacing any older file.
///
/// eval: root attributes `format` = "bsvi-per-example", `checkpoint`, `data` (the --data path),
/// `split`, `samples` (K), `seed` (int64, the UInt64's bits), `proposal`, `refinement_steps`, `matmul_precision`,
/// `examples`; datasets `/row` (int64) and `/log_likelihood`, `/elbo`, `/elbo_refined`,
/// `/ess_fraction`, `/max_weight` (float64), one value per example.
///
/// compare: `format` = "bsvi-comparison", `a_checkpoint`, `b_checkpoint`, `data`, `split`, `samples`,
/// `seed`, `examples`, `common_random_numbers` (0/1); `/row`, `/difference` (log p̂_A − log p̂_B) and
/// the eval datasets of each model in groups `/a` and `/b` (each with its `checkpoint`, `proposal`,
/// `refinement_steps` and `matmul_precision` attributes).
public enum PerExampleFile {
    public static let evaluationFormat = "bsvi-per-example"
    public static let comparisonFormat = "bsvi-comparison"

    public static func write(_ e: PerExampleEvaluation, checkpoint: String, data: String, to path: String) throws {
        try AtomicFile.write(to: path) { temporary in
            let f = try HDF5File.create(temporary)
            try f.setAttribute("format", evaluationFormat)
            try f.setAttribute("checkpoint", checkpoint)
            try writeCommon(f, data: data, split: e.split, samples: e.samples, seed: e.seed, examples: e.examples)
            try writeValues(e, into: f, group: "")
            try f.close()
        }
    }

    public static func write(_ c: CheckpointComparison, data: String, to path: String) throws {
        try AtomicFile.write(to: path) { temporary in
            let f = try HDF5File.create(temporary)
            try f.setAttribute("format", comparisonFormat)
            try f.setAttribute("a_checkpoint", c.aCheckpoint)
            try f.setAttribute("b_checkpoint", c.bCheckpoint)
            try writeCommon(f, data: data, split: c.a.split, samples: c.a.samples, seed: c.a.seed, examples: c.a.examples)
            try f.setAttribute("common_random_numbers", Int64(c.commonRandomNumbers ? 1 : 0))
            try f.writeInt64s("/row", c.a.rows.map { Int64($0) })
            try f.writeDoubles("/difference", c.difference)
            for (group, e, checkpoint) in [("/a", c.a, c.aCheckpoint), ("/b", c.b, c.bCheckpoint)] {
                try f.createGroup(group)
                try f.setAttribute("checkpoint", on: group, checkpoint)
                try writeValues(e, into: f, group: group)
            }
            try f.close()
        }
    }

    private static func writeCommon(_ f: HDF5File, data: String, split: DataSplit, samples: Int, seed: UInt64, examples: Int) throws {
        try f.setAttribute("data", data)
        try f.setAttribute("split", split.rawValue)
        try f.setAttribute("samples", Int64(samples))
        try f.setAttribute("seed", Int64(bitPattern: seed))
        try f.setAttribute("examples", Int64(examples))
    }

    /// One evaluation's datasets (and its proposal and refinement attributes) in `group` ("" for the root).
    private static func writeValues(_ e: PerExampleEvaluation, into f: HDF5File, group: String) throws {
        let object = group.isEmpty ? "/" : group
        try f.setAttribute("proposal", on: object, e.proposal.rawValue)
        try f.setAttribute("refinement_steps", on: object, Int64(e.refinementSteps))
        try f.setAttribute("matmul_precision", on: object, e.matmulPrecision.rawValue)
        if group.isEmpty { try f.writeInt64s("/row", e.rows.map { Int64($0) }) }
        for (name, values) in [("log_likelihood", e.logLikelihood), ("elbo", e.elbo), ("elbo_refined", e.elboRefined),
                               ("ess_fraction", e.essFraction), ("max_weight", e.maxWeight)] {
            try f.writeDoubles(group + "/" + name, values)
        }
    }

    /// Reads an eval file back (as a script would): the evaluation and the checkpoint it names.
    public static func read(_ path: String) throws -> (evaluation: PerExampleEvaluation, checkpoint: String) {
        let f = try HDF5File.open(path)
        guard try f.hasAttribute("format"), try f.stringAttribute("format") == evaluationFormat else {
            throw StorageError(file: path, problem: "not a per-example file of bsvi-dist eval (attribute format ≠ \(evaluationFormat))",
                               fix: "pass a file written by eval --per-example", kind: .badData)
        }
        let splitName = try f.stringAttribute("split"), proposalName = try f.stringAttribute("proposal")
        guard let split = DataSplit(rawValue: splitName), let proposal = Proposal(rawValue: proposalName) else {
            throw StorageError(file: path, problem: "unknown split '\(splitName)' or proposal '\(proposalName)'",
                               fix: "pass a file written by eval --per-example", kind: .badData)
        }
        // Files from before the attribute were float32 evaluations.
        let precisionName = try f.hasAttribute("matmul_precision") ? try f.stringAttribute("matmul_precision") : MatmulPrecision.highest.rawValue
        guard let precision = MatmulPrecision(rawValue: precisionName) else {
            throw StorageError(file: path, problem: "unknown matmul_precision '\(precisionName)'", fix: "pass a file written by eval --per-example",
                               kind: .badData)
        }
        let rows = try f.readInt64s("/row")
        guard rows == (0..<rows.count).map({ Int64($0) }) else {
            throw StorageError(file: path, object: "/row", problem: "rows are not 0, 1, 2, …", fix: "pass a file written by eval --per-example",
                               kind: .badData)
        }
        var e = PerExampleEvaluation(
            split: split, samples: Int(try f.scalarInt64Attribute("samples")), proposal: proposal,
            refinementSteps: Int(try f.scalarInt64Attribute("refinement_steps")),
            seed: UInt64(bitPattern: try f.scalarInt64Attribute("seed")),
            logLikelihood: try f.readDoubles("/log_likelihood"), elbo: try f.readDoubles("/elbo"),
            elboRefined: try f.readDoubles("/elbo_refined"), essFraction: try f.readDoubles("/ess_fraction"),
            maxWeight: try f.readDoubles("/max_weight"), seconds: 0)
        e.matmulPrecision = precision
        return (e, try f.stringAttribute("checkpoint"))
    }
}
