/// Where a lockstep job's exchange time goes, from every rank's per-step timings: each step a
/// rank works (from leaving one allreduce to entering the next), then waits in the allreduce for
/// the rank that works longest, then exchanges. Each step's slowest rank waits for nobody, so its
/// time in the allreduce is that step's exchange; every other rank's extra time there is waiting.
/// The step is therefore (the ranks' mean work) + wait + exchange, where the wait is what
/// unequal or jittery cores cost a lockstep job and the exchange is what the transport costs.
public struct LockstepSplit: Equatable {
    /// Mean over steps of (the slowest rank's work − the ranks' mean work), ms.
    public var waitMs: Double
    /// Mean over steps of the slowest rank's time in the allreduce, ms.
    public var exchangeMs: Double

    public init(waitMs: Double, exchangeMs: Double) {
        self.waitMs = waitMs
        self.exchangeMs = exchangeMs
    }

    /// From every rank's per-step work and allreduce times (ms).
    public init(_ times: RankStepTimes) {
        let work = times.work, allreduce = times.allreduce, steps = work[0].count
        guard steps > 0 else {
            waitMs = 0
            exchangeMs = 0
            return
        }
        var wait = 0.0, exchange = 0.0
        for s in 0..<steps {
            let slowest = work.indices.max { work[$0][s] < work[$1][s] }!
            wait += work[slowest][s] - work.reduce(0) { $0 + $1[s] } / Double(work.count)
            exchange += allreduce[slowest][s]
        }
        waitMs = wait / Double(steps)
        exchangeMs = exchange / Double(steps)
    }
}
