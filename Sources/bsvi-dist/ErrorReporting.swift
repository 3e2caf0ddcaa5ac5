import ArgumentParser
import BSVIParallel
import BSVITraining
import CStopSignal
import Foundation

/// Prints to standard error, unbuffered.
func printError(_ s: String) {
    FileHandle.standardError.write(Data((s + "\n").utf8))
}

/// This process's rank as mpirun announced it, readable before MPI is initialized.
var launchRank: Int { launchInteger(["OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK"], otherwise: 0) }

/// This process's rank among those mpirun started on the same node (0 without mpirun).
var launchLocalRank: Int { launchInteger(["OMPI_COMM_WORLD_LOCAL_RANK", "PMIX_LOCAL_RANK", "MPI_LOCALRANKID"], otherwise: 0) }

/// The number of ranks mpirun started, readable before MPI is initialized (1 without mpirun).
var launchWorldSize: Int { launchInteger(["OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "PMI_SIZE"], otherwise: 1) }

/// The first of the launcher's variables (Open MPI's, PMIx's, PMI's) that is set, as an integer.
private func launchInteger(_ names: [String], otherwise fallback: Int) -> Int {
    let env = ProcessInfo.processInfo.environment
    return names.lazy.compactMap { env[$0] }.first.flatMap { Int($0) } ?? fallback
}

/// The exit status (sysexits.h, README "Exit status") of an error that ends a command.
func exitStatus(for error: Error) -> Int32 {
    if error is ValidationError { return ExitStatus.usage.rawValue }
    return ExitStatus(for: error).rawValue
}

/// Runs a command body on a communicator and turns every error into one line on standard
/// error (`rank r: …` under MPI) and its exit status. Errors every rank learned together
/// (CollectiveError, an interrupted evaluation) end each rank cleanly, reported by rank 0;
/// under MPI any other error aborts the whole job, so no rank is left waiting in a collective.
func runCollectively(_ comm: Communicator, _ body: () throws -> Void) -> Never {
    do {
        try body()
        comm.finalize()
        exit(0)
    } catch let e as CollectiveError {
        if !e.silent { printError(comm.size > 1 ? "rank \(comm.rank): \(e)" : "error: \(e)") }
        comm.finalize()
        exit(e.exitStatus.rawValue)
    } catch let e as EvaluationInterrupted {
        if comm.isRoot { printError("error: \(e)") }
        comm.finalize()
        exit(e.exitStatus.rawValue)
    } catch {
        printError(comm.size > 1 ? "rank \(comm.rank): \(error)" : "error: \(error)")
        let status = exitStatus(for: error)
        if comm.size > 1 { comm.abort(code: status) }
        exit(status)
    }
}

/// For errors found before MPI starts (flags): rank 0 prints and exits with the error's status,
/// which mpirun reports as the job's.
func failBeforeStart(_ error: Error) -> Never {
    failBeforeStart(message: "\(error)", status: exitStatus(for: error))
}

/// The same for a message already formatted (ArgumentParser's, with its usage lines). The other
/// ranks usually fail the same way: they report only after a pause, by which time rank 0's exit
/// has made mpirun end the job, them included, so the message appears once (failing at once,
/// they could make mpirun kill rank 0 before its message got out, seen under load). A rank that
/// fails alone — other flags in an MPMD launch, or a launcher's rank variable inherited outside
/// mpirun — still reports, named, and exits non-zero: exiting 0 left rank 0 waiting in MPI_Init.
func failBeforeStart(message: String, status: Int32) -> Never {
    // mpirun ends the job with SIGTERM once rank 0 has reported: the other ranks must die of it.
    bsvi_release_stop_signals()
    if launchRank != 0 {
        guard status != 0 else { exit(0) }  // a clean exit (--help): rank 0 prints it
        Thread.sleep(forTimeInterval: 2)
        printError("rank \(launchRank): \(message)")
        exit(status)
    }
    printError("error: \(message)")
    exit(status)
}

/// For the single-process commands (inspect, sample, prepare-data): the error on one line and
/// its status to throw.
func failure(_ error: Error) -> ExitCode {
    printError("error: \(error)")
    return ExitCode(exitStatus(for: error))
}
