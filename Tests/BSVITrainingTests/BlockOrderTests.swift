@testable import BSVITraining
import Testing

/// `bench --methods`' order of the blocks in a round: rotations, forward then backward.
@Suite("bench --methods: the order of a round's blocks")
struct BlockOrderTests {
    @Test("over 2n rounds every method comes first, and before every other, equally often; for three methods each of the six orders once",
          arguments: [2, 3, 4, 5])
    func balanced(methods n: Int) {
        let orders = (0..<(2 * n)).map { blockOrder(round: $0, methods: n) }
        #expect(orders.allSatisfy { $0.sorted() == Array(0..<n) }, "\(orders)")
        for i in 0..<n {
            #expect(orders.filter { $0[0] == i }.count == 2, "method \(i) first: \(orders)")
            for j in 0..<n where j != i {
                let before = orders.filter { $0.firstIndex(of: i)! < $0.firstIndex(of: j)! }.count
                #expect(before == n, "\(i) before \(j) in \(before) of \(2 * n) rounds: \(orders)")
            }
        }
        if n == 3 { #expect(Set(orders).count == 6, "\(orders)") }
        // The first place follows the round: method r mod n leads round r.
        #expect((0..<(4 * n)).allSatisfy { blockOrder(round: $0, methods: n)[0] == $0 % n })
    }
}
