import BSVI
import BSVITraining
import Testing

@Suite("Sharding and step protocol")
struct ShardPlanTests {
    @Test("shards are contiguous, disjoint, equal-sized; steps per epoch are equal on every rank",
          arguments: [(50_000, 1, 100), (50_000, 2, 100), (50_003, 4, 100), (96, 8, 16), (1000, 3, 30)])
    func shards(rows: Int, ranks: Int, batch: Int) throws {
        var covered = Set<Int>()
        var steps = Set<Int>()
        for r in 0..<ranks {
            let p = ShardPlan(totalRows: rows, worldSize: ranks, rank: r, globalBatch: batch)
            try p.validate(dataPath: "x.h5")
            #expect(p.shardRows.count == rows / ranks)
            #expect(covered.isDisjoint(with: p.shardRows))
            covered.formUnion(p.shardRows)
            steps.insert(p.stepsPerEpoch)
            #expect(p.localBatch * ranks == batch)
            // The epoch order is a permutation of the shard, different across epochs.
            let o0 = p.epochOrder(seed: 3, epoch: 0), o1 = p.epochOrder(seed: 3, epoch: 1)
            #expect(o0.sorted() == Array(0..<p.shardSize))
            #expect(o0 != o1 || p.shardSize < 3)
        }
        #expect(steps.count == 1)
        #expect(covered == Set(0..<(ranks * (rows / ranks))))
        #expect(rows - covered.count == ShardPlan(totalRows: rows, worldSize: ranks, rank: 0, globalBatch: batch).unusedTailRows)
    }

    @Test func rejectsIndivisibleBatchAndTooFewRows() {
        #expect(throws: TrainingError.self) {
            try ShardPlan(totalRows: 1000, worldSize: 3, rank: 0, globalBatch: 100).validate(dataPath: "d.h5")
        }
        do {
            try ShardPlan(totalRows: 10, worldSize: 4, rank: 0, globalBatch: 16).validate(dataPath: "d.h5")
            Issue.record("expected an error")
        } catch {
            #expect("\(error)".contains("d.h5") && "\(error)".contains("10 rows"))
        }
    }

    @Test("evaluation rows cover the split exactly once for any world size", arguments: [1, 2, 3, 4, 7, 8])
    func evaluationRows(ranks: Int) {
        for n in [1, 5, 20, 10_000] where n >= 1 {
            var all: [Int] = []
            for r in 0..<ranks { all += Array(ShardPlan.evaluationRows(count: n, worldSize: ranks, rank: r)) }
            #expect(all == Array(0..<n))
        }
    }

    @Test func exchangeFlagsNonFiniteGradients() {
        let e = StepExchange(parameterCount: 5)
        var stats = BatchStatistics()
        stats.boundSum = -10
        stats.examples = 2
        e.finishLocal(stats, stopRequested: false)
        #expect(e[.nonFiniteRanks] == 0 && e[.stopRequests] == 0 && e[.examples] == 2 && e[.boundSum] == -10)
        e.gradients[3] = .nan
        e.finishLocal(stats, stopRequested: true)
        #expect(e[.nonFiniteRanks] == 1 && e[.stopRequests] == 1)
        e.reset()
        stats.boundSum = -.infinity
        e.finishLocal(stats, stopRequested: false)
        #expect(e[.nonFiniteRanks] == 1)
    }

    @Test func checksumSeesEveryBit() {
        let a = FloatBuffer([1, 2, 3]), b = FloatBuffer([1, 2, 3])
        #expect(parameterChecksum(a) == parameterChecksum(b))
        b[2] = Float(bitPattern: b[2].bitPattern ^ 1)
        #expect(parameterChecksum(a) != parameterChecksum(b))
    }

    @Test func configurationValidationNamesTheFlag() throws {
        var c = TrainingConfiguration()
        #expect(throws: Never.self) { try c.validate() }
        c.k = -1
        #expect(throws: TrainingError.invalidConfiguration(flag: "--k", problem: "must be ≥ 0, got -1")) { try c.validate() }
        c = TrainingConfiguration()
        c.evalSamples = 0
        #expect((try? c.validate()) == nil)
        // The configuration survives the JSON round trip stored in checkpoints.
        c = TrainingConfiguration()
        c.method = .iwae; c.k = 7; c.hiddenDims = [10, 20]
        #expect(try TrainingConfiguration.fromJSON(c.jsonString()) == c)
    }
}
