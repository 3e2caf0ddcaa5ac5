import BSVI
import BSVIStorage
import BSVITraining
import Foundation
import Testing

/// What eval and compare report, from per-example values: the summaries against their
/// definitions, and the --per-example files written and read back.
@Suite("Evaluation summaries and per-example files")
struct EvaluationSummaryTests {
    /// A split's worth of made-up per-example values (log p̂ around −240 nats).
    static func evaluation(examples n: Int, seed: UInt64, offset: Double = 0) -> PerExampleEvaluation {
        let stream = RandomStream(seed: seed, purpose: .sampling, 0xE7A1, 0)
        func u(_ i: Int, _ c: Int) -> Double { stream.uniform(UInt64(i * 5 + c)) }
        return PerExampleEvaluation(
            split: .valid, samples: 1000, proposal: .encoder, refinementSteps: 5, seed: seed,
            logLikelihood: (0..<n).map { -240 + offset + 20 * u($0, 0) }, elbo: (0..<n).map { -250 + 20 * u($0, 1) },
            elboRefined: (0..<n).map { -248 + 20 * u($0, 2) }, essFraction: (0..<n).map { u($0, 3) },
            maxWeight: (0..<n).map { 0.01 + 0.99 * u($0, 4) }, seconds: 2)
    }

    static func standardError(_ x: [Double]) -> Double {
        let mean = x.reduce(0, +) / Double(x.count)
        return (x.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(x.count - 1) / Double(x.count)).squareRoot()
    }

    static func close(_ a: Double, _ b: Double) -> Bool { abs(a - b) <= 1e-12 * max(1, abs(b)) }

    @Test("the summary: means, standard errors sd/√n, the 5th percentile of ESS/K and the mean max weight")
    func summary() {
        let e = Self.evaluation(examples: 37, seed: 4)
        let r = e.summary
        #expect(r.examples == 37 && r.samples == 1000 && r.split == "valid" && r.proposal == "encoder" && r.refinementSteps == 5)
        #expect(Self.close(r.logLikelihood, e.logLikelihood.reduce(0, +) / 37))
        #expect(Self.close(r.logLikelihoodSE, Self.standardError(e.logLikelihood)))
        #expect(Self.close(r.elboSE, Self.standardError(e.elbo)))
        #expect(Self.close(r.elboRefinedSE, Self.standardError(e.elboRefined)))
        #expect(Self.close(r.amortizationGap, (e.elboRefined.reduce(0, +) - e.elbo.reduce(0, +)) / 37))
        #expect(Self.close(r.essFractionMean, e.essFraction.reduce(0, +) / 37))
        #expect(Self.close(r.maxWeightMean, e.maxWeight.reduce(0, +) / 37))
        // 37 values: the 5th percentile sits at rank 36 · 0.05 = 1.8 of the sorted list.
        let sorted = e.essFraction.sorted()
        #expect(Self.close(r.essFractionP05, sorted[1] + 0.8 * (sorted[2] - sorted[1])))
    }

    @Test("the paired comparison: mean and standard error of the per-example differences, fraction where A is higher")
    func comparison() {
        let a = Self.evaluation(examples: 25, seed: 6, offset: 0.5)
        var b = Self.evaluation(examples: 25, seed: 7)
        b.seed = a.seed
        let c = CheckpointComparison(aCheckpoint: "a.h5", bCheckpoint: "b.h5", a: a, b: b, commonRandomNumbers: true)
        let d = (0..<25).map { a.logLikelihood[$0] - b.logLikelihood[$0] }
        let s = c.summary
        #expect(c.difference == d)
        #expect(Self.close(s.difference, d.reduce(0, +) / 25))
        #expect(Self.close(s.differenceSE, Self.standardError(d)))
        #expect(s.aBetterFraction == Double(d.filter { $0 > 0 }.count) / 25)
        #expect(s.aBetterFraction > 0 && s.aBetterFraction < 1, "the test data has wins both ways")
        #expect(Self.close(s.aLogLikelihood - s.bLogLikelihood, s.difference))
        #expect(Self.close(s.aLogLikelihoodSE, Self.standardError(a.logLikelihood)))
        #expect(Self.close(s.bLogLikelihoodSE, Self.standardError(b.logLikelihood)))
        #expect(Self.close(s.aEssFractionMean, a.essFraction.reduce(0, +) / 25))
        #expect(Self.close(s.bEssFractionMean, b.essFraction.reduce(0, +) / 25))
        #expect(s.examples == 25 && s.samples == 1000 && s.commonRandomNumbers && s.aCheckpoint == "a.h5")
        // JSON keys as the README documents them.
        let json = String(decoding: try! JSONEncoder.snakeCase.encode(s), as: UTF8.self)
        for key in ["difference", "difference_se", "examples", "samples", "a_log_likelihood", "b_log_likelihood", "a_better_fraction",
                    "a_checkpoint", "b_checkpoint", "a_log_likelihood_se", "b_log_likelihood_se", "common_random_numbers",
                    "a_ess_fraction_mean", "b_ess_fraction_mean"] {
            #expect(json.contains("\"\(key)\":"), "\(key) missing in \(json)")
        }
    }

