import CMPI
import CMPIShims

/// One failed MPI call: the function's name, its error code and MPI's description of the code,
/// e.g. `MPI_Allreduce failed: MPI_ERR_TRUNCATE: message truncated`.
public struct MPICallError: Error, Equatable, CustomStringConvertible {
    public let call: String
    public let code: Int32
    public let reason: String

    public var description: String { "\(call) failed: \(reason)" }
}

/// The one place MPI return codes are tested: every MPI call of `MPICommunicator` goes through
/// it. A failing call returns a code other than MPI_SUCCESS once the communicator's error
/// handler is MPI_ERRORS_RETURN (MPICommunicator sets it); `describe` turns the code into text.
func mpi(_ code: Int32, _ call: StaticString, describe: (Int32) -> String = mpiErrorString) throws(MPICallError) {
    guard code != MPI_SUCCESS else { return }
    throw MPICallError(call: "\(call)", code: code, reason: describe(code))
}

/// MPI_Error_string of `code`: the error class's name and description in Open MPI.
func mpiErrorString(_ code: Int32) -> String {
    var text = [CChar](repeating: 0, count: Int(MPI_MAX_ERROR_STRING) + 1)
    var length: Int32 = 0
    // The only MPI result not tested through `mpi`: it is how `mpi` describes a failure, and a
    // failure here can only lose the description.
    guard MPI_Error_string(code, &text, &length) == MPI_SUCCESS else { return "MPI error code \(code)" }
    return String(cString: text)
}

/// An MPI count argument (a C int): counts beyond Int32.max cannot be passed to MPI at all.
func mpiCount(_ count: Int, _ call: StaticString) throws(MPICallError) -> Int32 {
    guard let c = Int32(exactly: count) else {
        throw MPICallError(call: "\(call)", code: MPI_ERR_COUNT, reason: "count \(count) exceeds the largest C int MPI takes (\(Int32.max))")
    }
    return c
}
