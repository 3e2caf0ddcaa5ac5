import BSVI
import Foundation

// Shared helpers of the numerics tests: owned matrices, deterministic test data, and a
// Float64 reference implementation of DESIGN.md §2 written independently of Sources/BSVI
// (only the parameter layout — kernel [in, out] row-major, y = x·W + b — is shared).

/// A row-major Float32 matrix that owns its memory. Keep the `HostMatrix` referenced while a
/// `Matrix` view of it is in use.
final class HostMatrix {
    let buffer: FloatBuffer
    let rows: Int
    let cols: Int

    init(rows: Int, cols: Int) {
        self.rows = rows
        self.cols = cols
        buffer = FloatBuffer(count: rows * cols)
    }

    convenience init(rows: Int, cols: Int, values: [Float]) {
        precondition(values.count == rows * cols)
        self.init(rows: rows, cols: cols)
        buffer.copy(from: values)
    }

    var matrix: Matrix { buffer.matrix(rows: rows, cols: cols) }

    subscript(r: Int, c: Int) -> Float {
        get { buffer[r * cols + c] }
        set { buffer[r * cols + c] = newValue }
    }

    func row(_ r: Int) -> [Float] { (0..<cols).map { self[r, $0] } }
    func rowDouble(_ r: Int) -> [Double] { (0..<cols).map { Double(self[r, $0]) } }
}

/// Deterministic test values from the project's own counter-based stream (any fixed source
/// would do; the tests never depend on the particular numbers).
struct TestValues {
    let stream: RandomStream
    private var counter: UInt64 = 0

    init(seed: UInt64, key: UInt64 = 0) {
        stream = RandomStream(seed: seed, purpose: .sampling, 0xC0FFEE, key)
    }

    mutating func uniform(_ low: Double, _ high: Double) -> Double {
        defer { counter += 1 }
        return low + (high - low) * stream.uniform(counter)
    }

    mutating func floats(_ n: Int, _ low: Double, _ high: Double) -> [Float] {
        (0..<n).map { _ in Float(uniform(low, high)) }
    }

    mutating func bits(_ n: Int, probabilityOfOne p: Double = 0.5) -> [Float] {
        (0..<n).map { _ in uniform(0, 1) < p ? 1 : 0 }
    }
}

/// Fills every parameter (kernels, biases, π logits) with uniform values in ±scale, drawn in
/// layout order without the gaps (zeros there): the values do not depend on the alignment.
func randomParameters(model: VAEModel, seed: UInt64, scale: Double = 0.8) -> FloatBuffer {
    var values = TestValues(seed: seed, key: 1)
    return FloatBuffer(model.layout.unpacked(values.floats(model.layout.parameterCount, -scale, scale)))
}

/// The indices of the flat vector that hold parameters (every tensor's, in order; no gaps).
func parameterIndices(_ model: VAEModel) -> [Int] {
    model.layout.tensors.flatMap(\.range)
}

/// The decoder's parameters (and any π logits) occupy the tail of the layout.
func isDecoderParameter(_ model: VAEModel, _ index: Int) -> Bool {
    model.decoder.kernels.contains { $0.offset <= index && index < $0.offset + $0.count }
        || model.decoder.biases.contains { $0.offset <= index && index < $0.offset + $0.count }
}

func isEncoderParameter(_ model: VAEModel, _ index: Int) -> Bool {
    model.encoder.kernels.contains { $0.offset <= index && index < $0.offset + $0.count }
        || model.encoder.biases.contains { $0.offset <= index && index < $0.offset + $0.count }
}

/// Indices 0..<count, or a deterministic random subset of `limit` of them.
func coordinateSubset(_ indices: [Int], limit: Int, seed: UInt64) -> [Int] {
    if indices.count <= limit { return indices }
    let stream = RandomStream(seed: seed, purpose: .sampling, 0x5E7)
    // Selection by sorting on independent random keys (does not rely on permutation()).
    let keyed = indices.enumerated().map { (stream.bits(UInt64($0.offset)), $0.element) }
    return keyed.sorted { $0.0 < $1.0 }.prefix(limit).map { $0.1 }.sorted()
}

/// Central difference of `f` at `x` along coordinate `i` in Float64.
func centralDifference(_ f: ([Double]) -> Double, at x: [Double], index i: Int, step h: Double) -> Double {
    var plus = x, minus = x
    plus[i] += h
    minus[i] -= h
    return (f(plus) - f(minus)) / (2 * h)
}

/// A gradient comparison: records the worst relative discrepancy |a − b| / max(1, |b|).
struct GradientComparison: CustomStringConvertible {
    var worst = 0.0
    var worstIndex = -1
    var worstAnalytic = 0.0
    var worstReference = 0.0
    var checked = 0

    mutating func add(index: Int, analytic: Double, reference: Double) {
        checked += 1
        let e = abs(analytic - reference) / max(1, abs(reference))
        if e > worst || e.isNaN {
            worst = e
            worstIndex = index
            worstAnalytic = analytic
            worstReference = reference
        }
    }

