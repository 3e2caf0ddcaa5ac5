import BSVITraining
import Testing

/// The schedule's decisions as pure functions of the step count.
@Suite("Training schedule")
struct TrainingScheduleTests {
    static func schedule(stepsPerEpoch: Int = 10, epochs: Int = 3, maxSteps: Int = 0, evalEvery: Int = 0,
                         checkpointEvery: Int = 0, consistencyEvery: Int = 0, maxBadSteps: Int = 20) -> TrainingSchedule {
        var s = ScheduleSection()
        s.epochs = epochs
        s.maxSteps = maxSteps
        s.checkpointEvery = checkpointEvery
        s.consistencyEvery = consistencyEvery
        s.maxBadSteps = maxBadSteps
        var e = EvaluationSection()
        e.every = evalEvery
        return TrainingSchedule(stepsPerEpoch: stepsPerEpoch, schedule: s, evaluation: e)
    }

    @Test("total steps: epochs × steps per epoch, capped by --max-steps when that comes first")
    func totalSteps() {
        #expect(Self.schedule(epochs: 3).totalSteps == 30)
        #expect(Self.schedule(epochs: 3, maxSteps: 25).totalSteps == 25)
        #expect(Self.schedule(epochs: 3, maxSteps: 40).totalSteps == 30)
        #expect(Self.schedule(epochs: 0, maxSteps: 7).totalSteps == 7)
        let s = Self.schedule()
        #expect(s.epoch(ofStep: 0) == 0 && s.epoch(ofStep: 9) == 0 && s.epoch(ofStep: 10) == 1)
        #expect(s.positionInEpoch(ofStep: 13) == 3)
    }

    @Test("an epoch ends every stepsPerEpoch steps, with a checkpoint; validation every N epochs")
    func epochEnds() {
        let s = Self.schedule(evalEvery: 2)
        var ends: [Int] = [], evaluations: [Int] = [], checkpoints: [Int] = []
        for completed in 1...30 {
            let next = s.afterStep(completed: completed, stopRequested: false)
            if let e = next.endedEpoch { ends.append(e) }
            if next.evaluateValidation { evaluations.append(completed) }
            if next.checkpoint { checkpoints.append(completed) }
            #expect(!next.stop)
        }
        #expect(ends == [1, 2, 3])
        #expect(evaluations == [20])
        #expect(checkpoints == [10, 20, 30])
    }

    @Test("extra checkpoints and consistency checks at their cadence; none when off")
    func cadences() {
        let s = Self.schedule(checkpointEvery: 4, consistencyEvery: 6)
        let checkpoints = (1...20).filter { s.afterStep(completed: $0, stopRequested: false).checkpoint }
        let checks = (1...20).filter { s.afterStep(completed: $0, stopRequested: false).checkConsistency }
        #expect(checkpoints == [4, 8, 10, 12, 16, 20])
        #expect(checks == [6, 12, 18])
        let off = Self.schedule()
        #expect((1...30).filter { off.afterStep(completed: $0, stopRequested: false).checkConsistency }.isEmpty)
    }

    @Test("a stop request stops after this step with a checkpoint, even mid-epoch and at the run's last step")
    func stop() {
        let s = Self.schedule()
        let next = s.afterStep(completed: 7, stopRequested: true)
        #expect(next.stop && next.checkpoint && next.endedEpoch == nil)
        let atEnd = s.afterStep(completed: 30, stopRequested: true)
        #expect(atEnd.stop && atEnd.checkpoint)
    }

    @Test("the run gives up after maxBadSteps consecutive skipped steps, not before")
    func givesUp() {
        let s = Self.schedule(maxBadSteps: 3)
        #expect(!s.givesUp(badStreak: 2))
        #expect(s.givesUp(badStreak: 3))
    }
}
