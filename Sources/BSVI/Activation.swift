import Foundation

/// Hidden-layer nonlinearity. Each derivative is written in terms of the layer's *output*
/// so the backward pass needs only the stored activations, not the pre-activations.
public enum Activation: String, CaseIterable, Codable, Sendable {
    case tanh, relu, softplus

    /// Applies the nonlinearity in place to `count` values.
    public func apply(_ x: UnsafeMutablePointer<Float>, count: Int) {
        switch self {
        case .tanh:
            VectorMath.map(x, count: count, VectorMath.tanh)
        case .relu:
            for i in 0..<count { x[i] = max(x[i], 0) }
        case .softplus:
            for i in 0..<count { x[i] = BSVI.softplus(x[i]) }
        }
    }

    /// delta[i] *= f'(pre[i]), expressed through the output y = f(pre).
    public func multiplyByDerivative(_ delta: UnsafeMutablePointer<Float>, output y: UnsafePointer<Float>,
                                     count: Int) {
        switch self {
        case .tanh:
            for i in 0..<count { delta[i] *= 1 - y[i] * y[i] }
        case .relu:
            for i in 0..<count where y[i] <= 0 { delta[i] = 0 }
        case .softplus:
            // y = log(1 + e^pre)  ⇒  sigmoid(pre) = 1 − e^(−y).
            for i in 0..<count { delta[i] *= -expm1(-y[i]) }
        }
    }
}
