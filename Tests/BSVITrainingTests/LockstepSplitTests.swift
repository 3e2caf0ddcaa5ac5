import BSVITraining
import Testing

@Suite("Lockstep split of the exchange")
struct LockstepSplitTests {
    @Test("each step's slowest rank sets the wait (its work above the mean) and the exchange (its time in the allreduce)")
    func smallCase() {
        // Step 0: rank 1 is slowest (11 against a mean of 10.5), its allreduce 0.3. Step 1: rank 0
        // (12 against 11), 0.2. Step 2: a tie, no wait, both 0.5.
        let split = LockstepSplit(RankStepTimes(work: [[10, 12, 9], [11, 10, 9]], allreduce: [[1.3, 0.2, 0.5], [0.3, 2.2, 0.5]]))
        #expect(abs(split.waitMs - 1.5 / 3) < 1e-12)
        #expect(abs(split.exchangeMs - 1.0 / 3) < 1e-12)
        // One rank waits for nobody; its allreduce is all exchange.
        #expect(LockstepSplit(RankStepTimes(work: [[4, 5]], allreduce: [[0.25, 0.75]])) == LockstepSplit(waitMs: 0, exchangeMs: 0.5))
    }

    @Test("bench's split leaves out the first timed step (the barrier's skew): the other steps, one step kept as it is")
    func firstStepLeftOut() {
        let times = RankStepTimes(work: [[1, 12, 9], [0.5, 10, 9]], allreduce: [[9.3, 0.2, 0.5], [4.0, 2.2, 0.5]])
        #expect(times.droppingFirstStep == RankStepTimes(work: [[12, 9], [10, 9]], allreduce: [[0.2, 0.5], [2.2, 0.5]]))
        let one = RankStepTimes(work: [[4], [5]], allreduce: [[1], [0.2]])
        #expect(one.droppingFirstStep == one)
    }

    @Test("in lockstep (every rank's work + allreduce is the step) mean work + wait + exchange is the step, for any jitter",
          arguments: [2, 3, 8])
    func stepIdentity(ranks: Int) {
        var g = SystemRandomNumberGenerator()
        let steps = 50
        let stepMs = (0..<steps).map { _ in Double.random(in: 12...20, using: &g) }
        let exchange = (0..<steps).map { _ in Double.random(in: 0.1...0.5, using: &g) }
        // Each rank's lag behind the step's slowest rank (0 for that rank): it works that much less
        // and waits that much longer in the allreduce, which every rank leaves at the step's end.
        let draws = (0..<ranks).map { _ in (0..<steps).map { _ in Double.random(in: 0...3, using: &g) } }
        let lag = draws.map { d in (0..<steps).map { s in d[s] - draws.map { $0[s] }.min()! } }
        let work = lag.map { l in (0..<steps).map { stepMs[$0] - exchange[$0] - l[$0] } }
        let allreduce = lag.map { l in (0..<steps).map { exchange[$0] + l[$0] } }
        let split = LockstepSplit(RankStepTimes(work: work, allreduce: allreduce))
        let meanWork = work.joined().reduce(0, +) / Double(ranks * steps)
        #expect(abs(meanWork + split.waitMs + split.exchangeMs - stepMs.reduce(0, +) / Double(steps)) < 1e-9)
        #expect(abs(split.exchangeMs - exchange.reduce(0, +) / Double(steps)) < 1e-9)
        #expect(split.waitMs > 0)
        // The allgathered layout (each rank's work series, then its allreduce series, rank by rank).
        let gathered = (0..<ranks).flatMap { RankStepTimes.gatherable(work: work[$0], allreduce: allreduce[$0]) }
        let times = RankStepTimes(gathered: gathered, ranks: ranks)
        #expect(times == RankStepTimes(work: work, allreduce: allreduce) && LockstepSplit(times) == split)
    }
}
