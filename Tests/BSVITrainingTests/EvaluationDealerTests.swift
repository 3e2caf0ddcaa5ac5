@testable import BSVITraining
import Testing

@Suite("Evaluation rows dealt by speed")
struct EvaluationDealerTests {
    @Test("parts are proportional to the weights, sum to the count, and give leftovers to the largest remainders")
    func parts() {
        #expect(EvaluationDealer.parts(of: 16, weights: [1, 1]) == [8, 8])
        #expect(EvaluationDealer.parts(of: 15, weights: [2, 1]) == [10, 5])
        #expect(EvaluationDealer.parts(of: 7, weights: [1, 1, 1]) == [3, 2, 2], "a tie goes to the lower rank")
        #expect(EvaluationDealer.parts(of: 10, weights: [1, 3]) == [3, 7], "quotas 2.5 and 7.5: the row left over goes to rank 0")
        #expect(EvaluationDealer.parts(of: 16, weights: [0.9, 1.1]) == [7, 9])
        #expect(EvaluationDealer.parts(of: 3, weights: [0, 1]) == [0, 3])
        for count in 0..<40 {
            for weights in [[1.0, 2.0], [0.3, 0.3, 0.4], [5, 1, 1, 1]] {
                let parts = EvaluationDealer.parts(of: count, weights: weights)
                #expect(parts.reduce(0, +) == count && parts.allSatisfy { $0 >= 0 })
                let total = weights.reduce(0, +)
                for (p, w) in zip(parts, weights) { #expect(abs(Double(p) - Double(count) * w / total) < 1) }
            }
        }
    }

    @Test("rounds cover every row once, in order, each rank's part contiguous; the last round is short")
    func rounds() {
        var dealer = EvaluationDealer(total: 37, ranks: 2, roundRows: 16)
        var covered: [Int] = []
        var rounds = 0
        while !dealer.finished {
            let ranges = dealer.deal(speeds: rounds == 0 ? [1, 1] : [3, 1], lastStarts: rounds == 0 ? nil : [0, 0])
            #expect(ranges.count == 2 && ranges[0].upperBound == ranges[1].lowerBound)
            covered += ranges.flatMap { Array($0) }
            rounds += 1
        }
        #expect(covered == Array(0..<37))
        #expect(rounds == 3)
        #expect(EvaluationDealer(total: 0, ranks: 3, roundRows: 24).finished)
    }

    @Test("a faster rank gets more rows; a rank still busy with its last part gets fewer; one far behind gets none")
    func sharesFollowSpeedAndLag() {
        /// A dealer whose first round gave each of two ranks 8 rows.
        func dealtEightEach() -> EvaluationDealer {
            var dealer = EvaluationDealer(total: 1000, ranks: 2, roundRows: 16)
            #expect(dealer.deal(speeds: [1, 1], lastStarts: nil).map(\.count) == [8, 8])
            return dealer
        }
        // Equal speeds, both started their 8 rows 4 s apart: rank 1 is free 4 s later, so
        // F = (16 + 4)/2 = 10 rows at unit speed → rank 0 gets 10, rank 1 gets 6.
        var lagging = dealtEightEach()
        #expect(lagging.deal(speeds: [1, 1], lastStarts: [0, 4]).map(\.count) == [10, 6])
        // Same start, rank 0 three times faster (free at 8/3 s, rank 1 at 8 s; rank 1's backlog
        // 16/3 rows): F = (16 + 16/3)/4 = 16/3, so rank 0 alone takes the round.
        var unequal = dealtEightEach()
        #expect(unequal.deal(speeds: [3, 1], lastStarts: [0, 0]).map(\.count) == [16, 0])
        // Rank 1 three times faster and already free before rank 0: it gets most of the round.
        // free 8 s and 8/3 s; rank 0's backlog 16/3 rows at speed 1: F = (16 + 16/3)/4 = 16/3,
        // rank 0 gets 16/3 − 16/3 = 0, rank 1 all 16.
        var fast = dealtEightEach()
        #expect(fast.deal(speeds: [1, 3], lastStarts: [0, 0]).map(\.count) == [0, 16])
        // Rank 0 twice as fast and both free at the same time (8/2 = −3 + 7 = 4 s): 2 : 1.
        var proportional = EvaluationDealer(total: 1000, ranks: 2, roundRows: 15)
        _ = proportional.deal(speeds: [1, 1], lastStarts: nil)  // parts 8 and 7
        #expect(proportional.deal(speeds: [2, 1], lastStarts: [0, -3]).map(\.count) == [10, 5])
        // Equal speeds and starts, equal last parts: the round is cut evenly.
        var even = EvaluationDealer(total: 1000, ranks: 3, roundRows: 24)
        _ = even.deal(speeds: [1, 1, 1], lastStarts: nil)
        #expect(even.deal(speeds: [2, 2, 2], lastStarts: [5, 5, 5]).map(\.count) == [8, 8, 8])
    }
}
