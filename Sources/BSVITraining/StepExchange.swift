import BSVI
import BSVIParallel

/// The one flat Float32 buffer each step allreduces: every gradient (encoder, decoder, π
/// logits, in layout order), the step's ObjectiveSums in their packing, and the control flags.
/// One collective a step keeps the ranks in lockstep and makes skip/stop decisions collective
/// by construction.
public final class StepExchange {
    public enum Flag: Int, CaseIterable {
        case nonFiniteRanks, stopRequests
        /// Σ over ranks of each rank's max |g_i|: a bound on every entry of the reduced gradient.
        case gradientMagnitudeSum
    }

    public let parameterCount: Int
    public let buffer: FloatBuffer

    public init(parameterCount: Int) {
        self.parameterCount = parameterCount
        buffer = FloatBuffer(count: parameterCount + ObjectiveSums.packedCount + Flag.allCases.count)
    }

    private var sumsBase: UnsafeMutablePointer<Float> { buffer.base + parameterCount }

    /// The sums part (this rank's before the allreduce, every rank's after).
    public var sums: ObjectiveSums { ObjectiveSums(unpacking: sumsBase) }

    /// The gradient part, laid out like the parameters.
    public var gradients: FloatBuffer { buffer }

    public subscript(flag: Flag) -> Float {
        get { buffer[parameterCount + ObjectiveSums.packedCount + flag.rawValue] }
        set { buffer[parameterCount + ObjectiveSums.packedCount + flag.rawValue] = newValue }
    }

    /// Zeroes the sums and flags. The gradient part is not zeroed: the objective writes all of it
    /// (`BatchObjective.accumulate(…, overwrite: true)`), which saves a pass over 1.7 MB a step.
    public func resetSumsAndFlags() {
        (buffer.base + parameterCount).update(repeating: 0, count: buffer.count - parameterCount)
    }

    /// Fills the sums and flags after the local work; a rank flags itself if anything it is
    /// about to contribute is NaN or ±∞.
    public func finishLocal(_ stats: ObjectiveSums, stopRequested: Bool) {
        stats.pack(into: sumsBase)
        let magnitude = maxMagnitude(buffer.base, count: parameterCount)
        // The bound as it travels, in Float32: a Double sum past 3.4e38 arrives as ±∞.
        let finite = Float(stats.bound).isFinite && magnitude.isFinite
        self[.nonFiniteRanks] = finite ? 0 : 1
        self[.stopRequests] = stopRequested ? 1 : 0
        self[.gradientMagnitudeSum] = finite ? magnitude : 0
    }

    public func allreduce(_ comm: Communicator) { comm.allreduceSum(buffer.base, count: buffer.count) }

    /// Whether the reduced gradient is finite, given that every rank's part was (a sum of finite
    /// values can still overflow). No reduced entry can exceed Σ_r max_i |g_ri| by more than the
    /// rounding of P additions, so below `noOverflowBound` the scan is skipped: one pass over the
    /// gradient fewer per step, the same decision.
    public func reducedGradientIsFinite() -> Bool {
        self[.gradientMagnitudeSum] <= Self.noOverflowBound || allFinite(buffer.base, count: parameterCount)
    }

    /// Whether some entry of the reduced gradient exceeds `limit` in magnitude. The ranks' bound
    /// (Σ_r max_i |g_ri|) grows with their number, so above the limit the reduced gradient is
    /// scanned: the answer, like the update it guards, must not depend on the world size.
    public func reducedGradientExceeds(_ limit: Float) -> Bool {
        self[.gradientMagnitudeSum] > limit && maxMagnitude(buffer.base, count: parameterCount) > limit
    }

    /// Far enough below Float's largest finite value (3.4e38) that P ≤ 2²⁰ rounded additions of
    /// terms whose magnitudes sum to it stay finite.
    static let noOverflowBound: Float = 1e37
}

/// FNV-1a over the bytes of the parameters, tensor after tensor in layout order (the gaps
/// between them left out, so the value is that of the packed vector, as before the layout had
/// gaps): equal on all ranks iff they hold the same bits.
public func parameterChecksum(_ p: FloatBuffer, layout: ParameterLayout) -> UInt64 {
    precondition(p.count == layout.vectorLength, "a vector of \(p.count) floats, the layout has \(layout.vectorLength)")
    var h = FNV1a()
    for t in layout.tensors {
        for i in t.range {
            var bits = p[i].bitPattern
            for _ in 0..<4 {  // little-endian byte order
                h.add(UInt8(truncatingIfNeeded: bits))
                bits >>= 8
            }
        }
    }
    return h.value
}
