import CMPI
import CShims
import Foundation

/// MPI_COMM_WORLD through Open MPI. Initialized once per process; every call is checked
/// (Open MPI's default error handler aborts the job on failure, which is what we want:
/// no rank is left waiting in a collective).
public final class MPICommunicator: Communicator {
    public let rank: Int
    public let size: Int
    private let comm: MPI_Comm
    private var finalized = false
    private var watchdog: StallWatchdog?

    /// `stallTimeout` > 0 arms the stall watchdog for every collective.
    public init(stallTimeout: TimeInterval = 0) {
        var initialized: Int32 = 0
        MPI_Initialized(&initialized)
        if initialized == 0 { MPI_Init(nil, nil) }
        comm = bsvi_mpi_comm_world()
        var r: Int32 = 0, s: Int32 = 0
        MPI_Comm_rank(comm, &r)
        MPI_Comm_size(comm, &s)
        rank = Int(r)
        size = Int(s)
        if stallTimeout > 0 {
            let rank = self.rank, comm = self.comm
            watchdog = StallWatchdog(timeout: stallTimeout) { message in
                FileHandle.standardError.write(Data("rank \(rank): \(message)\n".utf8))
                // MPI_Abort needs the runtime to reach mpirun; if the network is gone it may
                // never return, so the process also ends itself shortly after.
                Thread.detachNewThread {
                    Thread.sleep(forTimeInterval: 5)
                    _exit(3)
                }
                MPI_Abort(comm, 3)
                _exit(3)
            }
        }
    }

    private func watched(_ what: @autoclosure () -> String, _ body: () -> Void) {
        if let watchdog { watchdog.watch(what(), body) } else { body() }
    }

    public func allreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) {
        watched("MPI_Allreduce of \(count) floats") {
            MPI_Allreduce(bsvi_mpi_in_place(), buffer, Int32(count), bsvi_mpi_float(), bsvi_mpi_sum(), comm)
        }
    }

    public func allreduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int) {
        watched("MPI_Allreduce of \(count) doubles") {
            MPI_Allreduce(bsvi_mpi_in_place(), buffer, Int32(count), bsvi_mpi_double(), bsvi_mpi_sum(), comm)
        }
    }

    public func broadcast(_ buffer: UnsafeMutableRawPointer, byteCount: Int, root: Int) {
        watched("MPI_Bcast of \(byteCount) bytes from rank \(root)") {
            MPI_Bcast(buffer, Int32(byteCount), bsvi_mpi_byte(), Int32(root), comm)
        }
    }

    public func allgather(_ value: UInt64) -> [UInt64] {
        var mine = value
        var all = [UInt64](repeating: 0, count: size)
        watched("MPI_Allgather of parameter checksums") {
            MPI_Allgather(&mine, 8, bsvi_mpi_byte(), &all, 8, bsvi_mpi_byte(), comm)
        }
        return all
    }

    public func barrier() { watched("MPI_Barrier") { MPI_Barrier(comm) } }

    public func abort(code: Int32) -> Never {
        FileHandle.standardError.synchronizeFile()
        MPI_Abort(comm, code)
        exit(code)
    }

    public func finalize() {
        guard !finalized else { return }
        finalized = true
        MPI_Finalize()
    }
}
