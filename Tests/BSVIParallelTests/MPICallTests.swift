@testable import BSVIParallel
import Testing

/// The MPI return-code wrapper, with fake return codes (MPI itself cannot describe a code before
/// MPI_Init, which a unit test does not run; MPIFailureTests covers a real failure under mpirun).
@Suite("MPI call wrapper")
struct MPICallTests {
    /// MPI_Error_string's text for the codes used below (Open MPI 4.1).
    func describe(_ code: Int32) -> String {
        [15: "MPI_ERR_TRUNCATE: message truncated", 8: "MPI_ERR_ROOT: invalid root"][code] ?? "unknown"
    }

    @Test("MPI_SUCCESS passes; any other code becomes an error naming the call, the code and MPI's text")
    func failingCodeNamesTheCall() throws {
        try mpi(0, "MPI_Allreduce", describe: describe)
        let error = #expect(throws: MPICallError.self) { try mpi(15, "MPI_Allreduce", describe: describe) }
        #expect(error == MPICallError(call: "MPI_Allreduce", code: 15, reason: "MPI_ERR_TRUNCATE: message truncated"))
        #expect(error?.description == "MPI_Allreduce failed: MPI_ERR_TRUNCATE: message truncated")
        let bcast = #expect(throws: MPICallError.self) { try mpi(8, "MPI_Bcast", describe: describe) }
        #expect(bcast?.description == "MPI_Bcast failed: MPI_ERR_ROOT: invalid root")
    }

    @Test("a count beyond a C int is refused naming the call instead of trapping or wrapping around")
    func countsBeyondACInt() throws {
        #expect(try mpiCount(425_290, "MPI_Allreduce") == 425_290)
        #expect(try mpiCount(Int(Int32.max), "MPI_Bcast") == Int32.max)
        let error = #expect(throws: MPICallError.self) { try mpiCount(Int(Int32.max) + 1, "MPI_Allreduce") }
        #expect(error?.description == "MPI_Allreduce failed: count 2147483648 exceeds the largest C int MPI takes (2147483647)")
    }
}
