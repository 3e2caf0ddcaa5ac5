import BSVI
import BSVIParallel
import Foundation

/// `bench --methods`: several methods' training steps interleaved in one process, to tell how
/// close each comes to its own ceiling under the same state of the host. Separate `bench` runs
/// cannot: a shared VM's busy spells last seconds to minutes and slow one run by up to 2× and not
/// the next, so a per-round difference between two runs swung from −15 to +20 points (2026-12-06,
/// docs/benchmarks.md). Here every round runs one short block of each method, in an order that
/// changes round by round (`blockOrder`), and each round's blocks are compared with one another.
public struct MethodComparisonReport: Codable {
    public struct Entry: Codable {
        public var method: String
        public var k: Int
        /// Timed steps per block: about the multiply-adds of `blockSteps` steps of the heaviest method.
        public var stepsPerBlock: Int
        /// Every step this method ran: its warm-up, and each block's untimed and timed steps.
        public var stepsRun: Int
        /// The rounds in which this method's block came first.
        public var roundsFirst: Int
        public var usefulMultiplyAddsPerExample: Int
        /// The median block's time per step (slowest rank), and what follows from it.
        public var msPerStep: Double
        public var examplesPerS: Double
        public var peakFraction: Double
        public var ceilingFraction: Double
        /// The update's floor in that ceiling (ms; as `BenchmarkReport.updateFloorMs`, measured for
        /// this method's parameters after the last round).
        public var updateFloorMs: Double
        public var fractionOfCeiling: Double
        /// Every round's block, in round order.
        public var fractionOfCeilingByRound: [Double]
        /// Against the first method, round by round (nil for the first method): the rounds in
        /// which this one came at least as close to its ceiling, and the median difference.
        public var roundsAtLeastAsClose: Int?
        public var medianDifferencePoints: Double?
    }

    public var cpuModel: String
    public var cpuFamily: Int
    public var cpuModelNumber: Int
    public var kernelIsa: String
    public var blasCore: String
    public var batchSize: Int
    public var ranks: Int
    public var rounds: Int
    public var dataSource: String
    /// As `BenchmarkReport`'s: the higher of the readings before the first round and after the last.
    public var fmaPeakGflops: Double
    public var fmaPeakReadings: [Double]
    public var fmaPeakIsa: String
    public var methods: [Entry]
}

/// The middle value, the mean of the middle two for an even count (numpy's median).
private func median(_ values: [Double]) -> Double { SampleStatistics.percentile(values, 50) }

extension Benchmark {
    /// One configuration per method (the same model, batch and seed); the first is the one the
    /// others are compared with. Each method warms up for `warmup` steps; then `rounds` rounds run
    /// one block of every method in the order `blockOrder` gives. A block is one untimed step (the
    /// caches as the previous method left them are not this method's) and then its timed steps.
    public static func compareMethods(configs: [RunConfiguration], rounds: Int, blockSteps: Int, warmup: Int,
                                      comm: Communicator) throws -> MethodComparisonReport {
        precondition(configs.count >= 2 && rounds >= 1 && blockSteps >= 1 && warmup >= 0)
        let base = configs[0]
        let (rows, x, source) = try benchmarkRows(config: base, comm: comm)
        defer { withExtendedLifetime(rows) {} }  // x is a view of rows
        let steppers = configs.map { BenchStepper(config: $0, x: x, comm: comm) }
        // Blocks of about the same work, so that each method's block spans about the same stretch
        // of the host's drift: vae's step has a twelfth of bsvi k = 20's multiply-adds.
        let heaviest = steppers.map(\.multiplyAdds).max()!
        let stepsPerBlock = steppers.map { max(1, Int((Double(blockSteps * heaviest) / Double($0.multiplyAdds)).rounded())) }
        for s in steppers { for _ in 0..<warmup { s.step() } }
        let yardstick = PeakYardstick.forWork(kernels: KernelPath.active, blasCore: OpenBLASCore.current)
        let peakBefore = yardstick.gigaflops()
        comm.barrier()
        var secondsPerStep = [[Double]](repeating: [], count: steppers.count)
        var roundsFirst = [Int](repeating: 0, count: steppers.count)
        for round in 0..<rounds {
            let order = blockOrder(round: round, methods: steppers.count)
            roundsFirst[order[0]] += 1
            for i in order {
                steppers[i].step()
                let t0 = DispatchTime.now().uptimeNanoseconds
                for _ in 0..<stepsPerBlock[i] { steppers[i].step() }
                let elapsed = DispatchTime.now().uptimeNanoseconds - t0
                secondsPerStep[i].append(Double(comm.allgather(elapsed).max()!) * 1e-9 / Double(stepsPerBlock[i]))
            }
        }
        let readings = [peakBefore, yardstick.gigaflops()]
        let peak = readings.max()!
        let ceilings = steppers.map { StepCeiling(config: $0.config, multiplyAdds: $0.multiplyAdds, ranks: comm.size, fmaPeakGflops: peak,
                                                  parameterCount: $0.parameterCount) }
        let fractions = secondsPerStep.indices.map { i in secondsPerStep[i].map { ceilings[i].fractionOfCeiling(secondsPerStep: $0) } }
        let entries = steppers.indices.map { i -> MethodComparisonReport.Entry in
            let seconds = median(secondsPerStep[i])
            let differences = i == 0 ? nil : zip(fractions[i], fractions[0]).map { 100 * ($0 - $1) }
            return .init(method: steppers[i].config.objective.method.rawValue, k: steppers[i].config.objective.k,
                         stepsPerBlock: stepsPerBlock[i], stepsRun: steppers[i].stepsTaken, roundsFirst: roundsFirst[i],
                         usefulMultiplyAddsPerExample: steppers[i].multiplyAdds,
                         msPerStep: seconds * 1e3, examplesPerS: Double(base.optimizer.batchSize) / seconds,
                         peakFraction: ceilings[i].peakFraction(secondsPerStep: seconds), ceilingFraction: ceilings[i].fraction,
                         updateFloorMs: ceilings[i].updateFloorMs,
                         fractionOfCeiling: ceilings[i].fractionOfCeiling(secondsPerStep: seconds),
                         fractionOfCeilingByRound: fractions[i],
                         roundsAtLeastAsClose: differences.map { $0.filter { $0 >= 0 }.count },
                         medianDifferencePoints: differences.map(median))
        }
        return MethodComparisonReport(
            cpuModel: KernelPath.cpuModel, cpuFamily: KernelPath.cpuFamily, cpuModelNumber: KernelPath.cpuModelNumber,
            kernelIsa: KernelPath.active.rawValue, blasCore: OpenBLASCore.current, batchSize: base.optimizer.batchSize,
            ranks: comm.size, rounds: rounds, dataSource: source, fmaPeakGflops: peak, fmaPeakReadings: readings,
            fmaPeakIsa: yardstick.rawValue, methods: entries)
    }
}

