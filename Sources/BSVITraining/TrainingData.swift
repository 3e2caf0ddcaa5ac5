import BSVIParallel
import BSVIStorage

/// The data a run trains on, as its checkpoints record it (`RecordedTrainingData`): the file's
/// shapes and binarization, and the digest of /train's rows, which tells other images of the
/// same shape apart (Fashion-MNIST and MNIST have the same). `--resume` refuses other data;
/// eval and compare warn about it.
public struct TrainingData {
    let fingerprint: DatasetFingerprint
    /// nil when /train was not read (eval reads it only when the comparison needs it).
    let trainDigest: UInt64?
    /// The rows of /valid and /test the run evaluates, as its start-up check read them (nil for
    /// a split it does not evaluate, and in eval and compare): a resume refuses other rows there,
    /// which would make one validation curve of two validation sets.
    var validDigest: EvaluatedRowsDigest? = nil
    var testDigest: EvaluatedRowsDigest? = nil

    var recorded: RecordedTrainingData {
        RecordedTrainingData(fingerprint: fingerprint.words, trainDigest: trainDigest, validDigest: validDigest, testDigest: testDigest)
    }

    /// The run's data at start-up: each rank checks a contiguous 1/P of /train (every chunk's
    /// checksum, and 0/1 values unless /train holds intensities), so a bad value stops the run
    /// before anything is written, whichever epoch would first use it; the parts' digests add
    /// up to the same /train digest for any number of ranks. A collective.
    static func checked(_ dataset: BinaryDataset, comm: Communicator) throws -> TrainingData {
        TrainingData(fingerprint: .ofTrainingData(dataset), trainDigest: comm.allgather(try partDigest(dataset, comm: comm)).reduce(0, &+))
    }

    /// This rank's contiguous 1/P of /train, checked (`BinaryDataset.validateRows`), as its digest.
    private static func partDigest(_ dataset: BinaryDataset, comm: Communicator) throws -> UInt64 {
        let rows = try dataset.shape(of: .train).rows
        return try dataset.validateRows(.train, rows: ShardPlan.startupCheckRows(count: rows, worldSize: comm.size, rank: comm.rank))
    }

    /// `dataset` as eval and compare compare it with what the checkpoints' runs `recorded`: /train
    /// is read (each rank its part, once for all the checkpoints) only when one of them recorded a
    /// digest and the shapes and binarization agree with it. Evaluating never needs /train, so a
    /// part a rank cannot read leaves the digest out (nil) rather than failing the evaluation. A
    /// collective when `recorded` is the same on every rank, as `ModelDistribution.load` makes it.
    public static func compared(with recorded: [RecordedTrainingData?], _ dataset: BinaryDataset, comm: Communicator) -> TrainingData {
        let fingerprint = DatasetFingerprint.ofTrainingData(dataset)
        guard recorded.contains(where: { $0?.trainDigest != nil && $0?.fingerprint == fingerprint.words }) else {
            return TrainingData(fingerprint: fingerprint, trainDigest: nil)
        }
        let part = try? partDigest(dataset, comm: comm)
        let parts = comm.allgather([part ?? 0, part == nil ? 1 : 0])
        let readable = parts.allSatisfy { $0[1] == 0 }
        return TrainingData(fingerprint: fingerprint, trainDigest: readable ? parts.map { $0[0] }.reduce(0, &+) : nil)
    }

    /// How this differs from what a checkpoint's run `recorded`, one phrase per difference, each
    /// naming the recorded value after `referenceName`; empty when they agree, or when the
    /// checkpoint (written before 2026-12-03) recorded nothing.
    public func differences(from recorded: RecordedTrainingData?, referenceName: String) -> [String] {
        guard let recorded else { return [] }
        var found = fingerprint.differences(from: .ofTrainingData(words: recorded.fingerprint), referenceName: referenceName)
        if found.isEmpty, let mine = trainDigest, let theirs = recorded.trainDigest, mine != theirs {
            found.append("/train holds other rows of the same shape (digest " + String(mine, radix: 16)
                         + "; \(referenceName): " + String(theirs, radix: 16) + ")")
        }
        // Comparable only over the same rows: a changed --eval-limit (a schedule setting) evaluates others.
        for (split, mine, theirs) in [("valid", validDigest, recorded.validDigest), ("test", testDigest, recorded.testDigest)] {
            guard found.isEmpty, let mine, let theirs, mine.rows == theirs.rows, mine.digest != theirs.digest else { continue }
            found.append("/\(split) holds other rows of the same shape (the digest of the \(mine.rows) rows evaluated "
                         + String(mine.digest, radix: 16) + "; \(referenceName): " + String(theirs.digest, radix: 16) + ")")
        }
        return found
    }
}