    /// Prints the comparison when BSVI_TEST_VERBOSE is set (to see the margins).
    func report(_ label: String) {
        if ProcessInfo.processInfo.environment["BSVI_TEST_VERBOSE"] != nil { print("[gradient] \(label): \(self)") }
    }

    var description: String {
        "worst relative error \(worst) at index \(worstIndex): analytic \(worstAnalytic) vs finite difference \(worstReference) (\(checked) coordinates)"
    }
}

// MARK: - Float64 reference of the model (DESIGN.md §2)

enum Reference {
    static let logTwoPi = log(2 * Double.pi)

    static func activation(_ a: Activation, _ v: Double) -> Double {
        switch a {
        case .tanh: return Foundation.tanh(v)
        case .relu: return max(v, 0)
        case .softplus: return max(v, 0) + log1p(exp(-abs(v)))
        }
    }

    static func softplus(_ v: Double) -> Double { max(v, 0) + log1p(exp(-abs(v))) }

    static func sigmoid(_ v: Double) -> Double { v >= 0 ? 1 / (1 + exp(-v)) : exp(v) / (1 + exp(v)) }

    /// y = f(…f(x·W₀ + b₀)…)·W_L + b_L for one row, reading W and b from `params` with the
    /// layout kernel [in, out] row-major. `onPreActivations` sees every hidden layer's pre-activations.
    static func forward(_ mlp: MLP, params p: [Double], input: [Double],
                        onPreActivations: (([Double]) -> Void)? = nil) -> [Double] {
        var x = input
        for l in 0..<(mlp.sizes.count - 1) {
            let nIn = mlp.sizes[l], nOut = mlp.sizes[l + 1]
            let k = mlp.kernels[l].offset, b = mlp.biases[l].offset
            var y = [Double](repeating: 0, count: nOut)
            for o in 0..<nOut {
                var s = p[b + o]
                for i in 0..<nIn { s += x[i] * p[k + i * nOut + o] }
                y[o] = s
            }
            if l < mlp.sizes.count - 2 {
                onPreActivations?(y)
                y = y.map { activation(mlp.activation, $0) }
            }
            x = y
        }
        return x
    }

    /// Σ_d x_d a_d − softplus(a_d).
    static func bernoulliLogLikelihood(x: [Double], logits: [Double]) -> Double {
        var s = 0.0
        for d in 0..<x.count { s += x[d] * logits[d] - softplus(logits[d]) }
        return s
    }

    static func logLikelihood(model: VAEModel, params: [Double], x: [Double], z: [Double]) -> Double {
        bernoulliLogLikelihood(x: x, logits: forward(model.decoder, params: params, input: z))
    }

    /// ½ Σ (exp ℓ + μ² − 1 − ℓ) for λ = (μ, ℓ).
    static func kl(_ lambda: [Double]) -> Double {
        let d = lambda.count / 2
        var s = 0.0
        for c in 0..<d { s += exp(lambda[d + c]) + lambda[c] * lambda[c] - 1 - lambda[d + c] }
        return 0.5 * s
    }

    static func reparameterize(_ lambda: [Double], _ eps: [Double]) -> [Double] {
        let d = eps.count
        return (0..<d).map { lambda[$0] + exp(0.5 * lambda[d + $0]) * eps[$0] }
    }

    /// The one-sample ELBO with an analytic KL: log p(x | μ + exp(ℓ/2) ⊙ ε) − KL(q(z; λ) ‖ p(z)).
    static func elbo(model: VAEModel, params: [Double], x: [Double], lambda: [Double], eps: [Double]) -> Double {
        logLikelihood(model: model, params: params, x: x, z: reparameterize(lambda, eps)) - kl(lambda)
    }

    /// log w = log p(x|z) + log N(z; 0, I) − log N(z; μ, exp ℓ) with z = μ + exp(ℓ/2) ε.
    static func logWeight(model: VAEModel, params: [Double], x: [Double], lambda: [Double], eps: [Double]) -> Double {
        let d = eps.count
        let z = reparameterize(lambda, eps)
        var prior = 0.0, proposal = 0.0
        for c in 0..<d {
            prior += -0.5 * (z[c] * z[c] + logTwoPi)
            let sd = exp(0.5 * lambda[d + c])
            let u = (z[c] - lambda[c]) / sd
            proposal += -0.5 * (u * u + lambda[d + c] + logTwoPi)
        }
        return logLikelihood(model: model, params: params, x: x, z: z) + prior - proposal
    }

    /// log N(z; 0, I).
    static func logStandardNormal(_ z: [Double]) -> Double {
        z.reduce(0) { $0 - 0.5 * ($1 * $1 + logTwoPi) }
    }

    static func logSumExp(_ v: [Double]) -> Double {
        let m = v.max() ?? -.infinity
        if !m.isFinite { return m }
        return m + log(v.reduce(0) { $0 + exp($1 - m) })
    }

