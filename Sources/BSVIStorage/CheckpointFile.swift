import BSVI
import Foundation

/// Writes and reads checkpoints. Writes are atomic (AtomicFile); reads validate everything
/// a later computation relies on and name the file, object and problem when something is off.
public enum CheckpointFile {
    /// `midWrite` runs after the model datasets are written (fault injection for tests).
    public static func write(_ c: Checkpoint, to path: String, midWrite: (() -> Void)? = nil) throws {
        let model = c.model
        precondition(c.parameters.count == model.vectorLength, "checkpoint parameters do not match the layout")
        precondition(c.training.map { $0.firstMoment.count == model.vectorLength && $0.secondMoment.count == model.vectorLength } ?? true,
                     "checkpoint optimizer moments do not match the layout")
        guard c.parameters.allSatisfy({ $0.isFinite }),
              c.training.map({ $0.firstMoment.allSatisfy { $0.isFinite } && $0.secondMoment.allSatisfy { $0.isFinite } }) ?? true else {
            throw StorageError(file: path, problem: "refusing to write a checkpoint with non-finite parameters or optimizer state")
        }
        try AtomicFile.write(to: path) { tmp in
            let f = try HDF5File.create(tmp)
            try f.setAttribute("format", Checkpoint.format)
            try f.setAttribute("format_version", Checkpoint.formatVersion)
            try f.setAttribute("step", Int64(c.step))
            try f.setAttribute("epoch", Int64(c.epoch))
            try f.setAttribute("method", c.method)
            try f.createGroup("/model")
            try f.setAttribute("input_dim", on: "/model", Int64(c.shape.inputDim))
            try f.setAttribute("latent_dim", on: "/model", Int64(c.shape.latentDim))
            try f.setAttribute("hidden_dims", on: "/model", c.shape.hiddenDims.map { Int64($0) })
            try f.setAttribute("activation", on: "/model", c.shape.activation.rawValue)
            try f.setAttribute("likelihood", on: "/model", "bernoulli")
            try c.parameters.withUnsafeBufferPointer { all in
                for t in model.layout.tensors {
                    let slice = UnsafeBufferPointer(rebasing: all[t.range])
                    try f.writeFloats(Checkpoint.datasetPath(for: t.name), slice, shape: t.shape)
                }
            }
            midWrite?()
            if let s = c.training {
                try f.createGroup("/training")
                try f.setAttribute("config", on: "/training", s.configJSON)
                try f.setAttribute("seed", on: "/training", Int64(bitPattern: s.seed))
                try f.setAttribute("world_size", on: "/training", Int64(s.worldSize))
                try f.setAttribute("adam_step", on: "/training", Int64(s.adamStep))
                try f.setAttribute("skipped_steps", on: "/training", Int64(s.skippedSteps))
                if let resumes = s.resumesJSON { try f.setAttribute("resumes", on: "/training", resumes) }
                try f.setAttribute("bad_streak", on: "/training", Int64(s.badStreak))
                if let d = s.trainingData {
                    try f.setAttribute("data_fingerprint", on: "/training", d.fingerprint.map { Int64(bitPattern: $0) })
                    if let digest = d.trainDigest { try f.setAttribute("train_digest", on: "/training", Int64(bitPattern: digest)) }
                    for (name, evaluated) in [("valid_digest", d.validDigest), ("test_digest", d.testDigest)] {
                        guard let evaluated else { continue }
                        try f.setAttribute(name, on: "/training", [Int64(evaluated.rows), Int64(bitPattern: evaluated.digest)])
                    }
                }
                if let sums = s.epochSums {
                    try f.writeDoubles("/training/epoch_sums", [Double(sums.examples), sums.bound, sums.elboInitial, sums.elboRefined])
                }
                try f.setAttribute("parameter_order", on: "/training",
                                   model.layout.tensors.map { Checkpoint.datasetPath(for: $0.name) }.joined(separator: ","))
                // The moments without the layout's gaps: one value per parameter, in parameter_order.
                for (name, moment) in [("adam_first_moment", s.firstMoment), ("adam_second_moment", s.secondMoment)] {
                    let values = model.layout.packed(moment)
                    try f.writeFloats("/training/" + name, values, shape: [values.count])
                }
            }
            try f.createGroup("/metrics")
            let h = c.history
            try f.writeInt64s("/metrics/step", h.map { Int64($0.step) })
            try f.writeInt64s("/metrics/epoch", h.map { Int64($0.epoch) })
            try f.writeStrings("/metrics/split", h.map { $0.split })
            try f.writeInt64s("/metrics/examples", h.map { Int64($0.examples) })
            try f.writeInt64s("/metrics/samples", h.map { Int64($0.samples) })
            try f.writeDoubles("/metrics/log_likelihood", h.map { $0.logLikelihood })
            try f.writeDoubles("/metrics/elbo", h.map { $0.elbo })
            try f.writeDoubles("/metrics/elbo_refined", h.map { $0.elboRefined })
            try f.close()
        }
    }