/// The methods' order in round `round`: a rotation, forward in the first `methods` rounds, backward
/// in the next, and so on. Every method comes first, and every method before every other, equally
/// often over 2 × `methods` rounds (for three methods, each of the six orders once); forward
/// rotations alone would put bsvi before svi and svi before vae in two rounds of three.
func blockOrder(round: Int, methods n: Int) -> [Int] {
    let start = round % n, step = (round / n) % 2 == 0 ? 1 : n - 1
    return (0..<n).map { (start + $0 * step) % n }
}

/// One method's training step on fixed rows, as `bench` times it: its own model, parameters and
/// Adam state, and a new noise context every step.
final class BenchStepper {
    let config: RunConfiguration
    let model: VAEModel
    let params: FloatBuffer
    let trainingStep: TrainingStep
    /// Useful multiply-adds per example (`ObjectiveSettings.usefulMultiplyAddsPerExample`).
    let multiplyAdds: Int
    private let x: Matrix
    private let ids: [Int]
    private let comm: Communicator
    private(set) var stepsTaken = 0

    init(config: RunConfiguration, x: Matrix, comm: Communicator) {
        self.config = config
        self.x = x
        self.comm = comm
        model = VAEModel(shape: config.model.shape(inputDim: x.cols), piCount: config.objective.settings.piCount)
        params = model.makeInitialParameters(seed: config.optimizer.seed)
        let adam = Adam(parameterCount: model.vectorLength, learningRate: config.optimizer.learningRate)
        trainingStep = TrainingStep(model: model, settings: config.objective.settings, localBatch: x.rows,
                                    globalBatch: config.optimizer.batchSize, adam: adam)
        ids = (0..<x.rows).map { comm.rank * x.rows + $0 }
        multiplyAdds = config.objective.settings.usefulMultiplyAddsPerExample(model: model)
    }

    var parameterCount: Int { model.vectorLength }

    func step() {
        _ = trainingStep.run(x: x, exampleIDs: ids,
                             noise: NoiseSource(seed: config.optimizer.seed, purpose: .trainingNoise, context: UInt64(stepsTaken)),
                             params: params, comm: comm, stopRequested: false)
        stepsTaken += 1
    }
}

/// A step's own ceiling (BenchmarkReport.ceilingFraction): its useful FLOPs per rank at the FMA
/// peak plus the parameter update's floor, measured here.
struct StepCeiling {
    /// The step's useful FLOPs per rank at the peak (ms), and the update's floor (ms).
    let atPeakMs, updateFloorMs: Double
    private let flopsPerRank, fmaPeakGflops: Double

    init(config: RunConfiguration, multiplyAdds: Int, ranks: Int, fmaPeakGflops: Double, parameterCount: Int) {
        self.init(flopsPerRank: Double(config.optimizer.batchSize * multiplyAdds * 2) / Double(ranks), fmaPeakGflops: fmaPeakGflops,
                  trafficSeconds: Adam.trafficFloorSeconds(parameterCount: parameterCount),
                  dividerSeconds: Adam.dividerFloorSeconds(parameterCount: parameterCount))
    }

    init(flopsPerRank: Double, fmaPeakGflops: Double, trafficSeconds: Double, dividerSeconds: Double) {
        self.flopsPerRank = flopsPerRank
        self.fmaPeakGflops = fmaPeakGflops
        atPeakMs = flopsPerRank / (fmaPeakGflops * 1e9) * 1e3
        updateFloorMs = max(trafficSeconds, dividerSeconds) * 1e3
    }

    /// The highest fraction of the FMA peak the step can reach.
    var fraction: Double { atPeakMs / (atPeakMs + updateFloorMs) }

    func peakFraction(secondsPerStep: Double) -> Double { flopsPerRank / secondsPerStep / 1e9 / fmaPeakGflops }

    func fractionOfCeiling(secondsPerStep: Double) -> Double { peakFraction(secondsPerStep: secondsPerStep) / fraction }
}
