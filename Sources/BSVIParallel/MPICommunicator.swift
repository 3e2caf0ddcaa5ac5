import CMPI
import CMPIShims
import Foundation

/// MPI_COMM_WORLD through Open MPI. Initialized once per process.
///
/// Every MPI call is checked through `mpi(_:_:)`: the communicator's error handler is
/// MPI_ERRORS_RETURN, so a failing call returns its code instead of aborting inside the
/// library. A failure is fatal to the job: MPI's state after a failed collective is undefined
/// and the other ranks may be waiting inside it, so the rank prints `rank r: MPI_Allreduce
/// failed: …` (the call and MPI_Error_string) and ends every rank with MPI_Abort — the same
/// path as any other error of a rank (DESIGN.md §5) and as the stall watchdog. The collectives
/// therefore stay non-throwing: no caller can catch a failure and carry on alone.
public final class MPICommunicator: Communicator {
    public let rank: Int
    public let size: Int
    private let comm: MPI_Comm
    private var finalized = false
    private var watchdog: StallWatchdog?

    /// The exit status of a job ended by a failed MPI call, or by the stall watchdog: sysexits'
    /// EX_IOERR (74), as for any communication that failed part way.
    public static let failureExitCode: Int32 = 74
    public static let stallExitCode: Int32 = 74

    /// `stallTimeout` > 0 arms the stall watchdog for every collective.
    public init(stallTimeout: TimeInterval = 0) {
        var initialized: Int32 = 0
        Self.check(MPI_Initialized(&initialized), "MPI_Initialized", comm: nil, rank: nil)
        if initialized == 0 { Self.check(MPI_Init(nil, nil), "MPI_Init", comm: nil, rank: nil) }
        comm = bsvi_mpi_comm_world()
        // From here on failing calls return their code (until now the default handler aborted).
        Self.check(MPI_Comm_set_errhandler(comm, bsvi_mpi_errors_return()), "MPI_Comm_set_errhandler", comm: comm, rank: nil)
        var r: Int32 = 0, s: Int32 = 0
        Self.check(MPI_Comm_rank(comm, &r), "MPI_Comm_rank", comm: comm, rank: nil)
        Self.check(MPI_Comm_size(comm, &s), "MPI_Comm_size", comm: comm, rank: nil)
        rank = Int(r)
        size = Int(s)
        if stallTimeout > 0 {
            let rank = self.rank, comm = self.comm
            watchdog = StallWatchdog(timeout: stallTimeout) { message in
                Self.abortJob(comm: comm, rank: rank, message: message, code: Self.stallExitCode)
            }
        }
    }

    // MARK: Collectives

