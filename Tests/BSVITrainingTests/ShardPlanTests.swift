import BSVI
import BSVITraining
import Testing

@Suite("Sharding and step protocol")
struct ShardPlanTests {
    @Test("global batch t of an epoch is the same rows for every P; rank slices are contiguous and differ by at most one row",
          arguments: [(50_000, 100), (50_003, 100), (96, 16), (96, 10), (1000, 30)])
    func globalOrder(rows: Int, batch: Int) throws {
        for epoch in [0, 1] {
            let permutation = ShardPlan.epochPermutation(totalRows: rows, seed: 3, epoch: epoch)
            #expect(permutation.sorted() == Array(0..<rows))
            for ranks in [1, 2, 3, 4, 7, 8] where ranks <= batch {
                let plans = (0..<ranks).map { ShardPlan(totalRows: rows, worldSize: ranks, rank: $0, globalBatch: batch) }
                let perRank = try plans.map { p -> [Int] in
                    try p.validate(dataPath: "x.h5")
                    return p.epochRows(seed: 3, epoch: epoch)
                }
                #expect(Set(plans.map(\.stepsPerEpoch)) == [rows / batch])
                let sizes = plans.map(\.localBatch)
                #expect(sizes.reduce(0, +) == batch && sizes.max()! - sizes.min()! <= 1 && sizes == sizes.sorted(by: >))
                for t in 0..<(rows / batch) {
                    // Rank 0's slice, then rank 1's, …: exactly positions [tB, (t+1)B) of the permutation.
                    let step = plans.indices.flatMap { r in perRank[r][(t * sizes[r])..<((t + 1) * sizes[r])] }
                    #expect(step == Array(permutation[(t * batch)..<((t + 1) * batch)]), "P=\(ranks), epoch \(epoch), step \(t)")
                }
                // Each rank holds about N/P rows, each row at most once, and no two ranks share one.
                #expect(perRank.map(\.count) == plans.map(\.rowsPerEpoch))
                #expect(Set(perRank.joined()).count == perRank.joined().count)
                #expect(perRank.joined().count == rows - plans[0].droppedRowsPerEpoch)
            }
        }
    }

    @Test("every epoch has its own order, and the rows of the dropped partial batch change from epoch to epoch")
    func epochsDiffer() {
        let p = ShardPlan(totalRows: 96, worldSize: 1, rank: 0, globalBatch: 10)
        #expect(p.droppedRowsPerEpoch == 6)
        let orders = (0..<4).map { p.epochRows(seed: 3, epoch: $0) }
        #expect(Set(orders).count == 4)
        let dropped = orders.map { Set(0..<96).subtracting($0) }
        #expect(dropped.allSatisfy { $0.count == 6 } && Set(dropped).count == 4)
        // The seed changes the order too.
        #expect(p.epochRows(seed: 4, epoch: 0) != orders[0])
    }

