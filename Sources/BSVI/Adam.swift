import CKernels
import Foundation

/// Adam (Kingma & Ba) on a flat parameter vector, minimizing: p ← p − lr · m̂ / (√v̂ + ε).
/// The moments share the parameter layout so checkpoints store them as two more vectors.
public final class Adam {
    public var learningRate: Float
    public let beta1: Float
    public let beta2: Float
    public let epsilon: Float
    public let firstMoment: FloatBuffer
    public let secondMoment: FloatBuffer
    /// Number of updates applied so far (bias correction uses it).
    public var step: Int = 0

    public init(parameterCount: Int, learningRate: Float, beta1: Float = 0.9, beta2: Float = 0.999,
                epsilon: Float = 1e-8) {
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        firstMoment = FloatBuffer(count: parameterCount)
        secondMoment = FloatBuffer(count: parameterCount)
    }

    /// The largest |gradient × gradientScale| an update may see. Above √(FLT_MAX) ≈ 1.8e19 the
    /// second moment's g² (or v̂ = v/(1 − β₂ᵗ) in the first steps) overflows to +∞ and stays there:
    /// that parameter never moves again and the next checkpoint refuses the non-finite state. At
    /// or below this bound v ≤ max g² and v̂ ≤ max g² ≤ 1e38 stay finite.
    public static let largestSafeGradient: Float = 1e19

    /// One update with the loss gradient `gradient` scaled by `gradientScale` (e.g. −1/B to
    /// turn a summed objective gradient into a mean loss gradient).
    public func update(_ params: FloatBuffer, gradient: UnsafePointer<Float>, gradientScale: Float = 1) {
        precondition(params.count == firstMoment.count, "Adam state has \(firstMoment.count) entries, parameters \(params.count)")
        step += 1
        let c1 = 1 - Float(pow(Double(beta1), Double(step)))
        let c2 = 1 - Float(pow(Double(beta2), Double(step)))
        let stepSize = learningRate / c1
        bsvi_adam_update(params.count, params.base, firstMoment.base, secondMoment.base, gradient, gradientScale,
                         beta1, beta2, stepSize, 1 / c2, epsilon)
    }

    /// The hardware's floor for one update of `parameterCount` parameters: Adam's memory traffic
    /// (28 bytes a parameter: p, m, v and the gradient read, p, m, v written) with none of its
    /// arithmetic (`bsvi_update_traffic`), on zeroed scratch arrays of the real size, best of
    /// `repeats` passes after one untimed. `bench` sets each method's ceiling with it: the default
    /// model's arrays (6.8 MB) do not fit in L2, and with them in L3 Adam itself runs at this
    /// floor, not at its divider's rate (docs/benchmarks.md).
    public static func trafficFloorSeconds(parameterCount n: Int, repeats: Int = 8) -> Double {
        let p = FloatBuffer(count: n), m = FloatBuffer(count: n), v = FloatBuffer(count: n), g = FloatBuffer(count: n)
        return shortestSeconds(ofPasses: repeats, afterWarmups: 1) { bsvi_update_traffic(n, p.base, m.base, v.base, g.base) }
    }

    /// The hardware's other floor for one update: a square root and a division per parameter, both
    /// exactly rounded (the bits must not depend on the path), at the core's rate for them on the
    /// active path's vectors (`bsvi_sqrt_divide_rate`, register-only chains, the best of five
    /// windows). Where the divider is slow, as on a Zen 1, this floor is above the traffic's.
    public static func dividerFloorSeconds(parameterCount n: Int, seconds: Double = 0.05) -> Double {
        Double(n) / bestOfPeakWindows(seconds: seconds) { bsvi_sqrt_divide_rate($0) }
    }
}
