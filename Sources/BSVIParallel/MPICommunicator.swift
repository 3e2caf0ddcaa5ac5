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

    public init() {
        var initialized: Int32 = 0
        MPI_Initialized(&initialized)
        if initialized == 0 { MPI_Init(nil, nil) }
        comm = bsvi_mpi_comm_world()
        var r: Int32 = 0, s: Int32 = 0
        MPI_Comm_rank(comm, &r)
        MPI_Comm_size(comm, &s)
        rank = Int(r)
        size = Int(s)
    }

    public func allreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) {
        MPI_Allreduce(bsvi_mpi_in_place(), buffer, Int32(count), bsvi_mpi_float(), bsvi_mpi_sum(), comm)
    }

    public func allreduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int) {
        MPI_Allreduce(bsvi_mpi_in_place(), buffer, Int32(count), bsvi_mpi_double(), bsvi_mpi_sum(), comm)
    }

    public func broadcast(_ buffer: UnsafeMutableRawPointer, byteCount: Int, root: Int) {
        MPI_Bcast(buffer, Int32(byteCount), bsvi_mpi_byte(), Int32(root), comm)
    }

    public func allgather(_ value: UInt64) -> [UInt64] {
        var mine = value
        var all = [UInt64](repeating: 0, count: size)
        MPI_Allgather(&mine, 8, bsvi_mpi_byte(), &all, 8, bsvi_mpi_byte(), comm)
        return all
    }

    public func barrier() { MPI_Barrier(comm) }

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
