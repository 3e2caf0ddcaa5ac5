import BSVI
import Foundation

/// One evaluation result kept in a checkpoint's metric history.
public struct MetricRecord: Codable, Equatable, Sendable {
    public var step: Int
    public var epoch: Int
    public var split: String
    public var examples: Int
    public var samples: Int
    public var logLikelihood: Double
    public var elbo: Double
    public var elboRefined: Double

    public init(step: Int, epoch: Int, split: String, examples: Int, samples: Int, logLikelihood: Double,
                elbo: Double, elboRefined: Double) {
        self.step = step
        self.epoch = epoch
        self.split = split
        self.examples = examples
        self.samples = samples
        self.logLikelihood = logLikelihood
        self.elbo = elbo
        self.elboRefined = elboRefined
    }
}

/// What `--resume` needs beyond the model: optimizer state, the configuration, and where the
/// run stood. Absent in model-only checkpoints written by other tools.
public struct TrainingState: Equatable, Sendable {
    public var configJSON: String
    public var seed: UInt64
    public var worldSize: Int
    public var adamStep: Int
    /// Adam's moments, laid out as the parameter vector (ParameterLayout: gaps included; the
    /// file holds them without).
    public var firstMoment: [Float]
    public var secondMoment: [Float]
    public var skippedSteps: Int
    /// The run's continuations (step, world sizes, schedule settings changed) as JSON; nil in
    /// checkpoints written before it was recorded.
    public var resumesJSON: String?
    /// Consecutive non-finite steps at the checkpoint's step (so that a resumed run gives up
    /// where an uninterrupted one would); 0 in checkpoints written before it was recorded.
    public var badStreak: Int
    /// The training sums of the checkpoint's epoch so far (so that a run resumed mid-epoch
    /// reports that epoch's row as an uninterrupted run does); nil in older checkpoints.
    public var epochSums: ObjectiveSums?
    /// What the run trained on, so that a resume on a file re-prepared at the same path (other
    /// rows: another data order) is refused and eval warns about other data; nil in checkpoints
    /// written before 2026-12-03.
    public var trainingData: RecordedTrainingData?

    public init(configJSON: String, seed: UInt64, worldSize: Int, adamStep: Int, firstMoment: [Float],
                secondMoment: [Float], skippedSteps: Int, resumesJSON: String? = nil, badStreak: Int = 0,
                epochSums: ObjectiveSums? = nil, trainingData: RecordedTrainingData? = nil) {
        self.configJSON = configJSON
        self.seed = seed
        self.worldSize = worldSize
        self.adamStep = adamStep
        self.firstMoment = firstMoment
        self.secondMoment = secondMoment
        self.skippedSteps = skippedSteps
        self.resumesJSON = resumesJSON
        self.badStreak = badStreak
        self.epochSums = epochSums
        self.trainingData = trainingData
    }
}

/// What a run recorded about the data it trained on: /training's `data_fingerprint` (the
/// `DatasetFingerprint` words: shapes and binarization) and `train_digest` (the digest of
/// /train's rows, `BinaryDataset.validateRows`: what the fingerprint cannot tell, other images
/// of the same shape; nil in checkpoints written before the second half of 2026-12-03).
/// Also `valid_digest` and `test_digest`: the digests of the evaluation splits' rows the run
/// evaluated (nil when it evaluated none of a split, and in checkpoints before 2026-12-05).
public struct RecordedTrainingData: Codable, Equatable, Sendable {
    public var fingerprint: [UInt64]
    public var trainDigest: UInt64?
    public var validDigest: EvaluatedRowsDigest?
    public var testDigest: EvaluatedRowsDigest?

    public init(fingerprint: [UInt64], trainDigest: UInt64?, validDigest: EvaluatedRowsDigest? = nil,
                testDigest: EvaluatedRowsDigest? = nil) {
        self.fingerprint = fingerprint
        self.trainDigest = trainDigest
        self.validDigest = validDigest
        self.testDigest = testDigest
    }
}

/// The digest (`BinaryDataset.validateRows`) of an evaluation split's first `rows` rows: those a
/// run's evaluations use (`--eval-limit`, or the whole split). A digest of other rows than the
/// ones evaluated could refuse a run over rows it never reads.
public struct EvaluatedRowsDigest: Codable, Equatable, Sendable {
    public var rows: Int
    public var digest: UInt64

    public init(rows: Int, digest: UInt64) {
        self.rows = rows
        self.digest = digest
    }
}

/// A checkpoint in the layout of docs/checkpoint-format.md.
public struct Checkpoint: Equatable {
    public static let format = "bsvi-checkpoint"
    public static let formatVersion: Int64 = 1

    public var shape: ModelShape
    public var method: String
    /// Optimizer steps taken so far (global, the same on every rank).
    public var step: Int
    /// Epoch the next step belongs to (0-based).
    public var epoch: Int
    /// Learned π logits, if any; the flat parameter vector holds them last.
    public var piCount: Int
    /// The flat parameter vector of `VAEModel(shape:piCount:)` (its layout: tensors in order, each
    /// on a cache line, zeros between them).
    public var parameters: [Float]
    public var training: TrainingState?
    public var history: [MetricRecord]
    /// Why a /training or /metrics present in the file was set aside when the reader did not need
    /// them (eval, sample, inspect): the parts missing; nil when they were read or absent.
    public var unreadableTrainingState: String? = nil
    /// /training's `config`, `data_fingerprint` and `train_digest` when the rest of /training was
    /// set aside (else they are `training`'s).
    public var setAsideConfigurationJSON: String? = nil
    public var setAsideTrainingData: RecordedTrainingData? = nil
    /// The run's settings (/training's `config`) when the file has them, also when the rest of
    /// /training was set aside: where eval and sample take their defaults from.
    public var configurationJSON: String? { training?.configJSON ?? setAsideConfigurationJSON }
    /// What the run trained on, also when the rest of /training was set aside: what eval
    /// compares --data with.
    public var trainingData: RecordedTrainingData? { training?.trainingData ?? setAsideTrainingData }

    public init(shape: ModelShape, method: String, step: Int, epoch: Int, piCount: Int, parameters: [Float],
                training: TrainingState?, history: [MetricRecord]) {
        self.shape = shape
        self.method = method
        self.step = step
        self.epoch = epoch
        self.piCount = piCount
        self.parameters = parameters
        self.training = training
        self.history = history
    }

    public var model: VAEModel { VAEModel(shape: shape, piCount: piCount) }

    /// Where a tensor of the parameter layout is stored in the file.
    public static func datasetPath(for tensorName: String) -> String {
        tensorName == "pi/logits" ? "/training/pi_logits" : "/model/" + tensorName
    }
}
