/// Upper bounds on sizes read from file headers, HDF5 attributes and flags, and overflow-checked
/// arithmetic on them. A header is a claim, not a fact: multiplying two hostile 32-bit sizes
/// overflows Int (a trap, i.e. a crash signal), and allocating what a header promises before
/// any data is read can ask for terabytes (an abort). Every size that decides an allocation or
/// a product is checked here first, so such files fail with a StorageError instead.
public enum SizeLimits {
    /// Values in one row (pixels per image): 2^24, i.e. a 4096×4096 image. Far beyond any
    /// dataset this trainer is meant for (MNIST rows hold 784), yet small enough that a chunk
    /// buffer of one row (2^24 Float64s, 128 MiB) is always affordable.
    public static let maxRowWidth = 1 << 24

    /// The product of `factors`, or nil when it overflows Int or a factor is negative.
    public static func product(_ factors: [Int]) -> Int? {
        var result = 1
        for f in factors {
            guard f >= 0 else { return nil }
            let (p, overflow) = result.multipliedReportingOverflow(by: f)
            if overflow { return nil }
            result = p
        }
        return result
    }
}
