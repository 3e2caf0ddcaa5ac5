/// The sums over examples every part of a run reports — a training step, an epoch, an evaluation,
/// metrics.csv and summary.json — in one type with one fixed packing into the allreduce buffers.
public struct ObjectiveSums: Sendable, Equatable, Codable {
    public var examples = 0
    /// Training: the method's objective (vae ELBO, iwae bound, svi log w_k, bsvi log Σ π_j w_j).
    /// Evaluation: the K-sample importance-sampled bound log p̂(x) (→ log p(x) as K grows).
    public var bound = 0.0
    /// ELBO (analytic KL) at the encoder's λ₀.
    public var elboInitial = 0.0
    /// ELBO at the refined λ_k (svi, bsvi, and evaluation); equal to the λ₀ value for vae/iwae training.
    public var elboRefined = 0.0

    public init() {}

    public init(examples: Int, bound: Double, elboInitial: Double, elboRefined: Double) {
        self.examples = examples
        self.bound = bound
        self.elboInitial = elboInitial
        self.elboRefined = elboRefined
    }

    public mutating func add(_ other: ObjectiveSums) {
        examples += other.examples
        bound += other.bound
        elboInitial += other.elboInitial
        elboRefined += other.elboRefined
    }

    /// The mean of one sum per example (0 for no examples).
    public func mean(_ sum: KeyPath<ObjectiveSums, Double>) -> Double { self[keyPath: sum] / Double(max(examples, 1)) }

    /// The values in their fixed packing order: examples, bound, ELBO(λ₀), ELBO(λ_k).
    public static let packedCount = 4

    public func pack<T: BinaryFloatingPoint>(into p: UnsafeMutablePointer<T>) {
        p[0] = T(examples)
        p[1] = T(bound)
        p[2] = T(elboInitial)
        p[3] = T(elboRefined)
    }

    public init<T: BinaryFloatingPoint>(unpacking p: UnsafePointer<T>) {
        self.init(examples: Int(Double(p[0]).rounded()), bound: Double(p[1]), elboInitial: Double(p[2]), elboRefined: Double(p[3]))
    }
}
