import BSVI
import BSVIParallel
import Foundation

/// What one step did, identical on every rank (it is read from the reduced buffer).
public struct StepResult {
    /// false when all ranks skipped the update: some rank saw a non-finite loss or gradient, the
    /// sum overflowed, or the gradient was too large for Adam (`gradientTooLarge`).
    public var applied: Bool
    public var nonFiniteRanks: Int
    /// Every entry was finite but the reduced gradient's bound exceeded `Adam.largestSafeGradient`.
    public var gradientTooLarge = false
    public var stopRequested: Bool
    /// Every rank's sums together.
    public var sums: ObjectiveSums
}

/// One data-parallel step, shared by the trainer and `bsvi-dist bench`: local per-example
/// work (encoder, SVI refinement, buffer, gradients), exactly one allreduce of the flat
/// gradient+sums+flags buffer, then the identical Adam update on every rank — or, if any rank
/// flagged a non-finite value, no update anywhere.
public final class TrainingStep {
    public let objective: BatchObjective
    public let exchange: StepExchange
    public let adam: Adam
    public let globalBatch: Int
    /// Time spent in Adam's update (for the benchmark's breakdown; like the allreduce's, two clock
    /// reads a step, so it is always on).
    public private(set) var updateNanoseconds: UInt64 = 0
    /// When the last step entered and left its allreduce (uptime, ns): `bench` sums the allreduce
    /// time from it and splits it into waiting for the slowest rank and the exchange itself
    /// (LockstepSplit).
    public private(set) var lastAllreduce: (start: UInt64, end: UInt64) = (0, 0)

    public init(model: VAEModel, settings: ObjectiveSettings, localBatch: Int, globalBatch: Int, adam: Adam) {
        objective = BatchObjective(model: model, settings: settings, batchCapacity: localBatch)
        exchange = StepExchange(parameterCount: model.vectorLength)
        self.adam = adam
        self.globalBatch = globalBatch
    }

    /// Both phases of a step.
    public func run(x: Matrix, exampleIDs: [Int], noise: NoiseSource, params: FloatBuffer, comm: Communicator,
                    stopRequested: Bool) -> StepResult {
        computeLocal(x: x, exampleIDs: exampleIDs, noise: noise, params: params)
        return exchangeAndUpdate(params: params, comm: comm, stopRequested: stopRequested)
    }

    /// This rank's part: the objective's gradient and sums over its examples, into the exchange.
    public func computeLocal(x: Matrix, exampleIDs: [Int], noise: NoiseSource, params: FloatBuffer) {
        exchange.resetSumsAndFlags()
        localStatistics = objective.accumulate(x: x, exampleIDs: exampleIDs, noise: noise, params: params, grads: exchange.gradients,
                                               overwrite: true)
    }

    private var localStatistics = ObjectiveSums()

    /// The collective part: flags, one allreduce, and the same update (or the same skip) on every rank.
    public func exchangeAndUpdate(params: FloatBuffer, comm: Communicator, stopRequested: Bool) -> StepResult {
        exchange.finishLocal(localStatistics, stopRequested: stopRequested)
        let t = DispatchTime.now().uptimeNanoseconds
        exchange.allreduce(comm)
        lastAllreduce = (t, DispatchTime.now().uptimeNanoseconds)
        let bad = Int(exchange[.nonFiniteRanks])
        let scale = -1 / Float(globalBatch)
        // Finite summands can still overflow in the sum, and a finite gradient can still be too
        // large for Adam's second moment; every rank sees the same reduced buffer, so these
        // checks are as collective as the flags.
        let finite = bad == 0 && exchange.reducedGradientIsFinite()
        let tooLarge = finite && exchange.reducedGradientExceeds(Adam.largestSafeGradient / abs(scale))
        let applied = finite && !tooLarge
        if applied {
            let u = DispatchTime.now().uptimeNanoseconds
            adam.update(params, gradient: exchange.gradients.base, gradientScale: scale)
            updateNanoseconds &+= DispatchTime.now().uptimeNanoseconds &- u
        }
        return StepResult(applied: applied, nonFiniteRanks: bad, gradientTooLarge: tooLarge, stopRequested: exchange[.stopRequests] > 0,
                          sums: exchange.sums)
    }

    /// The last step's reduced objective gradient, averaged over the global batch.
    public func meanGradient() -> [Float] {
        (0..<exchange.parameterCount).map { exchange.gradients[$0] / Float(globalBatch) }
    }
}
