import Foundation
import Testing

/// `bench --methods`: several methods' steps interleaved in one process, each round's blocks
/// compared with one another. Every number in the report is checked against the ones it is
/// derived from.
@Suite("bench --methods")
struct MethodComparisonTests {
    static let tinyModel = ["--hidden", "16", "--latent", "4", "--warmup", "0"]

    /// The report's entries, each checked against its own fields and the first entry.
    static func checkEntries(_ report: [String: Any], methods: [String], rounds: Int, blockSteps: Int) throws {
        let entries = try #require(report["methods"] as? [[String: Any]], "\(report)")
        #expect(entries.map { $0["method"] as? String } == methods)
        let peak = try #require(report["fma_peak_gflops"] as? Double), readings = try #require(report["fma_peak_readings"] as? [Double])
        #expect(readings.count == 2 && peak == readings.max())
        let batch = try #require(report["batch_size"] as? Int), ranks = try #require(report["ranks"] as? Int)
        #expect(report["rounds"] as? Int == rounds)
        let multiplyAdds = try entries.map { try #require($0["useful_multiply_adds_per_example"] as? Int) }
        var byRound: [[Double]] = []
        for (i, e) in entries.enumerated() {
            func number(_ key: String) throws -> Double { try #require(e[key] as? Double, "\(key) in \(e)") }
            // A block: about the multiply-adds of blockSteps steps of the heaviest method.
            let steps = try #require(e["steps_per_block"] as? Int)
            #expect(steps == max(1, Int((Double(blockSteps * multiplyAdds.max()!) / Double(multiplyAdds[i])).rounded())), "\(e)")
            let seconds = try number("ms_per_step") * 1e-3
            let examplesPerS = try number("examples_per_s"), reportedPeakFraction = try number("peak_fraction")
            #expect(seconds > 0 && abs(examplesPerS - Double(batch) / seconds) <= 1e-9 * Double(batch) / seconds)
            let peakFraction = Double(batch * multiplyAdds[i] * 2) / Double(ranks) / seconds / 1e9 / peak
            #expect(abs(reportedPeakFraction - peakFraction) <= 1e-9 * peakFraction, "\(e)")
            let ceiling = try number("ceiling_fraction")
            #expect(ceiling > 0 && ceiling < 1)
            let fraction = try number("fraction_of_ceiling")
            #expect(abs(fraction - peakFraction / ceiling) <= 1e-9 * fraction)
            // ms_per_step is the median block's (an odd number of rounds): its fraction is the median round's.
            let rounds = try #require(e["fraction_of_ceiling_by_round"] as? [Double])
            #expect(rounds.allSatisfy { $0 > 0 })
            #expect(abs(rounds.sorted()[rounds.count / 2] - fraction) <= 1e-9 * fraction, "\(rounds) \(fraction)")
            byRound.append(rounds)
        }
        #expect(byRound.allSatisfy { $0.count == rounds })
        #expect(entries[0]["rounds_at_least_as_close"] == nil && entries[0]["median_difference_points"] == nil, "\(entries[0])")
        for i in 1..<entries.count {
            let differences = zip(byRound[i], byRound[0]).map { 100 * ($0 - $1) }.sorted()
            #expect(entries[i]["rounds_at_least_as_close"] as? Int == differences.filter { $0 >= 0 }.count, "\(entries[i])")
            let medianDifference = try #require(entries[i]["median_difference_points"] as? Double)
            #expect(abs(medianDifference - differences[differences.count / 2]) <= 1e-9 * max(1, abs(medianDifference)))
        }
    }

    @Test("three methods interleaved: blocks of about the same multiply-adds, every fraction from its own time, each method against the first round by round")
    func report() throws {
        let r = try bsvi(["bench", "--methods", "bsvi,svi,vae", "--k", "3", "--rounds", "3", "--block-steps", "2", "--json"] + Self.tinyModel)
        #expect(r.status == 0, "\(r.stderr)")
        try Self.checkEntries(try parseJSONLine(r.stdout), methods: ["bsvi", "svi", "vae"], rounds: 3, blockSteps: 2)
    }

    @Test("a method twice (an A/A check): two entries, each with its own blocks")
    func sameMethodTwice() throws {
        let r = try bsvi(["bench", "--methods", "vae,vae", "--rounds", "3", "--block-steps", "1", "--json"] + Self.tinyModel)
        #expect(r.status == 0, "\(r.stderr)")
        try Self.checkEntries(try parseJSONLine(r.stdout), methods: ["vae", "vae"], rounds: 3, blockSteps: 1)
    }

    @Test("the text report: a line per method, each after the first compared with it")
    func textReport() throws {
        let r = try bsvi(["bench", "--methods", "svi,iwae", "--k", "2", "--rounds", "1", "--block-steps", "1"] + Self.tinyModel)
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n")
        let header = try #require(lines.firstIndex { $0.contains("round by round") }, "\(r.stdout)")
        #expect(lines[header].contains("against svi k=2"), "\(r.stdout)")
        #expect(lines.count == header + 3, "\(r.stdout)")
        #expect(lines[header + 1].hasPrefix("  svi k=2 ") && !lines[header + 1].contains("at least as close"), "\(r.stdout)")
        #expect(lines[header + 2].hasPrefix("  iwae k=2 ") && lines[header + 2].contains("at least as close in "), "\(r.stdout)")
        #expect(lines.first?.hasPrefix("methods interleaved in one process: svi k=2, iwae k=2;") == true, "\(r.stdout)")
    }

    @Test("under mpirun every rank runs the same blocks in the same order: one report, for two ranks")
    func twoRanks() throws {
        let r = try mpirunBSVI(ranks: 2, ["bench", "--methods", "vae,iwae", "--k", "2", "--rounds", "3", "--block-steps", "1", "--json"]
                                   + Self.tinyModel)
        #expect(r.status == 0, "\(r.stderr)")
        let report = try parseJSONLine(r.stdout)
        #expect(report["ranks"] as? Int == 2 && r.stdout.split(separator: "\n").count == 1, "\(r.stdout)")
        try Self.checkEntries(report, methods: ["vae", "iwae"], rounds: 3, blockSteps: 1)
    }

    @Test("refused with exit 64 before any step: fewer than two methods, an unknown one, a flag it does not use, no rounds",
          arguments: [
              (["--methods", "bsvi"], "at least two methods"),
              (["--methods", "bsvi,gan"], "unknown method 'gan' in 'bsvi,gan'"),
              (["--methods", "bsvi,"], "unknown method '' in 'bsvi,'"),
              (["--methods", "bsvi,svi", "--products"], "leave out --step-times and --products"),
              (["--methods", "bsvi,svi", "--step-times", "t.csv"], "leave out --step-times and --products"),
              (["--methods", "bsvi,svi", "--rounds", "0"], "--rounds ≥ 1 and --block-steps ≥ 1"),
              (["--methods", "bsvi,svi", "--block-steps", "0"], "--rounds ≥ 1 and --block-steps ≥ 1"),
          ])
    func refusals(arguments: [String], message: String) throws {
        let r = try bsvi(["bench"] + arguments + Self.tinyModel)
        #expect(r.status == 64 && r.stderr.contains(message) && r.stdout.isEmpty, "\(arguments): \(r.status) \(r.stderr)")
    }
}
