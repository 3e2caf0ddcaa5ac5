import BSVI
import BSVIParallel
import BSVIStorage
import Foundation

/// What a run trains with, built and checked before anything is written: the dataset and this
/// rank's plan of it, the model, parameters and optimizer, the step and its input buffers.
final class TrainingSetup {
    let dataset: BinaryDataset
    /// What the run trains on, recorded in its checkpoints and compared on resume (the digest of
    /// /train's rows: every rank's part, summed).
    let data: TrainingData
    let trainRows: Int
    let plan: ShardPlan
    let schedule: TrainingSchedule
    let epochRows: EpochRows
    let model: VAEModel
    let params: FloatBuffer
    let adam: Adam
    let step: TrainingStep
    /// The current step's rows (localBatch × width) and their global row ids.
    let x: Matrix
    var exampleIDs: [Int]
    private let xBuffer: FloatBuffer

    init(config: RunConfiguration, comm: Communicator) throws {
        dataset = try comm.onEveryRank { try BinaryDataset(path: config.files.dataPath) }
        // Before anything depends on the file: ranks reading copies that differ would build
        // different schedules from them (different collectives: a hang) or different shuffles.
        try comm.requireSameDataset(dataset)
        let (rows, width) = try comm.agreedShape(of: .train, in: dataset)
        trainRows = rows
        plan = ShardPlan(totalRows: rows, worldSize: comm.size, rank: comm.rank, globalBatch: config.optimizer.batchSize)
        // The same rows, batch and world size on every rank (checked just above): every rank
        // fails here together, so rank 0 alone says why and all leave without MPI_Abort.
        do { try plan.validate(dataPath: config.files.dataPath) } catch { throw CollectiveError(error, isRoot: comm.isRoot) }
        schedule = TrainingSchedule(stepsPerEpoch: plan.stepsPerEpoch, schedule: config.schedule, evaluation: config.evaluation)
        var data = try TrainingData.checked(dataset, comm: comm)
        // The evaluation splits are checked now, not after hours of training: the rows the
        // evaluations will use, split across the ranks like /train.
        if config.evaluation.every > 0 {
            data.validDigest = try Self.checkEvaluationSplit(.valid, of: dataset, width: width, limit: config.evaluation.limit, comm: comm)
        }
        if !config.evaluation.skipFinal {
            data.testDigest = try Self.checkEvaluationSplit(.test, of: dataset, width: width, limit: config.evaluation.limit, comm: comm)
        }
        self.data = data
        // The rows this rank trains on, read epoch by epoch (≈ N/P rows held, not N); drawn
        // afresh every epoch when /train holds intensities (dynamic binarization).
        epochRows = EpochRows(plan: plan, width: width, values: dataset.values(of: .train))
        model = VAEModel(shape: config.model.shape(inputDim: width), piCount: config.objective.settings.piCount)
        params = FloatBuffer(count: model.vectorLength)
        adam = Adam(parameterCount: model.vectorLength, learningRate: config.optimizer.learningRate)
        step = TrainingStep(model: model, settings: config.objective.settings, localBatch: plan.localBatch,
                            globalBatch: config.optimizer.batchSize, adam: adam)
        xBuffer = FloatBuffer(count: plan.localBatch * width)
        x = xBuffer.matrix(rows: plan.localBatch, cols: width)
        exampleIDs = [Int](repeating: 0, count: plan.localBatch)
    }

    /// Loads the rows of step `step` (reading the epoch's rows first when it is the first step
    /// of an epoch, or the first of this process: a resume mid-epoch).
    func loadRows(forStep step: Int, seed: UInt64) throws {
        let epoch = schedule.epoch(ofStep: step)
        if epochRows.epoch != epoch { try epochRows.load(epoch: epoch, seed: seed, from: dataset) }
        epochRows.fill(step: schedule.positionInEpoch(ofStep: step), x: x, exampleIDs: &exampleIDs)
    }

    /// A split the run will evaluate must exist, match the training rows' width, and hold
    /// readable 0/1 rows: each rank checks its contiguous part of the rows evaluation will use
    /// (the first `limit`, 0 = all), every chunk's checksum and every value. Like the check of
    /// /train, a bad row is this rank's error (it aborts the job, see docs/reliability.md).
    /// Returns those rows' digest, the ranks' parts summed (a collective).
    static func checkEvaluationSplit(_ split: DataSplit, of dataset: BinaryDataset, width: Int, limit: Int,
                                     comm: Communicator) throws -> EvaluatedRowsDigest {
        let (rows, w) = try comm.agreedShape(of: split, in: dataset)
        guard w == width else {
            // The same file on every rank: every rank finds this, and rank 0 says it.
            throw CollectiveError(TrainingError.data(file: dataset.path, problem: "/\(split.rawValue) rows have \(w) pixels but /train rows have \(width)",
                                                     fix: "use one dataset file whose splits have the same width"), isRoot: comm.isRoot)
        }
        let evaluated = DistributedEvaluation.evaluatedRows(splitRows: rows, limit: limit)
        let part = try dataset.validateRows(split, rows: ShardPlan.startupCheckRows(count: evaluated, worldSize: comm.size, rank: comm.rank))
        return EvaluatedRowsDigest(rows: evaluated, digest: comm.allgather(part).reduce(0, &+))
    }
}
