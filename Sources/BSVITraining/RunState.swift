import BSVI
import BSVIStorage
import Foundation

/// Where a run stands: everything the loop changes as it goes. Identical on every rank except
/// `history`, `resumes` and the last checkpoint (`lastCheckpoint`, `lastCheckpointPath`), which
/// only rank 0 (the one that writes files) keeps: nothing every rank must take part in may
/// depend on them.
struct RunState {
    /// Steps completed (global, the same on every rank).
    var step: Int
    var skippedSteps: Int
    /// Consecutive skipped steps so far.
    var badStreak = 0
    /// Evaluation results carried by every checkpoint.
    var history: [MetricRecord]
    /// Each continuation of the run: where, on how many ranks, and which schedule settings changed.
    var resumes: [ResumeRecord]
    /// Training sums of the current epoch's applied steps (carried over a resume mid-epoch).
    var epochSums = ObjectiveSums()
    /// When this process began timing the epoch, and the examples it trained since (the rate).
    var epochStart = Date()
    var epochTimedExamples = 0
    let runStart = Date()
    /// Rank 0: the newest checkpoint written by this process (its step, file and contents, for final.h5).
    var lastCheckpoint: SavedCheckpoint? {
        didSet { lastCheckpointPath = lastCheckpoint?.path ?? lastCheckpointPath }
    }
    /// Rank 0: the newest good checkpoint of the run (this process's, or the one it resumed from).
    var lastCheckpointPath: String?
    /// Time in training steps, and steps trained (of `batchSize` examples each), in this process.
    var trainingSeconds = 0.0
    var trainedSteps = 0

    init(step: Int, skippedSteps: Int, badStreak: Int = 0, epochSums: ObjectiveSums = ObjectiveSums(), history: [MetricRecord],
         resumes: [ResumeRecord]) {
        self.step = step
        self.skippedSteps = skippedSteps
        self.badStreak = badStreak
        self.epochSums = epochSums
        self.history = history
        self.resumes = resumes
    }

    /// Folds one step's result in: its sums (applied steps only) and the non-finite streak.
    mutating func record(_ result: StepResult, seconds: Double) {
        step += 1
        trainedSteps += 1
        trainingSeconds += seconds
        if result.applied {
            badStreak = 0
            epochSums.add(result.sums)
            epochTimedExamples += result.sums.examples
        } else {
            badStreak += 1
            skippedSteps += 1
        }
    }

    mutating func startEpoch() {
        epochSums = ObjectiveSums()
        epochStart = Date()
        epochTimedExamples = 0
    }

    var epochExamplesPerSecond: Double { Double(epochTimedExamples) / max(Date().timeIntervalSince(epochStart), 1e-9) }
}

/// A checkpoint rank 0 wrote: where and what.
struct SavedCheckpoint {
    let step: Int
    let path: String
    let contents: Checkpoint
}

/// One continuation of a run from a checkpoint (recorded in the checkpoint and summary.json).
public struct ResumeRecord: Codable, Equatable, Sendable {
    public var step: Int
    public var worldSize: Int
    public var previousWorldSize: Int
    public var scheduleChanges: [SettingChange]
}
