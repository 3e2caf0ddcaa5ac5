import BSVI
import Foundation

/// Everything `bsvi-dist inspect` shows about a checkpoint, as plain values (printable as a
/// table or as one JSON object).
public struct CheckpointReport: Codable {
    public struct Parameter: Codable {
        public var name: String
        public var dataset: String
        public var shape: [Int]
        public var count: Int
        public var mean: Double
        public var std: Double
        public var min: Double
        public var max: Double
        public var finite: Bool
        public var checksummed: Bool
    }
    public var file: String
    public var format: String?
    public var formatVersion: Int?
    public var method: String
    public var step: Int
    public var epoch: Int
    public var model: ModelShape
    public var worldSize: Int?
    public var seed: UInt64?
    public var adamStep: Int?
    public var skippedSteps: Int?
    public var configuration: String?
    public var parameters: [Parameter]
    public var pi: [Double]?
    public var history: [MetricRecord]
    /// true when every parameter dataset carries a Fletcher32 checksum (all of them verified on
    /// read, or the read would have failed).
    public var checksumsVerified: Bool
    public var hasTrainingState: Bool
    /// Why the file's training state or history could not be read (the model part could).
    public var unreadableTrainingState: String?
}

public enum CheckpointInspector {
    public static func inspect(_ path: String) throws -> CheckpointReport {
        // The reader validates format, version, shapes and values; HDF5 verifies each chunk's
        // Fletcher32 checksum on read and fails the read on a mismatch.
        let ckpt = try CheckpointFile.read(path)
        let f = try HDF5File.open(path)
        let format = try f.hasAttribute("format") ? try f.stringAttribute("format") : nil
        let model = ckpt.model
        var params: [CheckpointReport.Parameter] = []
        var allVerified = true
        for t in model.layout.tensors {
            let name = Checkpoint.datasetPath(for: t.name)
            let info = try f.datasetInfo(name)
            let values = ckpt.parameters[t.range].map { Double($0) }
            let n = Double(values.count)
            let mean = values.reduce(0, +) / max(n, 1)
            let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / max(n, 1)
            params.append(.init(name: t.name, dataset: name, shape: t.shape, count: t.count, mean: mean, std: variance.squareRoot(),
                                min: values.min() ?? 0, max: values.max() ?? 0, finite: values.allSatisfy { $0.isFinite },
                                checksummed: info.hasFletcher32))
            allVerified = allVerified && info.hasFletcher32
        }
        var pi: [Double]? = nil
        if let t = model.piLogits {
            let a = (0..<t.count).map { Double(ckpt.parameters[t.offset + $0]) }
            let lse = logSumExp(a)
            pi = a.map { Foundation.exp($0 - lse) }
        }
        let version = try f.hasAttribute("format_version") ? Int(try f.scalarInt64Attribute("format_version")) : nil
        return CheckpointReport(file: path, format: format, formatVersion: version, method: ckpt.method, step: ckpt.step,
                                epoch: ckpt.epoch, model: ckpt.shape, worldSize: ckpt.training?.worldSize, seed: ckpt.training?.seed,
                                adamStep: ckpt.training?.adamStep, skippedSteps: ckpt.training?.skippedSteps,
                                configuration: ckpt.configurationJSON, parameters: params, pi: pi, history: ckpt.history,
                                checksumsVerified: allVerified, hasTrainingState: ckpt.training != nil,
                                unreadableTrainingState: ckpt.unreadableTrainingState)
    }
}
