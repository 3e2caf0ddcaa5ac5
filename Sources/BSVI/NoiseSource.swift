/// Where the reparameterization noise of one example comes from: a counter-based stream keyed
/// by (seed, purpose, context, example id). Draw `slot` of an example is always the same
/// numbers, whichever rank or batch position the example lands on; that is what makes a
/// P-rank gradient equal the single-process gradient over the same examples.
public struct NoiseSource: Sendable {
    public let seed: UInt64
    public let purpose: RandomPurpose
    /// Training: the epoch (every example is seen once per epoch). Evaluation: 0.
    public let context: UInt64

    public init(seed: UInt64, purpose: RandomPurpose, context: UInt64) {
        self.seed = seed
        self.purpose = purpose
        self.context = context
    }

    public func stream(example: Int) -> RandomStream {
        RandomStream(seed: seed, purpose: purpose, context, UInt64(example))
    }
}
