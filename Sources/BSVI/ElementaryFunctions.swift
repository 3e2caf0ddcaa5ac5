import CKernels

/// The vectorized elementary functions the kernels are built from (CKernels' elementwise.inc),
/// applied to arrays on the active kernel path. Accuracy (BSVITests/ElementaryFunctionTests,
/// on every path): exp relative error ≤ 2e-7 on [−87, 88]; log1p absolute error ≤ 1e-7 on
/// [0, 1]; tanh absolute error ≤ 4e-7; softplus ≤ 2e-7 plus half an ulp; cos/sin 2πu ≤ 3e-7.
public enum ElementaryFunction: CaseIterable, Sendable {
    /// e^x with inputs clamped to [−87.3, 88.7].
    case exp
    /// e^x for x ≤ 0 (the likelihood's e^−|a|): the same bits as `exp` there.
    case expNonPositive
    /// ln x for positive normal x.
    case log
    /// ln(1 + x) for x in [0, 1].
    case log1pUnit
    case tanh
    /// max(x, 0) + ln(1 + e^−|x|).
    case softplus
    case sigmoid
    /// cos 2πx and sin 2πx, as the normal sampler computes them.
    case cosTwoPi, sinTwoPi

    var kernel: bsvi_function {
        switch self {
        case .exp: return BSVI_FUNCTION_EXP
        case .expNonPositive: return BSVI_FUNCTION_EXP_NONPOSITIVE
        case .log: return BSVI_FUNCTION_LOG
        case .log1pUnit: return BSVI_FUNCTION_LOG1P_UNIT
        case .tanh: return BSVI_FUNCTION_TANH
        case .softplus: return BSVI_FUNCTION_SOFTPLUS
        case .sigmoid: return BSVI_FUNCTION_SIGMOID
        case .cosTwoPi: return BSVI_FUNCTION_COS_2PI
        case .sinTwoPi: return BSVI_FUNCTION_SIN_2PI
        }
    }

    public func apply(_ xs: [Float]) -> [Float] {
        var out = [Float](repeating: 0, count: xs.count)
        xs.withUnsafeBufferPointer { input in
            out.withUnsafeMutableBufferPointer { bsvi_elementary(kernel, input.baseAddress, $0.baseAddress, xs.count) }
        }
        return out
    }
}

/// max |p_i| over `count` floats (0 for none): +∞ if some p_i is ±∞, NaN if some p_i is NaN.
public func maxMagnitude(_ p: UnsafePointer<Float>, count: Int) -> Float { bsvi_max_magnitude(p, count) }

/// Whether all `count` floats are finite (no NaN, no ±∞).
public func allFinite(_ p: UnsafePointer<Float>, count: Int) -> Bool { maxMagnitude(p, count: count).isFinite }