    @Test func rejectsBatchSmallerThanRanksAndTooFewRows() throws {
        // Any batch of at least P rows splits, divisible or not.
        try ShardPlan(totalRows: 1000, worldSize: 3, rank: 0, globalBatch: 100).validate(dataPath: "d.h5")
        try ShardPlan(totalRows: 1000, worldSize: 8, rank: 7, globalBatch: 8).validate(dataPath: "d.h5")
        do {
            try ShardPlan(totalRows: 1000, worldSize: 8, rank: 0, globalBatch: 6).validate(dataPath: "d.h5")
            Issue.record("expected an error")
        } catch {
            #expect("\(error)".contains("--batch-size") && "\(error)".contains("6 is smaller than the 8 ranks"), "\(error)")
            #expect("\(error)".contains("use --batch-size 8 or more, or run on at most 6 ranks"), "\(error)")
        }
        // A resumed run keeps its batch size: only the ranks can change (a new --batch-size is refused).
        #expect(throws: (any Error).self) { try ShardPlan.checkBatchSplits(6, across: 8, resumes: true) }
        do { try ShardPlan.checkBatchSplits(6, across: 8, resumes: true) } catch {
            #expect("\(error)".contains("run on at most 6 ranks (a resumed run keeps its batch size; a new run may use --batch-size 8 or more)"),
                    "\(error)")
        }
        do {
            try ShardPlan(totalRows: 10, worldSize: 4, rank: 0, globalBatch: 16).validate(dataPath: "d.h5")
            Issue.record("expected an error")
        } catch {
            #expect("\(error)".contains("d.h5") && "\(error)".contains("10 rows"))
        }
    }

    @Test("the start-up check's rows cover the split exactly once for any world size", arguments: [1, 2, 3, 4, 7, 8])
    func startupCheckRows(ranks: Int) {
        for n in [1, 5, 20, 10_000] where n >= 1 {
            var all: [Int] = []
            for r in 0..<ranks { all += Array(ShardPlan.startupCheckRows(count: n, worldSize: ranks, rank: r)) }
            #expect(all == Array(0..<n))
        }
    }

    @Test func exchangeFlagsNonFiniteGradients() {
        let e = StepExchange(parameterCount: 5)
        var stats = ObjectiveSums()
        stats.bound = -10
        stats.examples = 2
        e.finishLocal(stats, stopRequested: false)
        #expect(e[.nonFiniteRanks] == 0 && e[.stopRequests] == 0 && e.sums == stats)
        e.gradients[3] = .nan
        e.finishLocal(stats, stopRequested: true)
        #expect(e[.nonFiniteRanks] == 1 && e[.stopRequests] == 1)
        // The next step: the sums and flags start again from zero; the gradient part is left for
        // the objective to overwrite (here by hand).
        e.resetSumsAndFlags()
        #expect(e[.nonFiniteRanks] == 0 && e[.stopRequests] == 0 && e.sums == ObjectiveSums())
        #expect(e.gradients[3].isNaN, "the reset must not spend a pass on the gradient part")
        e.gradients[3] = 0
        stats.bound = -.infinity
        e.finishLocal(stats, stopRequested: false)
        #expect(e[.nonFiniteRanks] == 1)
        // Finite as a Double, infinite in the Float32 buffer that carries it.
        e.resetSumsAndFlags()
        stats.bound = -1e39
        e.finishLocal(stats, stopRequested: false)
        #expect(e[.nonFiniteRanks] == 1 && e.sums.bound == -.infinity)
    }

    @Test("finite parts whose sum overflows are caught after the allreduce; smaller ones pass on their bound")
    func exchangeCatchesOverflowInTheSum() {
        let e = StepExchange(parameterCount: 40)
        var stats = ObjectiveSums()
        stats.bound = -1
        stats.examples = 1
        for (value, overflows) in [(Float(3e38), true), (-1e36, false)] {
            e.buffer.zero()
            e.gradients[3] = -2
            e.gradients[17] = value
            e.finishLocal(stats, stopRequested: false)
            #expect(e[.nonFiniteRanks] == 0 && e[.gradientMagnitudeSum] == abs(value))
            // What an allreduce over two ranks with this same part leaves.
            for i in 0..<e.buffer.count { e.buffer[i] += e.buffer[i] }
            #expect(e.gradients[17].isFinite == !overflows)
            #expect(e.reducedGradientIsFinite() == !overflows, "\(value) on two ranks")
        }
    }

    @Test("the parameter checksum sees every bit of every tensor, and is the packed vector's: the gaps are left out")
    func checksumSeesEveryBit() {
        var layout = ParameterLayout()
        layout.add("w", shape: [3])
        layout.add("b", shape: [2])
        #expect(layout.vectorLength == 18)
        let values = FloatBuffer(layout.unpacked([1, 2, 3, 4, 5]))
        let same = FloatBuffer(values.array)
        #expect(parameterChecksum(values, layout: layout) == parameterChecksum(same, layout: layout))
        // Packed end to end (a layout without gaps) the same five values give the same checksum.
        var packedLayout = ParameterLayout()
        packedLayout.add("all", shape: [5])
        #expect(parameterChecksum(FloatBuffer([1, 2, 3, 4, 5]), layout: packedLayout) == parameterChecksum(values, layout: layout))
        for i in [0, 2, 16, 17] {
            let flipped = FloatBuffer(values.array)
            flipped[i] = Float(bitPattern: flipped[i].bitPattern ^ 1)
            #expect(parameterChecksum(flipped, layout: layout) != parameterChecksum(values, layout: layout), "bit flipped at \(i)")
        }
        let gap = FloatBuffer(values.array)
        gap[5] = 7
        #expect(parameterChecksum(gap, layout: layout) == parameterChecksum(values, layout: layout))
    }

}
