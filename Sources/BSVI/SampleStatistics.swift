import Foundation

/// Summaries of per-example values over a split, in Float64. The functions read the values in
/// the order given, so the same values give bit-identical summaries on every rank.
public enum SampleStatistics {
    /// The arithmetic mean (0 for no values).
    public static func mean(_ x: [Double]) -> Double {
        x.isEmpty ? 0 : x.reduce(0, +) / Double(x.count)
    }

    /// The standard error of the mean: the sample standard deviation (n − 1 in the denominator)
    /// over √n. Two passes (mean first), so a large common offset such as −240 nats does not
    /// cancel digits. NaN for fewer than two values, as numpy's `std(ddof=1)`: no spread can be
    /// estimated, and a 0 would read as a perfectly precise mean.
    public static func standardError(_ x: [Double]) -> Double {
        guard x.count > 1 else { return .nan }
        let m = mean(x)
        let squares = x.reduce(0) { $0 + ($1 - m) * ($1 - m) }
        return (squares / Double(x.count - 1) / Double(x.count)).squareRoot()
    }

    /// The `p`-th percentile (0…100) with linear interpolation between the order statistics at
    /// rank (n − 1)·p/100, numpy.percentile's default, so users can reproduce it from the
    /// per-example file. 0 for no values; NaN if any value is NaN, as numpy gives (sorting with
    /// NaN present is no order at all: the result depended on where the NaN stood).
    public static func percentile(_ x: [Double], _ p: Double) -> Double {
        precondition(p >= 0 && p <= 100, "percentile \(p) outside 0…100")
        guard !x.isEmpty else { return 0 }
        if x.contains(where: \.isNaN) { return .nan }
        let sorted = x.sorted()
        let position = Double(sorted.count - 1) * p / 100
        let below = Int(position.rounded(.down))
        let above = min(below + 1, sorted.count - 1)
        return sorted[below] + (position - Double(below)) * (sorted[above] - sorted[below])
    }

    /// The fraction of pairs where `a` is strictly greater than `b`. NaN if any value is NaN: a
    /// pair that cannot be ordered is neither a win nor a loss, and counting it as a loss (as
    /// `>` alone would) reported "A better on 0 %" when every difference was NaN.
    public static func fractionGreater(_ a: [Double], _ b: [Double]) -> Double {
        precondition(a.count == b.count)
        guard !a.isEmpty else { return 0 }
        if zip(a, b).contains(where: { $0.isNaN || $1.isNaN }) { return .nan }
        return Double(zip(a, b).filter { $0 > $1 }.count) / Double(a.count)
    }
}
