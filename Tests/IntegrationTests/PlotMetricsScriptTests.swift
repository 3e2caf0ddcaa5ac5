import BSVITraining
import Foundation
import Testing

/// scripts/plot-metrics on a real run folder: the figure, the epoch a run ended inside kept apart
/// from whole epochs, and the sysexits statuses of its refusals, with nothing written by them.
@Suite("scripts/plot-metrics")
struct PlotMetricsScriptTests {
    static let script = repositoryRoot.appendingPathComponent("scripts/plot-metrics").path

    @Test("plots a run that ended inside an epoch; the partial epoch is a series of its own, not a whole epoch's point")
    func plotsAndKeepsThePartialEpochApart() throws {
        let dir = try makeTemporaryDirectory(prefix: "plot")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = dir + "/toy.h5"
        try writeToyDataset(data)
        let perEpoch = CheckpointRun.stepsPerEpoch()
        let run = dir + "/run"
        let trained = try bsvi(CheckpointRun.flags(data: data, runDir: run) + ["--max-steps", "\(perEpoch + perEpoch / 2)", "--eval-every", "1",
                                                                               "--eval-limit", "8"])
        try #require(trained.status == 0, "\(trained.stderr)")
        let r = try runCommand(Self.script, [run, "--out", dir + "/curves.png"])
        #expect(r.status == 0 && r.stdout.contains("wrote \(dir)/curves.png"), "\(r.stdout)\n\(r.stderr)")
        let png = try Data(contentsOf: URL(fileURLWithPath: dir + "/curves.png"))
        #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]), "not a PNG")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).allSatisfy { !$0.hasPrefix(".") }, "a temp file was left")

        // epoch_series: epoch 1 whole, epoch 2 cut short after half its steps (train_partial).
        let series = try runCommand("/usr/bin/env", ["python3", "-c", """
            import csv, importlib.machinery, importlib.util
            loader = importlib.machinery.SourceFileLoader("plot_metrics", "\(Self.script)")
            module = importlib.util.module_from_spec(importlib.util.spec_from_loader("plot_metrics", loader))
            loader.exec_module(module)
            (whole, _), (partial, _) = module.epoch_series(list(csv.DictReader(open("\(run)/metrics.csv"))))
            print(whole, partial)
            """])
        #expect(series.status == 0 && series.stdout == "[1] [2]\n", "\(series.stdout)\n\(series.stderr)")
    }

    @Test("refusals exit as bsvi-dist does (64 usage, 65 no rows, 66 no metrics.csv, 73 no folder) and write nothing")
    func refusals() throws {
        let dir = try makeTemporaryDirectory(prefix: "plotbad")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/empty", withIntermediateDirectories: true)
        try (MetricsLog.header + "\n").write(toFile: dir + "/empty/metrics.csv", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: dir + "/norun", withIntermediateDirectories: true)
        for (arguments, status, says) in [
            ([dir + "/norun", "--out", dir + "/a.png"], 66, "metrics.csv not found"),
            ([dir + "/empty", "--out", dir + "/a.png"], 65, "no run has any rows"),
            ([dir + "/empty", "--out", dir + "/nowhere/a.png"], 73, "does not exist"),
            ([dir + "/empty", "--out", dir + "/a.h5"], 64, "cannot write .h5 files"),
            ([dir + "/empty", "--out", dir + "/a.png", "--labels", "x,y"], 64, "--labels names 2 run(s)"),
            ([dir + "/empty", "--out", dir + "/a.png", "--no-such-flag"], 64, "unrecognized arguments"),
        ] {
            let r = try runCommand(Self.script, arguments)
            #expect(r.status == Int32(status) && r.stderr.contains(says) && !r.stderr.contains("Traceback"), "\(arguments): \(r.stderr)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == ["empty", "norun"])
    }
}
