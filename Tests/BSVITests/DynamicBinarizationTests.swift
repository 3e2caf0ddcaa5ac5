import BSVI
import Foundation
import Testing

/// The trainer-side draw of dynamic binarization: a fresh binary image per (seed, epoch,
/// example), pixel d being 1 with probability intensity_d / 255.
@Suite("Dynamic binarization draws")
struct DynamicBinarizationTests {
    /// Every intensity 0…255 once.
    static let intensities = (0...255).map { UInt8($0) }

    static func draw(seed: UInt64 = 1, epoch: Int, example: Int) -> [Float] {
        var out = [Float](repeating: .nan, count: intensities.count)
        intensities.withUnsafeBufferPointer { i in
            out.withUnsafeMutableBufferPointer {
                DynamicBinarization.draw(intensities: i.baseAddress!, width: i.count, seed: seed, epoch: epoch, example: example,
                                         into: $0.baseAddress!)
            }
        }
        return out
    }

    @Test("over 20,000 epochs the mean of each pixel is intensity/255 (within 5 standard errors); 0 and 255 never vary")
    func meanMatchesIntensity() {
        let epochs = 20_000
        var ones = [Int](repeating: 0, count: Self.intensities.count)
        for epoch in 0..<epochs {
            let x = Self.draw(epoch: epoch, example: 12_345)
            for d in 0..<x.count where x[d] == 1 { ones[d] += 1 }
        }
        // Each mean is a binomial proportion: standard error √(p(1−p)/E) ≤ 0.0036 at E = 20,000.
        // A 5σ bound fails by chance with probability 5.7e-7 per pixel, 1.5e-4 for all 256.
        for d in 0..<ones.count {
            let p = Double(Self.intensities[d]) / 255
            let mean = Double(ones[d]) / Double(epochs)
            let bound = 5 * (p * (1 - p) / Double(epochs)).squareRoot()
            #expect(abs(mean - p) <= bound, "intensity \(Self.intensities[d]): mean \(mean) vs \(p) (bound \(bound))")
        }
        #expect(ones[0] == 0 && ones[255] == epochs)
    }

    @Test("a pure function of (seed, epoch, example): the same key repeats the image, another epoch, example or seed changes it")
    func keyedDraws() {
        let base = Self.draw(seed: 1, epoch: 3, example: 7)
        #expect(base.allSatisfy { $0 == 0 || $0 == 1 })
        #expect(Self.draw(seed: 1, epoch: 3, example: 7) == base)
        #expect(Self.draw(seed: 1, epoch: 4, example: 7) != base)
        #expect(Self.draw(seed: 1, epoch: 3, example: 8) != base)
        #expect(Self.draw(seed: 2, epoch: 3, example: 7) != base)
    }

    @Test("consecutive epochs of one example are independent: pixels of intensity 128 agree about half the time")
    func epochsIndependent() {
        let width = 4096
        let half = [UInt8](repeating: 128, count: width)
        func image(_ epoch: Int) -> [Float] {
            var out = [Float](repeating: 0, count: width)
            half.withUnsafeBufferPointer { i in
                out.withUnsafeMutableBufferPointer {
                    DynamicBinarization.draw(intensities: i.baseAddress!, width: width, seed: 9, epoch: epoch, example: 0, into: $0.baseAddress!)
                }
            }
            return out
        }
        let a = image(0), b = image(1)
        let agree = zip(a, b).filter { $0 == $1 }.count
        // p(agree) = p² + (1−p)² ≈ 0.5; standard deviation of the count √(4096·0.25) = 32.
        #expect(abs(agree - width / 2) < 5 * 32, "\(agree) of \(width) pixels agree")
    }

    @Test("the batch form draws each row as the per-example form does, reading rows of a shard by global example id")
    func batchEqualsRows() {
        let width = 5, firstRow = 100
        let shard = (0..<(6 * width)).map { UInt8(($0 * 37) % 256) }
        let examples = [104, 100, 105]
        let x = FloatBuffer(count: examples.count * width)
        shard.withUnsafeBufferPointer {
            DynamicBinarization.draw(batch: examples, from: $0.baseAddress!, firstRow: firstRow, seed: 3, epoch: 2,
                                     into: x.matrix(rows: examples.count, cols: width))
        }
        for (i, example) in examples.enumerated() {
            var row = [Float](repeating: 0, count: width)
            shard.withUnsafeBufferPointer { s in
                row.withUnsafeMutableBufferPointer {
                    DynamicBinarization.draw(intensities: s.baseAddress! + (example - firstRow) * width, width: width, seed: 3, epoch: 2,
                                             example: example, into: $0.baseAddress!)
                }
            }
            #expect(Array(x.array[(i * width)..<((i + 1) * width)]) == row)
        }
    }
}
