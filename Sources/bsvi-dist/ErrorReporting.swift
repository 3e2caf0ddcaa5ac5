import BSVIParallel
import BSVITraining
import Foundation

/// Prints to standard error, unbuffered.
func printError(_ s: String) {
    FileHandle.standardError.write(Data((s + "\n").utf8))
}

/// This process's rank as mpirun announced it, readable before MPI is initialized.
var launchRank: Int {
    let env = ProcessInfo.processInfo.environment
    return Int(env["OMPI_COMM_WORLD_RANK"] ?? env["PMIX_RANK"] ?? env["PMI_RANK"] ?? "0") ?? 0
}

/// Runs a command body on a communicator and turns every error into one line on standard
/// error (`rank r: …` under MPI) and a non-zero exit. Under MPI a failing rank aborts the
/// whole job, so no other rank is left waiting in a collective; errors that every rank
/// learned together (CollectiveError) end each rank cleanly instead.
func runCollectively(_ comm: Communicator, _ body: () throws -> Void) -> Never {
    do {
        try body()
        comm.finalize()
        exit(0)
    } catch let e as CollectiveError {
        if !e.silent { printError(comm.size > 1 ? "rank \(comm.rank): \(e)" : "error: \(e)") }
        comm.finalize()
        exit(1)
    } catch {
        printError(comm.size > 1 ? "rank \(comm.rank): \(error)" : "error: \(error)")
        if comm.size > 1 { comm.abort(code: 1) }
        exit(1)
    }
}

/// The number of ranks mpirun started, readable before MPI is initialized (1 without mpirun).
var launchWorldSize: Int {
    let env = ProcessInfo.processInfo.environment
    return Int(env["OMPI_COMM_WORLD_SIZE"] ?? env["PMIX_SIZE"] ?? env["PMI_SIZE"] ?? "1") ?? 1
}

/// For errors found before MPI starts (flag validation): identical on every rank, so only
/// rank 0 prints; each rank exits non-zero and mpirun reports the failure.
func failBeforeStart(_ error: Error) -> Never {
    if launchRank == 0 { printError("error: \(error)") }
    exit(2)
}

/// Exit statuses (sysexits.h).
enum ExitStatus {
    static let usage: Int32 = 64
}