    /// Reads a checkpoint. Only the model part (DESIGN.md §4) is required; training state and
    /// history are read when present. With `requireTrainingState`, a model-only file is an error.
    public static func read(_ path: String, requireTrainingState: Bool = false) throws -> Checkpoint {
        let reader = CheckpointReader(file: try HDF5File.open(path), path: path)
        try reader.checkFormat()
        let shape = try reader.modelShape()
        let piCount = try reader.piCount()
        let model = VAEModel(shape: shape, piCount: piCount)
        let f = reader.file
        // Every tensor's shape is checked (cheap) before anything of the model's size is
        // allocated: the attributes alone could otherwise ask for 80 GB (input_dim 100000,
        // hidden_dims [100000]) in a file of a few KB.
        try reader.checkTensors(model)
        // eval, sample and inspect need only the model: a /training or /metrics with parts
        // missing (slimmed for sharing: the moments deleted) is set aside, named; --resume
        // refuses it. What is present is read and checked either way: damage is an error.
        let training = try reader.trainingState(model.layout)
        let history = try reader.history()
        if requireTrainingState && !training.missing.isEmpty {
            throw reader.problem("/training", "it lacks \(training.missing.joined(separator: ", ")), which --resume needs",
                                 fix: "resume from a complete checkpoint written by bsvi-dist train (a copy slimmed for sharing serves eval, sample and inspect only)")
        }
        var setAside: [String] = []
        if !training.missing.isEmpty {
            setAside.append("/training lacks \(training.missing.joined(separator: ", ")) (set aside: --resume cannot continue from this file)")
        }
        if !history.missing.isEmpty {
            setAside.append("/metrics lacks \(history.missing.joined(separator: ", ")) (set aside: no evaluation history)")
        }
        if training.state == nil && requireTrainingState {
            throw reader.problem("/training", "the checkpoint holds only the model, not the optimizer state and configuration that --resume needs",
                                 fix: "resume from a checkpoint written by bsvi-dist train, or start a new run")
        }
        var checkpoint = Checkpoint(shape: shape, method: try f.hasAttribute("method") ? try f.stringAttribute("method") : "unknown",
                                    step: try f.hasAttribute("step") ? Int(try f.scalarInt64Attribute("step")) : 0,
                                    epoch: try f.hasAttribute("epoch") ? Int(try f.scalarInt64Attribute("epoch")) : 0,
                                    piCount: piCount, parameters: try reader.parameters(model), training: training.state,
                                    history: history.records)
        checkpoint.unreadableTrainingState = setAside.isEmpty ? nil : setAside.joined(separator: "; ")
        // The run's settings, which eval and sample take their defaults from, also when the rest
        // of /training was set aside.
        if training.state == nil {
            checkpoint.setAsideConfigurationJSON = training.configJSON
            checkpoint.setAsideTrainingData = training.trainingData
        }
        return checkpoint
    }
}

/// The parts of reading a checkpoint, each validating what it reads (a problem names the file,
/// the object and what is wrong).
private struct CheckpointReader {
    let file: HDF5File
    let path: String

    func problem(_ object: String?, _ what: String, fix: String? = nil) -> StorageError {
        StorageError(file: path, object: object, problem: what, fix: fix)
    }

    /// `format` and `format_version` when present (model-only files of other tools may lack them); /model must exist.
    func checkFormat() throws {
        if try file.hasAttribute("format") {
            let format = try file.stringAttribute("format")
            guard format == Checkpoint.format else {
                throw problem("/", "format is '\(format)', not '\(Checkpoint.format)'", fix: "pass a bsvi-dist checkpoint")
            }
        }
        guard try file.exists("/model") else {
            throw problem("/model", "not a bsvi-dist checkpoint: the /model group is missing",
                          fix: "pass a checkpoint written by bsvi-dist train (or in the layout of docs/checkpoint-format.md)")
        }
        if try file.hasAttribute("format_version") {
            let version = try file.scalarInt64Attribute("format_version")
            guard version == Checkpoint.formatVersion else {
                throw problem("/", "format_version is \(version); this build reads version \(Checkpoint.formatVersion)",
                              fix: "use the bsvi-dist version that wrote it")
            }
        }
    }

