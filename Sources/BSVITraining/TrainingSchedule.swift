/// When the run does what: pure functions of the step count and the configuration, the same on
/// every rank (so every rank enters every collective — evaluation, consistency check — at the
/// same step), testable without MPI or files.
public struct TrainingSchedule: Equatable, Sendable {
    public let stepsPerEpoch: Int
    /// Steps of the whole run (a resumed run stops where an uninterrupted one would).
    public let totalSteps: Int
    /// Validation evaluation every N epochs (0: never).
    public let evaluateEvery: Int
    /// Extra checkpoints every N steps (0: only at epoch ends).
    public let checkpointEvery: Int
    public let consistencyEvery: Int
    public let maxBadSteps: Int

    public init(stepsPerEpoch: Int, schedule: ScheduleSection, evaluation: EvaluationSection) {
        precondition(stepsPerEpoch >= 1)
        self.stepsPerEpoch = stepsPerEpoch
        totalSteps = min(schedule.epochs > 0 ? schedule.epochs * stepsPerEpoch : Int.max,
                         schedule.maxSteps > 0 ? schedule.maxSteps : Int.max)
        evaluateEvery = evaluation.every
        checkpointEvery = schedule.checkpointEvery
        consistencyEvery = schedule.consistencyEvery
        maxBadSteps = schedule.maxBadSteps
    }

    /// The epoch (from 0) that step `step` (from 0) belongs to, and its position in it.
    public func epoch(ofStep step: Int) -> Int { step / stepsPerEpoch }
    public func positionInEpoch(ofStep step: Int) -> Int { step % stepsPerEpoch }

    /// What follows once `completed` steps are done (completed ≥ 1).
    public struct AfterStep: Equatable, Sendable {
        /// The step ended epoch `epoch` (counted from 1), whose summary is due.
        public var endedEpoch: Int?
        public var evaluateValidation = false
        public var checkConsistency = false
        public var checkpoint = false
        /// Stop now (a signal), with the stop checkpoint (`Trainer.stop`). After the run's last
        /// step the loop ends by itself (`Trainer.finish`).
        public var stop = false
    }

    public func afterStep(completed: Int, stopRequested: Bool) -> AfterStep {
        var next = AfterStep()
        if completed % stepsPerEpoch == 0 {
            let epoch = completed / stepsPerEpoch
            next.endedEpoch = epoch
            next.evaluateValidation = evaluateEvery > 0 && epoch % evaluateEvery == 0
        }
        next.checkConsistency = consistencyEvery > 0 && completed % consistencyEvery == 0
        next.stop = stopRequested
        next.checkpoint = stopRequested || next.endedEpoch != nil || (checkpointEvery > 0 && completed % checkpointEvery == 0)
        return next
    }

    /// Whether a run of `badStreak` consecutive skipped steps must stop.
    public func givesUp(badStreak: Int) -> Bool { badStreak >= maxBadSteps }
}