    /// log p(x) = log ∫ p(x|z) N(z; 0, 1) dz for a one-dimensional latent, by the trapezoid
    /// rule on [−range, range] with `points` nodes, summed in log space.
    static func exactLogMarginal(model: VAEModel, params: [Double], x: [Double],
                                 range: Double = 10, points: Int = 20001) -> Double {
        precondition(model.shape.latentDim == 1)
        let h = 2 * range / Double(points - 1)
        var terms = [Double]()
        terms.reserveCapacity(points)
        for i in 0..<points {
            let z = -range + Double(i) * h
            let weight = (i == 0 || i == points - 1) ? 0.5 * h : h
            terms.append(log(weight) + logLikelihood(model: model, params: params, x: x, z: [z])
                         + logStandardNormal([z]))
        }
        return logSumExp(terms)
    }
}

extension FloatBuffer {
    var doubles: [Double] { array.map(Double.init) }
}

/// A small structured binary data set: each example copies one of `prototypes` random
/// patterns with each pixel flipped with probability `flip`.
func syntheticBinaryData(examples: Int, dimension: Int, prototypes: Int = 3, flip: Double = 0.1,
                         seed: UInt64) -> HostMatrix {
    var values = TestValues(seed: seed, key: 77)
    let patterns = (0..<prototypes).map { _ in values.bits(dimension) }
    let data = HostMatrix(rows: examples, cols: dimension)
    for n in 0..<examples {
        let pattern = patterns[n % prototypes]
        for c in 0..<dimension {
            let flipped = values.uniform(0, 1) < flip
            data[n, c] = flipped ? 1 - pattern[c] : pattern[c]
        }
    }
    return data
}

/// A model with a one-dimensional latent (input 4, hidden [3], latent 1), whose exact log p(x)
/// is available by quadrature, and all 16 binary inputs as its data set. The encoder's
/// log-variance output is pinned near 0.7 (σ² ≈ 2 > ½): with a bounded likelihood the
/// importance weights w = p(x|z) N(z; 0, 1) / q(z) then have finite variance, so standard
/// errors estimated from samples are meaningful. With `piCount` > 0 the layout ends in that many
/// bsvi π logits (bsvi with learned π), drawn last, so the other parameters do not change.
final class LatentOneModel {
    let model: VAEModel
    let params: FloatBuffer
    let x: HostMatrix
    let ids: [Int]

    init(seed: UInt64, activation: Activation = .tanh, piCount: Int = 0) {
        model = VAEModel(shape: ModelShape(inputDim: 4, latentDim: 1, hiddenDims: [3], activation: activation), piCount: piCount)
        params = randomParameters(model: model, seed: seed, scale: 1.2)
        let lastKernel = model.encoder.kernels[model.encoder.layerCount - 1]
        let lastBias = model.encoder.biases[model.encoder.layerCount - 1]
        for r in 0..<lastKernel.shape[0] { params[lastKernel.offset + r * 2 + 1] *= 0.1 }
        params[lastBias.offset + 1] = 0.7
        x = HostMatrix(rows: 16, cols: 4, values: (0..<16).flatMap { n in (0..<4).map { Float((n >> $0) & 1) } })
        ids = Array(100..<116)
    }

    /// λ₀ = encoder(x) for every example (16 × 2).
    func encoderLambda() -> HostMatrix {
        let ws = MLPWorkspace(mlp: model.encoder, capacity: x.rows)
        ws.forward(x.matrix, rows: 0..<x.rows, params: params)
        let lambda = HostMatrix(rows: x.rows, cols: 2)
        lambda.matrix.copy(from: ws.output)
        return lambda
    }

    func exactLogMarginal(_ i: Int) -> Double {
        Reference.exactLogMarginal(model: model, params: params.doubles, x: x.rowDouble(i))
    }

    /// Float64 importance weights from q(z; λ) with independent noise, to estimate the
    /// relative variance var(w)/E[w]² that sets the standard error of log p̂.
    func relativeWeightVariance(example i: Int, lambda: [Double], samples: Int, seed: UInt64) -> Double {
        let stream = RandomStream(seed: seed, purpose: .sampling, 0xA11CE, UInt64(i))
        var eps = [Float](repeating: 0, count: samples)
        eps.withUnsafeMutableBufferPointer { stream.fillNormals($0.baseAddress!, count: samples) }
        let p = params.doubles
        let logW = eps.map { Reference.logWeight(model: model, params: p, x: x.rowDouble(i), lambda: lambda, eps: [Double($0)]) }
        let m = logW.max()!
        let w = logW.map { exp($0 - m) }
        let mean = w.reduce(0, +) / Double(samples)
        let variance = w.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(samples - 1)
        return variance / (mean * mean)
    }
}

/// FNV-1a over the bit patterns of `values` (one 32-bit word a step): the golden tests' fingerprint.
func fingerprint(_ values: [Float]) -> UInt64 {
    values.reduce(0xcbf2_9ce4_8422_2325) { ($0 ^ UInt64($1.bitPattern)) &* 0x100_0000_01b3 }
}

/// Runs `body` with `path`'s kernels on this thread (the kernel path is chosen per thread), then
/// restores the thread's previous path. Only for paths in `KernelPath.supported`.
func onPath<T>(_ path: KernelPath, _ body: () throws -> T) rethrows -> T {
    let previous = KernelPath.active
    try! KernelPath.select(path)
    defer { try! KernelPath.select(previous) }
    return try body()
}
