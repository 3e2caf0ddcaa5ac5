// Run under mpirun by IntegrationTests (MPIFailureTests): a real MPI failure on one rank while
// the other waits in a collective that can only complete if that rank joins it. Rank 1
// broadcasts from a root that does not exist, which MPI refuses (MPI_ERR_ROOT); the
// communicator must report it as `rank 1: MPI_Bcast failed: …` and end the whole job, rank 0
// included. Nothing here is reached after a failure: "finished" on stdout means it was ignored.
import BSVIParallel
import Foundation

let comm = MPICommunicator(stallTimeout: 60)
if comm.rank == 1 {
    var byte: UInt8 = 0
    comm.broadcast(&byte, byteCount: 1, root: comm.size)
}
var values: [Double] = [1]
comm.allreduceSum(&values)
print("rank \(comm.rank) finished")
comm.finalize()
