import BSVI
import BSVIParallel
import BSVIStorage
import Foundation

/// Rank 0 reads a checkpoint (validated) and every rank receives the model shape and
/// parameters; a read error on rank 0 stops every rank together.
public enum ModelDistribution {
    public static func load(_ path: String, comm: Communicator) throws -> Checkpoint {
        var header = ""
        var checkpoint: Checkpoint? = nil
        if comm.isRoot {
            do {
                let c = try CheckpointFile.read(path)
                checkpoint = c
                let h = Header(shape: c.shape, piCount: c.piCount, method: c.method, step: c.step, epoch: c.epoch,
                               configJSON: c.training?.configJSON)
                header = String(decoding: try JSONEncoder().encode(h), as: UTF8.self)
            } catch {
                header = "error:\(error)"
            }
        }
        header = comm.broadcast(string: header)
        if header.hasPrefix("error:") { throw CollectiveError(message: String(header.dropFirst(6)), silent: !comm.isRoot) }
        let h = try JSONDecoder().decode(Header.self, from: Data(header.utf8))
        let model = VAEModel(shape: h.shape, piCount: h.piCount)
        var params = checkpoint?.parameters ?? [Float](repeating: 0, count: model.parameterCount)
        params.withUnsafeMutableBytes { comm.broadcast($0.baseAddress!, byteCount: $0.count, root: 0) }
        if let c = checkpoint { return c }
        var training: TrainingState? = nil
        if let json = h.configJSON {
            training = TrainingState(configJSON: json, seed: 0, worldSize: 0, adamStep: 0, firstMoment: [], secondMoment: [], skippedSteps: 0)
        }
        return Checkpoint(shape: h.shape, method: h.method, step: h.step, epoch: h.epoch, piCount: h.piCount, parameters: params,
                          training: training, history: [])
    }

    struct Header: Codable {
        var shape: ModelShape
        var piCount: Int
        var method: String
        var step: Int
        var epoch: Int
        var configJSON: String?
    }
}
