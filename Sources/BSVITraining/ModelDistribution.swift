import BSVI
import BSVIParallel
import BSVIStorage
import Foundation

/// A checkpoint's model as every rank needs it for evaluation.
public struct DistributedModel {
    public let model: VAEModel
    public let parameters: [Float]
    /// The stored training configuration (JSON), if the checkpoint has one.
    public let configJSON: String?
    /// What it trained on, if the checkpoint records it.
    public let trainingData: RecordedTrainingData?
    /// Its run's --data as that run named it (from `configJSON`).
    public let trainingDataPath: String?
}

/// What a reader of the model alone says about a checkpoint whose /training or /metrics was
/// set aside (parts missing): once, on rank 0.
public func setAsideWarning(_ path: String, _ checkpoint: Checkpoint) -> String? {
    checkpoint.unreadableTrainingState.map { "warning: \(path): \($0)" }
}

/// Rank 0 reads a checkpoint (validated) and every rank receives the model shape, parameters
/// and configuration; a read error on rank 0 stops every rank together, with its exit status.
public enum ModelDistribution {
    struct Header: Codable {
        var shape: ModelShape
        var piCount: Int
        var configJSON: String?
        var trainingData: RecordedTrainingData?
    }

    public static func load(_ path: String, comm: Communicator) throws -> DistributedModel {
        var parameters: [Float] = []
        let header = try comm.rootDecides { () throws -> Header in
            let c = try CheckpointFile.read(path)
            if let warning = setAsideWarning(path, c) { FileHandle.standardError.write(Data((warning + "\n").utf8)) }
            parameters = c.parameters
            return Header(shape: c.shape, piCount: c.piCount, configJSON: c.configurationJSON, trainingData: c.trainingData)
        }
        let model = VAEModel(shape: header.shape, piCount: header.piCount)
        if !comm.isRoot { parameters = [Float](repeating: 0, count: model.vectorLength) }
        parameters.withUnsafeMutableBytes { comm.broadcast($0.baseAddress!, byteCount: $0.count, root: 0) }
        return DistributedModel(model: model, parameters: parameters, configJSON: header.configJSON, trainingData: header.trainingData,
                                trainingDataPath: RunConfiguration.trainingDataPath(checkpointConfig: header.configJSON))
    }
}
