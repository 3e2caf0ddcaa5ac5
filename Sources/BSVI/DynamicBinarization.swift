/// Dynamic binarization (used for the IWAE experiments of Burda et al. 2016 and many VAE
/// papers since): every time an example is used for training it is a fresh binary image, pixel
/// d being 1 with probability intensity_d / 255. The draw is a pure function of
/// (seed, epoch, example id, pixel) — counter-based noise, no generator state — so any rank
/// draws example n's image for epoch e without knowing what other ranks drew, a resumed run
/// draws the same images as an uninterrupted one, and results do not depend on the number of ranks.
public enum DynamicBinarization {
    /// Writes the binary image (0/1 as Float) of `example` in `epoch` into `out`, from the
    /// example's `width` stored intensities (0–255). Pixel d is 1 exactly when the top 32 bits
    /// u of counter d of the stream keyed by (seed, epoch, example) satisfy u · 255 < intensity · 2³²,
    /// so P(1) = intensity/255 to within 2⁻³², and intensities 0 and 255 give 0 and 1 always.
    @inline(__always)
    public static func draw(intensities: UnsafePointer<UInt8>, width: Int, seed: UInt64, epoch: Int, example: Int,
                            into out: UnsafeMutablePointer<Float>) {
        let stream = RandomStream(seed: seed, purpose: .dynamicBinarization, UInt64(epoch), UInt64(example))
        for d in 0..<width {
            let u = stream.bits(UInt64(d)) >> 32
            out[d] = u &* 255 < UInt64(intensities[d]) << 32 ? 1 : 0
        }
    }

    /// Draws the images of a batch: row i of `x` becomes example `examples[i]`, whose
    /// intensities are row `examples[i] - firstRow` of `intensities` (a rank's shard, which
    /// starts at global row `firstRow`, `x.cols` bytes a row).
    public static func draw(batch examples: [Int], from intensities: UnsafePointer<UInt8>, firstRow: Int, seed: UInt64,
                            epoch: Int, into x: Matrix) {
        precondition(examples.count == x.rows, "one example id per row of the batch")
        for (i, example) in examples.enumerated() {
            precondition(example >= firstRow, "example \(example) is before the shard's first row \(firstRow)")
            draw(intensities: intensities + (example - firstRow) * x.cols, width: x.cols, seed: seed, epoch: epoch,
                 example: example, into: x.row(i))
        }
    }
}