    func modelShape() throws -> ModelShape {
        let inputDim = Int(try file.scalarInt64Attribute("input_dim", on: "/model"))
        let latentDim = Int(try file.scalarInt64Attribute("latent_dim", on: "/model"))
        let hidden = try file.int64Attribute("hidden_dims", on: "/model").map { Int($0) }
        let activationName = try file.stringAttribute("activation", on: "/model")
        guard let activation = Activation(rawValue: activationName) else {
            throw problem("/model", "unknown activation '\(activationName)'", fix: "use one of tanh, relu, softplus")
        }
        if try file.hasAttribute("likelihood", on: "/model") {
            let lik = try file.stringAttribute("likelihood", on: "/model")
            guard lik == "bernoulli" else { throw problem("/model", "likelihood '\(lik)' is not supported (only bernoulli)") }
        }
        guard inputDim > 0, latentDim > 0, hidden.allSatisfy({ $0 > 0 }) else {
            throw problem("/model", "input_dim, latent_dim and hidden_dims must be positive (found \(inputDim), \(latentDim), \(hidden))")
        }
        // Bounds that keep VAEModel's layout arithmetic (products of adjacent widths, summed
        // over the layers) far from overflowing Int: with 2^33-wide layers it wrapped and then
        // asked for hundreds of GB. input_dim is a row's pixels, so it has the rows' limit.
        let limit = SizeLimits.maxRowWidth
        guard inputDim <= limit, latentDim <= limit, hidden.allSatisfy({ $0 <= limit }), hidden.count <= Self.maxHiddenLayers else {
            throw problem("/model", "input_dim, latent_dim and hidden_dims (found \(inputDim), \(latentDim), \(hidden.count) hidden layers) exceed "
                          + "what a checkpoint may declare: widths up to \(limit), at most \(Self.maxHiddenLayers) hidden layers (corrupt file)",
                          fix: "pass a checkpoint written by bsvi-dist train")
        }
        return ModelShape(inputDim: inputDim, latentDim: latentDim, hiddenDims: hidden, activation: activation)
    }

    static let maxHiddenLayers = 1024

    /// The length of /training/pi_logits (k+1 BSVI mixture logits), 0 when absent; bounded
    /// before VAEModel adds it to the layout.
    func piCount() throws -> Int {
        let name = "/training/pi_logits"
        guard try file.exists(name) else { return 0 }
        let shape = try file.datasetInfo(name).shape
        guard shape.count == 1, shape[0] <= SizeLimits.maxRowWidth else {
            throw problem(name, "shape \(shape), expected [k+1] with at most \(SizeLimits.maxRowWidth) entries (corrupt file)")
        }
        return shape[0]
    }

    /// Every tensor of the model's layout is present, of the shape the attributes imply, and
    /// stored in the file — checked from dataset headers alone, so that the parameter vector
    /// allocated afterwards is no larger than the data the file actually holds.
    func checkTensors(_ model: VAEModel) throws {
        for t in model.layout.tensors {
            let name = Checkpoint.datasetPath(for: t.name)
            guard try file.exists(name) else {
                throw problem(name, "dataset is missing (expected by input_dim/latent_dim/hidden_dims)")
            }
            let fileShape = try file.datasetInfo(name).shape
            guard fileShape == t.shape else {
                throw problem(name, "shape \(fileShape) disagrees with the model attributes, which imply \(t.shape)")
            }
            guard try t.count == 0 || file.isFullyStored(name) else {
                throw problem(name, "the dataset is declared but its values were never written (the file holds no storage for them, or not for every chunk: corrupt file)")
            }
        }
    }

    /// Every tensor of the model's layout, in layout order: present, of the implied shape, finite.
    /// `read` has run `checkTensors` first, so the allocation below is backed by stored data.
    func parameters(_ model: VAEModel) throws -> [Float] {
        var params = [Float](repeating: 0, count: model.vectorLength)
        for t in model.layout.tensors {
            let name = Checkpoint.datasetPath(for: t.name)
            let (values, fileShape) = try file.readFloats(name)
            guard fileShape == t.shape else {
                throw problem(name, "shape \(fileShape) disagrees with the model attributes, which imply \(t.shape)")
            }
            if let bad = values.firstIndex(where: { !$0.isFinite }) {
                // A float64 value beyond float32's range is finite in the file and ±∞ here.
                let wide = values[bad].isInfinite && (try? file.datasetInfo(name).elementType) == .float64
                throw problem(name, "non-finite value \(values[bad]) at flat index \(bad)"
                                    + (wide ? " (the file's float64 value is beyond float32's range, ±3.4e38, which the model computes in)" : ""))
            }
            for i in 0..<t.count { params[t.offset + i] = values[i] }
        }
        return params
    }

