import CKernels

/// Hidden-layer nonlinearity. Each derivative is written in terms of the layer's *output*
/// so the backward pass needs only the stored activations, not the pre-activations.
public enum Activation: String, CaseIterable, Codable, Sendable {
    case tanh, relu, softplus

    var kernel: bsvi_activation {
        switch self {
        case .tanh: return BSVI_ACTIVATION_TANH
        case .relu: return BSVI_ACTIVATION_RELU
        case .softplus: return BSVI_ACTIVATION_SOFTPLUS
        }
    }

    /// Applies the nonlinearity in place to `count` values.
    public func apply(_ x: UnsafeMutablePointer<Float>, count: Int) { bsvi_activation_forward(kernel, x, count) }

    /// delta[i] *= f'(pre[i]), expressed through the output y = f(pre):
    /// tanh 1 − y², relu [y > 0], softplus sigmoid(pre) = 1 − e^−y.
    public func multiplyByDerivative(_ delta: UnsafeMutablePointer<Float>, output y: UnsafePointer<Float>,
                                     count: Int) {
        bsvi_activation_backward(kernel, delta, y, count)
    }
}
