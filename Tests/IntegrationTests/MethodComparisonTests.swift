import Foundation
import Testing

/// `bench --methods`: several methods' steps interleaved in one process, each round's blocks
/// compared with one another. Every number in the report is checked against the ones it is
/// derived from.
@Suite("bench --methods")
struct MethodComparisonTests {
    static let tinyModel = ["--hidden", "16", "--latent", "4"]

    /// The report's entries, each checked against its own fields and the first entry.
    static func checkEntries(_ report: [String: Any], methods: [String], rounds: Int, blockSteps: Int, warmup: Int) throws {
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
            // Its warm-up, then every round a block of one untimed step and its timed ones.
            #expect(e["steps_run"] as? Int == warmup + rounds * (1 + steps), "\(e)")
            // The first place rotates: method i leads the rounds r with r mod n = i.
            #expect(e["rounds_first"] as? Int == rounds / entries.count + (i < rounds % entries.count ? 1 : 0), "\(e)")
            let seconds = try number("ms_per_step") * 1e-3
            let examplesPerS = try number("examples_per_s"), reportedPeakFraction = try number("peak_fraction")
            #expect(seconds > 0 && abs(examplesPerS - Double(batch) / seconds) <= 1e-9 * Double(batch) / seconds)
            let peakFraction = Double(batch * multiplyAdds[i] * 2) / Double(ranks) / seconds / 1e9 / peak
            #expect(abs(reportedPeakFraction - peakFraction) <= 1e-9 * peakFraction, "\(e)")
            // The ceiling: the step's FLOPs per rank at the peak, plus the update's floor.
            let ceiling = try number("ceiling_fraction"), floorMs = try number("update_floor_ms")
            let atPeakMs = Double(batch * multiplyAdds[i] * 2) / Double(ranks) / (peak * 1e9) * 1e3
            #expect(floorMs > 0 && abs(ceiling - atPeakMs / (atPeakMs + floorMs)) <= 1e-9 * ceiling, "\(e)")
            let fraction = try number("fraction_of_ceiling")
            #expect(abs(fraction - peakFraction / ceiling) <= 1e-9 * fraction)
            // ms_per_step is the median block's time: the middle one, or the mean of the middle two.
            let rounds = try #require(e["fraction_of_ceiling_by_round"] as? [Double])
            #expect(rounds.allSatisfy { $0 > 0 })
            let blockSeconds = rounds.map { peakFraction * seconds / ($0 * ceiling) }.sorted()
            let middle = rounds.count % 2 == 1 ? blockSeconds[rounds.count / 2]
                : (blockSeconds[rounds.count / 2 - 1] + blockSeconds[rounds.count / 2]) / 2
            #expect(abs(middle - seconds) <= 1e-9 * seconds, "\(rounds) \(seconds)")
            byRound.append(rounds)
        }
        #expect(byRound.allSatisfy { $0.count == rounds })
        #expect(entries[0]["rounds_at_least_as_close"] == nil && entries[0]["median_difference_points"] == nil, "\(entries[0])")
        for i in 1..<entries.count {
            let d = zip(byRound[i], byRound[0]).map { 100 * ($0 - $1) }.sorted()
            #expect(entries[i]["rounds_at_least_as_close"] as? Int == d.filter { $0 >= 0 }.count, "\(entries[i])")
            let medianDifference = try #require(entries[i]["median_difference_points"] as? Double)
            let middle = d.count % 2 == 1 ? d[d.count / 2] : (d[d.count / 2 - 1] + d[d.count / 2]) / 2
            #expect(abs(medianDifference - middle) <= 1e-9 * max(1, abs(medianDifference)))
        }
    }

    @Test("three methods interleaved: blocks of about the same multiply-adds, every method warmed up and first in its share of rounds, each fraction and ceiling from its own time and floor, each method against the first round by round",
          arguments: [(3, 0), (4, 1)])
    func report(rounds: Int, warmup: Int) throws {
        let r = try bsvi(["bench", "--methods", "bsvi,svi,vae", "--k", "3", "--rounds", "\(rounds)", "--block-steps", "2", "--warmup", "\(warmup)",
                          "--json"] + Self.tinyModel)
        #expect(r.status == 0, "\(r.stderr)")
        try Self.checkEntries(try parseJSONLine(r.stdout), methods: ["bsvi", "svi", "vae"], rounds: rounds, blockSteps: 2, warmup: warmup)
    }

    @Test("a method twice (an A/A check): two entries, each with its own blocks")
    func sameMethodTwice() throws {
        let r = try bsvi(["bench", "--methods", "vae,vae", "--rounds", "3", "--block-steps", "1", "--warmup", "0", "--json"] + Self.tinyModel)
        #expect(r.status == 0, "\(r.stderr)")
        try Self.checkEntries(try parseJSONLine(r.stdout), methods: ["vae", "vae"], rounds: 3, blockSteps: 1, warmup: 0)
    }

    @Test("the text report: a line per method, each after the first compared with it")
    func textReport() throws {
        let r = try bsvi(["bench", "--methods", "svi,iwae", "--k", "2", "--rounds", "1", "--block-steps", "1", "--warmup", "0"] + Self.tinyModel)
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
        let r = try mpirunBSVI(ranks: 2, ["bench", "--methods", "vae,iwae", "--k", "2", "--rounds", "3", "--block-steps", "1", "--warmup", "0",
                                          "--json"] + Self.tinyModel)
        #expect(r.status == 0, "\(r.stderr)")
        let report = try parseJSONLine(r.stdout)
        #expect(report["ranks"] as? Int == 2 && r.stdout.split(separator: "\n").count == 1, "\(r.stdout)")
        try Self.checkEntries(report, methods: ["vae", "iwae"], rounds: 3, blockSteps: 1, warmup: 0)
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
              // Each method's settings are checked as --method's would be, and --method's are not.
              (["--methods", "bsvi,iwae", "--k", "0"], "iwae needs at least 1 sample"),
          ])
    func refusals(arguments: [String], message: String) throws {
        let r = try bsvi(["bench"] + arguments + Self.tinyModel)
        #expect(r.status == 64 && r.stderr.contains(message) && r.stdout.isEmpty, "\(arguments): \(r.status) \(r.stderr)")
    }

    @Test("--method's settings are not checked when --methods replaces it")
    func methodReplaced() throws {
        let r = try bsvi(["bench", "--method", "iwae", "--k", "0", "--methods", "bsvi,svi", "--rounds", "1", "--block-steps", "1", "--warmup", "0",
                          "--json"] + Self.tinyModel)
        #expect(r.status == 0, "\(r.stderr)")
    }
}