    /// What /training holds: the whole optimizer state, or (parts missing, which the caller sets
    /// aside) only the configuration and the names of the parts that are not there. Nothing at
    /// all in a model-only file.
    struct TrainingRead {
        var state: TrainingState? = nil
        var configJSON: String? = nil
        var trainingData: RecordedTrainingData? = nil
        var missing: [String] = []
    }

    /// The optimizer state and configuration. Every part present is checked, also when another
    /// is missing: a missing part must not hide damage in the others.
    func trainingState(_ layout: ParameterLayout) throws -> TrainingRead {
        guard try file.exists("/training"), try file.hasAttribute("config", on: "/training") else { return TrainingRead() }
        let m = try moment("/training/adam_first_moment", layout)
        let v = try moment("/training/adam_second_moment", layout)
        let epochSums = try epochSums()
        let counters = try resumeCounters()
        let seed = try file.hasAttribute("seed", on: "/training") ? UInt64(bitPattern: try file.scalarInt64Attribute("seed", on: "/training")) : nil
        let trainingData = try recordedTrainingData()
        let configJSON = try file.stringAttribute("config", on: "/training")
        let resumesJSON = try file.hasAttribute("resumes", on: "/training") ? try file.stringAttribute("resumes", on: "/training") : nil
        guard let m, let v, counters.step != nil, let worldSize = counters.worldSize, let adamStep = counters.adamStep, let seed else {
            let parts: [(String, Bool)] = [("adam_first_moment", m == nil), ("adam_second_moment", v == nil), ("attribute seed", seed == nil),
                                           ("attribute world_size", counters.worldSize == nil), ("attribute adam_step", counters.adamStep == nil),
                                           ("the root attribute step", counters.step == nil)]
            return TrainingRead(configJSON: configJSON, trainingData: trainingData, missing: parts.filter(\.1).map(\.0))
        }
        return TrainingRead(state: TrainingState(configJSON: configJSON, seed: seed, worldSize: worldSize, adamStep: adamStep,
                                                 firstMoment: m, secondMoment: v, skippedSteps: counters.skippedSteps,
                                                 resumesJSON: resumesJSON, badStreak: counters.badStreak, epochSums: epochSums,
                                                 trainingData: trainingData),
                            configJSON: configJSON, trainingData: trainingData)
    }

    /// A moment vector, when present, laid out as the parameter vector (the file holds it
    /// without the layout's gaps): shape first (cheap), so a moment declared far larger than the
    /// model is refused before it is allocated; then its values.
    func moment(_ name: String, _ layout: ParameterLayout) throws -> [Float]? {
        guard try file.exists(name) else { return nil }
        let shape = try file.datasetInfo(name).shape
        guard shape == [layout.parameterCount] else {
            throw problem("/training", "optimizer moments: \(name) has shape \(shape), the model has \(layout.parameterCount) parameters")
        }
        let values = try file.readFloats(name).values
        guard values.allSatisfy({ $0.isFinite }) else { throw problem("/training", "optimizer moments contain non-finite values") }
        return layout.unpacked(values)
    }

    /// An integer attribute, nil when absent.
    func optionalInt(_ name: String, on object: String = "/training") throws -> Int? {
        try file.hasAttribute(name, on: object) ? Int(try file.scalarInt64Attribute(name, on: object)) : nil
    }

    /// The running sums of the epoch under way (/training/epoch_sums), nil when absent.
    func epochSums() throws -> ObjectiveSums? {
        guard try file.exists("/training/epoch_sums") else { return nil }
        let v = try file.readDoubles("/training/epoch_sums")
        // The sums may be ±∞ or NaN: a refinement that diverges on one example makes the
        // epoch's ELBO(λ_k) −∞ legitimately (the run goes on; its metrics row says -inf).
        guard v.count == 4, v[0] >= 0, v[0] < 0x1p53, v[0] == v[0].rounded() else {
            throw problem("/training", "epoch_sums must be 4 values (examples: a whole number ≥ 0, then the bound, elbo and elbo_refined sums), got \(v)")
        }
        return ObjectiveSums(examples: Int(v[0]), bound: v[1], elboInitial: v[2], elboRefined: v[3])
    }

