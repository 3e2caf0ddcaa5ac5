import Foundation

/// The collectives the trainer uses. Every rank must call the same collectives in the same
/// order; decisions (skip a step, stop) travel inside the reduced buffers, never as
/// rank-local branches around a collective.
public protocol Communicator: AnyObject {
    var rank: Int { get }
    var size: Int { get }
    /// In-place elementwise sum over ranks; every rank receives the same result.
    func allreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int)
    func allreduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int)
    /// Starts gathering every rank's `values` (the same count on every rank) without waiting
    /// for the other ranks: a nonblocking collective, which takes its place in the collective
    /// order where it starts. `PendingGather.wait()` returns all ranks' values, rank by rank,
    /// the same on every rank. It completes as soon as every rank has started it, so a rank can
    /// run ahead of a slower one by the work in between.
    func startAllgather(_ values: [Double]) -> PendingGather
    /// Copies root's buffer to every rank.
    func broadcast(_ buffer: UnsafeMutableRawPointer, byteCount: Int, root: Int)
    /// Gathers one 64-bit value from every rank, on every rank.
    func allgather(_ value: UInt64) -> [UInt64]
    func barrier()
    /// Ends the whole job (all ranks) with `code`.
    func abort(code: Int32) -> Never
    /// Leaves the parallel runtime cleanly at the end of a run.
    func finalize()
}

/// A gather started by `Communicator.startAllgather` and not yet complete.
public final class PendingGather {
    private var complete: (() -> [Double])?
    private var result: [Double] = []

    /// `complete` waits for the other ranks and returns every rank's values; it runs once.
    public init(complete: @escaping () -> [Double]) { self.complete = complete }

    /// Every rank's values, rank 0's first, once every rank has started the gather.
    public func wait() -> [Double] {
        if let complete {
            result = complete()
            self.complete = nil
        }
        return result
    }
}

extension Communicator {
    public var isRoot: Bool { rank == 0 }

    public func allreduceSum(_ values: inout [Double]) {
        let n = values.count
        values.withUnsafeMutableBufferPointer { allreduceSum($0.baseAddress!, count: n) }
    }

    /// Broadcasts root's bytes, whose length the other ranks need not know.
    public func broadcast(bytes: [UInt8], root: Int = 0) -> [UInt8] {
        var length = UInt64(bytes.count)
        broadcast(&length, byteCount: 8, root: root)
        var out = rank == root ? bytes : [UInt8](repeating: 0, count: Int(length))
        if length > 0 { out.withUnsafeMutableBytes { broadcast($0.baseAddress!, byteCount: Int(length), root: root) } }
        return out
    }

    /// Broadcasts root's string (e.g. a JSON document or an error message).
    public func broadcast(string: String, root: Int = 0) -> String {
        String(decoding: broadcast(bytes: Array(string.utf8), root: root), as: UTF8.self)
    }

    public func broadcast(_ buffer: UnsafeMutablePointer<Float>, count: Int, root: Int = 0) {
        broadcast(UnsafeMutableRawPointer(buffer), byteCount: count * 4, root: root)
    }

    /// Gathers a few 64-bit values from every rank, on every rank: element r is rank r's
    /// `values`. Every rank must pass the same count (one allgather per value, in order), so
    /// use it for fixed-size records such as a fingerprint; it is meant for start-up checks,
    /// not for the step loop.
    public func allgather(_ values: [UInt64]) -> [[UInt64]] {
        let columns = values.map { allgather($0) }
        return (0..<size).map { r in columns.map { $0[r] } }
    }
}

/// Whether this process was started by mpirun/srun (Open MPI or PMIx set these).
public var launchedByMPI: Bool { isMPILaunch(environment: ProcessInfo.processInfo.environment) }

/// Whether `environment` is that of a rank started by Open MPI's mpirun, a PMIx launcher or
/// srun with PMI.
func isMPILaunch(environment env: [String: String]) -> Bool {
    env["OMPI_COMM_WORLD_SIZE"] != nil || env["PMIX_RANK"] != nil || env["PMI_RANK"] != nil
}

/// The communicator for this process: MPI under mpirun, otherwise the local single process
/// (which never initializes MPI). `stallTimeout` (seconds, 0 = off) arms the stall watchdog.
public func makeCommunicator(stallTimeout: TimeInterval = 0) -> Communicator {
    launchedByMPI ? MPICommunicator(stallTimeout: stallTimeout) : LocalCommunicator()
}
