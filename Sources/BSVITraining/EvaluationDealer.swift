/// How an evaluation deals the split's rows to the ranks: in rounds of `roundRows`, each round
/// cut into one contiguous part per rank, sized so that the ranks are expected to finish the
/// round together — a rank on a slower core, or one still busy with its last part, gets fewer
/// rows. (On the shared VM one core ran 5–15 % slower than the other for a whole run; with
/// fixed halves the faster rank idled at the end.) Every rank deals from the same gathered
/// numbers, so all agree on every part. Which rank evaluates a row does not change its
/// numbers: each example has its own random streams.
struct EvaluationDealer {
    let total: Int
    let ranks: Int
    let roundRows: Int
    /// The first row of the next round.
    private(set) var next = 0
    /// The parts of the last round dealt.
    private var lastParts: [Int]

    init(total: Int, ranks: Int, roundRows: Int) {
        precondition(total >= 0 && ranks > 0 && roundRows > 0)
        self.total = total
        self.ranks = ranks
        self.roundRows = roundRows
        lastParts = Array(repeating: 0, count: ranks)
    }

    var finished: Bool { next >= total }

    /// The next round's rows, one contiguous range per rank in rank order. Rank r works at
    /// `speeds[r]` rows per second (positive) and started its last part at `lastStarts[r]`
    /// seconds (a clock the ranks share: each counts from the same barrier on its own monotonic
    /// clock, as wall clocks differ between hosts; nil before any is known): it is free at
    /// lastStarts[r] + lastParts[r] / speeds[r], and the round's rows go where they let the
    /// ranks finish soonest together.
    mutating func deal(speeds: [Double], lastStarts: [Double]?) -> [Range<Int>] {
        precondition(speeds.count == ranks && (lastStarts?.count ?? ranks) == ranks)
        let count = min(roundRows, total - next)
        let free = lastStarts.map { starts in (0..<ranks).map { starts[$0] + Double(lastParts[$0]) / speeds[$0] } }
        let earliest = free?.min() ?? 0
        // The rows each rank could have done by the time the last one is free.
        let backlog = (0..<ranks).map { r in free.map { ($0[r] - earliest) * speeds[r] } ?? 0 }
        // Finish time F (in rows at unit speed) with Σ_r max(0, F·speed_r − backlog_r) = count,
        // by water-filling: a rank whose backlog alone outlasts F gets nothing.
        var active = Array(0..<ranks)
        var finish = 0.0
        while true {
            finish = (Double(count) + active.map { backlog[$0] }.reduce(0, +)) / active.map { speeds[$0] }.reduce(0, +)
            let stillActive = active.filter { finish * speeds[$0] > backlog[$0] }
            if stillActive.count == active.count || stillActive.isEmpty { break }
            active = stillActive
        }
        let weights = (0..<ranks).map { active.contains($0) ? max(0, finish * speeds[$0] - backlog[$0]) : 0 }
        lastParts = Self.parts(of: count, weights: weights.reduce(0, +) > 0 ? weights : speeds)
        var ranges: [Range<Int>] = []
        for part in lastParts {
            ranges.append(next..<(next + part))
            next += part
        }
        return ranges
    }

    /// `count` cut in proportion to `weights` (non-negative, not all zero): each part the
    /// floor of its quota, the rows left over to the largest remainders (ties to the lower rank).
    static func parts(of count: Int, weights: [Double]) -> [Int] {
        let sum = weights.reduce(0, +)
        let quotas = weights.map { Double(count) * $0 / sum }
        var parts = quotas.map { Int($0.rounded(.down)) }
        let byRemainder = quotas.indices.sorted { (quotas[$0] - Double(parts[$0]), $1) > (quotas[$1] - Double(parts[$1]), $0) }
        for i in byRemainder.prefix(count - parts.reduce(0, +)) { parts[i] += 1 }
        return parts
    }
}
