import ArgumentParser
import CStopSignal
import Foundation

@main
struct BSVIDist: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bsvi-dist",
        abstract: "Train VAEs with Buffered Stochastic Variational Inference on one process or many MPI ranks.",
        discussion: """
            Without a subcommand, `bsvi-dist` trains (same as `bsvi-dist train`).
            Under mpirun every rank takes a slice of each global batch and gradients are allreduced:
              mpirun -np 2 bsvi-dist --epochs 5
            """,
        subcommands: [Train.self, Evaluate.self, Compare.self, Inspect.self, PrepareData.self, Bench.self, Sample.self, CPUInfo.self],
        defaultSubcommand: Train.self)

    /// The kernel path and OpenBLAS's core are settled before anything else runs (and before
    /// MPI starts): the OpenBLAS correction may re-execute the process. A flag error (or --help)
    /// is normally the same on every rank of an MPI job: rank 0 reports it, the others only if
    /// mpirun has not ended the job first (failBeforeStart).
    static func main() {
        // A stop signal from here on is recorded (and kept pending across the re-execution):
        // commands that stop gracefully see it at their first check; for the others it acts,
        // once released, as it would have on arrival.
        bsvi_install_stop_handlers()
        Startup.prepare()
        var command: ParsableCommand
        do {
            command = try parseAsRoot(NegativeValues.joined(Array(CommandLine.arguments.dropFirst())))
        } catch {
            // A stop signal recorded so far acts now, as it would have on arrival.
            bsvi_release_stop_signals()
            if launchRank != 0 { failBeforeStart(message: fullMessage(for: error), status: exitCode(for: error).rawValue) }
            exit(withError: error)
        }
        if !(command is StopsGracefully) { bsvi_release_stop_signals() }
        // `--help` parses into ArgumentParser's help command, which prints when run: once, on rank 0.
        if launchRank != 0 && String(describing: type(of: command)) == "HelpCommand" { Foundation.exit(0) }
        do {
            try command.run()
        } catch {
            exit(withError: error)
        }
    }
}

/// A command that turns SIGTERM, SIGINT, SIGUSR1 and SIGUSR2 into a graceful stop (polling
/// `bsvi_stop_signal()`); for every other command they keep their default action.
protocol StopsGracefully {}
extension Train: StopsGracefully {}
extension Evaluate: StopsGracefully {}
extension Compare: StopsGracefully {}