    @Test("EvaluationResult's summary.json keys keep the old names and add the new ones")
    func summaryKeys() throws {
        let json = String(decoding: try JSONEncoder.snakeCase.encode(Self.evaluation(examples: 3, seed: 1).summary), as: UTF8.self)
        for key in ["split", "examples", "samples", "proposal", "refinement_steps", "log_likelihood", "elbo", "elbo_refined", "seconds",
                    "log_likelihood_se", "elbo_se", "elbo_refined_se", "ess_fraction_mean", "ess_fraction_p05", "max_weight_mean"] {
            #expect(json.contains("\"\(key)\":"), "\(key) missing in \(json)")
        }
    }

    @Test("an eval per-example file reads back bit for bit with its attributes")
    func evaluationFileRoundTrip() throws {
        let dir = NSTemporaryDirectory() + "bsvi-per-example-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var e = Self.evaluation(examples: 11, seed: UInt64.max - 3)
        e.logLikelihood[4] = -1e300
        let path = dir + "/examples.h5"
        try PerExampleFile.write(e, checkpoint: "runs/x/final.h5", data: "data/thresholded.h5", to: path)
        let (back, checkpoint) = try PerExampleFile.read(path)
        #expect(checkpoint == "runs/x/final.h5")
        var expected = e
        expected.seconds = 0
        #expect(back == expected)
        let f = try HDF5File.open(path)
        #expect(try f.readInt64s("/row") == (0..<11).map { Int64($0) })
        #expect(try f.stringAttribute("split") == "valid")
        #expect(try f.stringAttribute("data") == "data/thresholded.h5")
        #expect(try f.scalarInt64Attribute("samples") == 1000)
        #expect(UInt64(bitPattern: try f.scalarInt64Attribute("seed")) == UInt64.max - 3)
        // Nothing but the file itself is left in the folder (the write was atomic).
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["examples.h5"])
    }

    @Test("a compare per-example file holds both models' values, the difference and the pairing attributes")
    func comparisonFile() throws {
        let dir = NSTemporaryDirectory() + "bsvi-comparison-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let a = Self.evaluation(examples: 9, seed: 2, offset: 1)
        var b = Self.evaluation(examples: 9, seed: 3)
        b.seed = a.seed
        let c = CheckpointComparison(aCheckpoint: "a.h5", bCheckpoint: "b.h5", a: a, b: b, commonRandomNumbers: false)
        try PerExampleFile.write(c, data: "toy.h5", to: dir + "/pair.h5")
        let f = try HDF5File.open(dir + "/pair.h5")
        #expect(try f.stringAttribute("format") == PerExampleFile.comparisonFormat)
        #expect(try f.stringAttribute("a_checkpoint") == "a.h5" && f.stringAttribute("b_checkpoint") == "b.h5")
        #expect(try f.scalarInt64Attribute("common_random_numbers") == 0)
        #expect(try f.stringAttribute("data") == "toy.h5")
        #expect(try f.readDoubles("/difference") == c.difference)
        for (group, e) in [("/a", a), ("/b", b)] {
            #expect(try f.readDoubles(group + "/log_likelihood") == e.logLikelihood)
            #expect(try f.readDoubles(group + "/elbo") == e.elbo)
            #expect(try f.readDoubles(group + "/elbo_refined") == e.elboRefined)
            #expect(try f.readDoubles(group + "/ess_fraction") == e.essFraction)
            #expect(try f.readDoubles(group + "/max_weight") == e.maxWeight)
        }
    }

    @Test("the per-example folder is checked before the evaluation: a missing folder is exit 73")
    func missingFolder() {
        do {
            try OutputFile.checkCanCreate("/nonexistent-folder/x.h5", flag: "--per-example")
            Issue.record("a file in a missing folder was accepted")
        } catch {
            #expect(ExitStatus(for: error) == .cannotCreateOutput)
            #expect("\(error)".contains("/nonexistent-folder") && "\(error)".contains("--per-example"))
        }
    }

    @Test("an output path that is a folder is refused before the work (the final rename could not replace it)")
    func pathIsAFolder() throws {
        let folder = NSTemporaryDirectory() + "bsvi-output-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        do {
            try OutputFile.checkCanCreate(folder, flag: "--step-times")
            Issue.record("a folder was accepted as the output file")
        } catch {
            #expect(ExitStatus(for: error) == .cannotCreateOutput)
            #expect("\(error)".contains(folder) && "\(error)".contains("is a folder") && "\(error)".contains("--step-times"), "\(error)")
        }
        try OutputFile.checkCanCreate(folder + "/times.csv", flag: "--step-times")
        // The atomic writer behind every output file says the same, not "free disk space".
        do {
            try AtomicFile.write(to: folder) { _ in Issue.record("the body ran (the work) before the folder was refused") }
            Issue.record("a file replaced a folder")
        } catch let error as StorageError {
            #expect(error.kind == .cannotCreateOutput && "\(error)".contains("is a folder"), "\(error)")
        }
        #expect(!FileManager.default.fileExists(atPath: AtomicFile.temporaryPath(for: folder)))  // no temp file left
    }
}