    public func allreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) {
        let n = checkedCount(count, "MPI_Allreduce")
        collective("MPI_Allreduce of \(count) floats", "MPI_Allreduce") {
            MPI_Allreduce(bsvi_mpi_in_place(), buffer, n, bsvi_mpi_float(), bsvi_mpi_sum(), comm)
        }
    }

    public func allreduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int) {
        let n = checkedCount(count, "MPI_Allreduce")
        collective("MPI_Allreduce of \(count) doubles", "MPI_Allreduce") {
            MPI_Allreduce(bsvi_mpi_in_place(), buffer, n, bsvi_mpi_double(), bsvi_mpi_sum(), comm)
        }
    }

    /// MPI_Iallgather. Open MPI's (libnbc) is one round: a rank posts every send and receive
    /// when it starts it, so the gather completes once every rank has started it. (An
    /// MPI_Iallreduce of the same values would not: libnbc reduces small buffers over a tree
    /// whose later rounds move only when the ranks on the path call into MPI — measured, a
    /// rank's MPI_Wait lasted until its peer's next MPI call.)
    public func startAllgather(_ values: [Double]) -> PendingGather {
        let count = values.count, ranks = size
        let n = checkedCount(count, "MPI_Iallgather")
        _ = checkedCount(count * ranks, "MPI_Iallgather")
        // MPI owns the buffers and the request until MPI_Wait returns. If the job ends first (a
        // rank's error aborts every rank) they are never freed, which is harmless.
        let mine = UnsafeMutablePointer<Double>.allocate(capacity: max(count, 1))
        mine.initialize(from: values, count: count)
        let all = UnsafeMutablePointer<Double>.allocate(capacity: max(count * ranks, 1))
        let request = UnsafeMutablePointer<MPI_Request?>.allocate(capacity: 1)
        request.initialize(to: nil)
        Self.check(MPI_Iallgather(mine, n, bsvi_mpi_double(), all, n, bsvi_mpi_double(), comm, request),
                   "MPI_Iallgather", comm: comm, rank: rank)
        return PendingGather { [self] in
            collective("MPI_Wait for a gather of \(count) doubles per rank", "MPI_Wait") {
                MPI_Wait(request, bsvi_mpi_status_ignore())
            }
            let gathered = Array(UnsafeBufferPointer(start: all, count: count * ranks))
            mine.deallocate()
            all.deallocate()
            request.deallocate()
            return gathered
        }
    }

    public func broadcast(_ buffer: UnsafeMutableRawPointer, byteCount: Int, root: Int) {
        let n = checkedCount(byteCount, "MPI_Bcast")
        collective("MPI_Bcast of \(byteCount) bytes from rank \(root)", "MPI_Bcast") {
            MPI_Bcast(buffer, n, bsvi_mpi_byte(), Int32(clamping: root), comm)
        }
    }

    public func allgather(_ value: UInt64) -> [UInt64] {
        var mine = value
        var all = [UInt64](repeating: 0, count: size)
        collective("MPI_Allgather of one 64-bit value per rank", "MPI_Allgather") {
            MPI_Allgather(&mine, 8, bsvi_mpi_byte(), &all, 8, bsvi_mpi_byte(), comm)
        }
        return all
    }

    public func barrier() { collective("MPI_Barrier", "MPI_Barrier") { MPI_Barrier(comm) } }

    /// Runs one collective under the stall watchdog and checks its result.
    private func collective(_ what: @autoclosure () -> String, _ call: StaticString, _ body: () -> Int32) {
        let code = watchdog.map { $0.watch(what(), body) } ?? body()
        Self.check(code, call, comm: comm, rank: rank)
    }

    /// `count` as the C int MPI takes; a count beyond it ends the job like a failed call.
    private func checkedCount(_ count: Int, _ call: StaticString) -> Int32 {
        do throws(MPICallError) {
            return try mpiCount(count, call)
        } catch {
            Self.abortJob(comm: comm, rank: rank, message: "\(error)", code: Self.failureExitCode)
        }
    }

    // MARK: Ending

    public func abort(code: Int32) -> Never {
        FileHandle.standardError.synchronizeFile()
        // MPI_Abort ends this process too; should it return (it never does in Open MPI), exit.
        _ = MPI_Abort(comm, code)
        exit(code)
    }

    public func finalize() {
        guard !finalized else { return }
        finalized = true
        Self.check(MPI_Finalize(), "MPI_Finalize", comm: comm, rank: rank)
    }

    /// Checks one MPI call's result; a failure ends the job (`comm` is nil before MPI is
    /// initialized, and `rank` before it is known).
    private static func check(_ code: Int32, _ call: StaticString, comm: MPI_Comm?, rank: Int?) {
        do throws(MPICallError) {
            try mpi(code, call)
        } catch {
            abortJob(comm: comm, rank: rank, message: "\(error)", code: failureExitCode)
        }
    }

    /// Prints `rank r: message` and ends every rank of the job (MPI_Abort). MPI_Abort needs the
    /// runtime to reach mpirun; if the network is gone it may never return, so the process also
    /// ends itself shortly after.
    static func abortJob(comm: MPI_Comm?, rank: Int?, message: String, code: Int32) -> Never {
        let rankText = rank.map(String.init) ?? ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_RANK"] ?? "?"
        FileHandle.standardError.write(Data("rank \(rankText): \(message)\n".utf8))
        guard let comm else { _exit(code) }
        Thread.detachNewThread {
            Thread.sleep(forTimeInterval: 5)
            _exit(code)
        }
        // Its result cannot matter: it ends the job or, failing that, the line below does.
        _ = MPI_Abort(comm, code)
        _exit(code)
    }
}