    /// The counters a resume continues from, checked to fit together; nil when missing (the
    /// caller names it). A missing step used to resume "at step 0" (and --resume auto set the
    /// run's later files aside), a negative one crashed.
    func resumeCounters() throws -> (step: Int?, worldSize: Int?, adamStep: Int?, skippedSteps: Int, badStreak: Int) {
        let badStreak = try optionalInt("bad_streak") ?? 0
        guard badStreak >= 0 else { throw problem("/training", "bad_streak is \(badStreak), which cannot be negative") }
        let step = try optionalInt("step", on: "/"), worldSize = try optionalInt("world_size"), adamStep = try optionalInt("adam_step")
        let skippedSteps = try optionalInt("skipped_steps") ?? 0
        let counters = [step, adamStep, skippedSteps].compactMap { $0 }
        guard counters.allSatisfy({ $0 >= 0 }), (worldSize ?? 1) >= 1,
              step == nil || adamStep == nil || step == adamStep! + skippedSteps else {
            let shown = { (v: Int?) in v.map(String.init) ?? "missing" }
            throw problem("/training", "step \(shown(step)), adam_step \(shown(adamStep)), skipped_steps \(skippedSteps) and world_size \(shown(worldSize)) "
                                         + "do not fit together (each ≥ 0, world_size ≥ 1, step = adam_step + skipped_steps)",
                          fix: "restore the values bsvi-dist wrote, or resume another checkpoint")
        }
        return (step, worldSize, adamStep, skippedSteps, badStreak)
    }

    /// The data the run trained on (data_fingerprint, train_digest, valid_digest, test_digest),
    /// nil when not recorded.
    func recordedTrainingData() throws -> RecordedTrainingData? {
        guard try file.hasAttribute("data_fingerprint", on: "/training") else { return nil }
        let words = try file.int64Attribute("data_fingerprint", on: "/training").map { UInt64(bitPattern: $0) }
        guard words.count == DatasetFingerprint.wordCount else {
            throw problem("/training", "data_fingerprint holds \(words.count) values, not \(DatasetFingerprint.wordCount)")
        }
        let digest = try file.hasAttribute("train_digest", on: "/training")
            ? UInt64(bitPattern: try file.scalarInt64Attribute("train_digest", on: "/training")) : nil
        return RecordedTrainingData(fingerprint: words, trainDigest: digest, validDigest: try evaluatedRowsDigest("valid_digest"),
                                    testDigest: try evaluatedRowsDigest("test_digest"))
    }

    /// /training's `valid_digest` or `test_digest` ([rows, digest]), nil when absent.
    private func evaluatedRowsDigest(_ name: String) throws -> EvaluatedRowsDigest? {
        guard try file.hasAttribute(name, on: "/training") else { return nil }
        let values = try file.int64Attribute(name, on: "/training")
        guard values.count == 2, values[0] >= 0 else {
            throw problem("/training", "\(name) holds \(values), not [rows ≥ 0, digest]")
        }
        return EvaluatedRowsDigest(rows: Int(values[0]), digest: UInt64(bitPattern: values[1]))
    }

    /// The evaluation history (/metrics), empty when absent; when columns are missing, empty and
    /// their names (the caller sets it aside). The columns present are read and checked either way.
    func history() throws -> (records: [MetricRecord], missing: [String]) {
        guard try file.exists("/metrics/step") else { return ([], []) }
        func column<T>(_ name: String, _ read: (String) throws -> T) throws -> T? {
            try file.exists("/metrics/" + name) ? try read("/metrics/" + name) : nil
        }
        let steps = try column("step", file.readInt64s), epochs = try column("epoch", file.readInt64s)
        let splits = try column("split", file.readStrings), examples = try column("examples", file.readInt64s)
        let samples = try column("samples", file.readInt64s)
        let ll = try column("log_likelihood", file.readDoubles), elbo = try column("elbo", file.readDoubles)
        let elboK = try column("elbo_refined", file.readDoubles)
        let counts = [steps?.count, epochs?.count, splits?.count, examples?.count, samples?.count, ll?.count, elbo?.count, elboK?.count]
        guard Set(counts.compactMap { $0 }).count <= 1 else { throw problem("/metrics", "metric columns have different lengths") }
        guard let steps, let epochs, let splits, let examples, let samples, let ll, let elbo, let elboK else {
            let names = ["step", "epoch", "split", "examples", "samples", "log_likelihood", "elbo", "elbo_refined"]
            return ([], zip(names, counts).filter { $0.1 == nil }.map(\.0))
        }
        let records = (0..<steps.count).map {
            MetricRecord(step: Int(steps[$0]), epoch: Int(epochs[$0]), split: splits[$0], examples: Int(examples[$0]),
                         samples: Int(samples[$0]), logLikelihood: ll[$0], elbo: elbo[$0], elboRefined: elboK[$0])
        }
        return (records, [])
    }
}
