import BSVI
import BSVITraining
import CKernels
import CStopSignal
import Foundation

/// What every subcommand needs before MPI starts and before the first BLAS call: the kernel
/// path (BSVI_KERNELS or the CPU's best), an OpenBLAS core that fits the CPU, and denormals
/// flushed to zero for the BLAS calls too (the kernels flush for themselves).
enum Startup {
    static func prepare() {
        let environment = ProcessInfo.processInfo.environment
        do {
            try KernelPath.configure(environment: environment)
        } catch {
            // Once per node, naming it under mpirun: a path this node's CPU lacks (BSVI_KERNELS=avx512
            // passed with -x to a mixed cluster) fails on nodes that may not include rank 0's, which
            // used to exit 64 without a word. Every failing rank exits with a usage error.
            bsvi_release_stop_signals()
            if launchRank == 0 || launchLocalRank == 0 {
                printError("error: \(rankOnNode)\(error)")
            }
            exit(ExitStatus.usage.rawValue)
        }
        // One BLAS thread per process (ranks take the cores), before the self-check's products, so
        // that OpenBLAS never wakes its thread pool (whose idle threads spin on sched_yield).
        setBLASThreads(1)
        configureOpenBLAS(environment: environment)
        flushDenormalsToZero()
    }

    /// "rank r on HOST: " under a launcher, for what one node finds and another may not.
    static var rankOnNode: String { launchWorldSize > 1 ? "rank \(launchRank) on \(localHostName()): " : "" }

    /// Corrects an OpenBLAS core older than the CPU, or one newer than it that a user's
    /// OPENBLAS_CORETYPE asked for, or a name of theirs OpenBLAS does not know (OpenBLASStartup). Re-executes this same
    /// program with the same arguments; every rank of an MPI job does the same on its own,
    /// before MPI_Init.
    static func configureOpenBLAS(environment: [String: String]) {
        let current = OpenBLASCore.current
        switch OpenBLASStartup.decide(currentCore: current, cpu: .this, environment: environment) {
        case .keep:
            return
        case .reexecute(let core):
            setenv(OpenBLASStartup.coreTypeVariable, core, 1)
            setenv(OpenBLASStartup.candidateVariable, core, 1)
            let failure = reexecute()
            // Still on OpenBLAS's own core, which works: carry on with it, reported as such.
            unsetenv(OpenBLASStartup.coreTypeVariable)
            unsetenv(OpenBLASStartup.candidateVariable)
            if launchRank == 0 { printError("warning: could not restart with OpenBLAS's \(core) core (\(failure)); continuing on \(current)") }
        case .verifyCandidate(let core):
            unsetenv(OpenBLASStartup.candidateVariable)
            guard let failure = OpenBLASCore.selfCheckFailure() else {
                setenv(OpenBLASStartup.chosenVariable, core, 1)
                return
            }
            if launchRank == 0 {
                printError("warning: OpenBLAS's \(core) core failed the start-up self-check (\(failure)); using OpenBLAS's own choice. "
                           + "Set OPENBLAS_CORETYPE to choose a core yourself.")
            }
            unsetenv(OpenBLASStartup.coreTypeVariable)
            setenv(OpenBLASStartup.rejectedVariable, core, 1)
            // This process's core gives wrong products: it must not go on.
            refuseToContinue(core: core, because: reexecute())
        case .dropUnknown(let requested):
            // OpenBLAS ignores a name it does not know, but not as if it were unset: it falls back
            // by instruction set (Haswell on a Zen 1, whose own choice is Zen). So restart without
            // it, and OpenBLAS detects the CPU as it would have.
            if launchLocalRank == 0 {
                printError("warning: OPENBLAS_CORETYPE=\(requested) names no core OpenBLAS knows; "
                           + "ignoring it, as if it were unset, and letting OpenBLAS choose. "
                           + "Set it to a core's name, e.g. Haswell, Zen, SkylakeX or Cooperlake, or unset it.")
            }
            unsetenv(OpenBLASStartup.coreTypeVariable)
            let failure = reexecute()
            // Still on the fallback OpenBLAS chose for the unknown name (one this CPU runs): carry on.
            if launchLocalRank == 0 { printError("warning: could not restart without OPENBLAS_CORETYPE (\(failure)); continuing on \(current)") }
        case .dropUnrunnable(let core):
            let requested = environment[OpenBLASStartup.coreTypeVariable] ?? core
            // Once per node: on a cluster the nodes that cannot run the core may not include
            // rank 0's.
            if launchLocalRank == 0 {
                printError("warning: \(rankOnNode)"
                           + "OPENBLAS_CORETYPE=\(requested) makes OpenBLAS run its \(core) core, built for "
                           + "\(OpenBLASCore.instructionSet(ofCore: core)), which this CPU (\(KernelPath.cpuModel)) lacks; "
                           + "ignoring it, as if it were unset. Unset OPENBLAS_CORETYPE, or set it only on the nodes that can run it.")
            }
            unsetenv(OpenBLASStartup.coreTypeVariable)
            // This process's core would die with SIGILL at its first product: it must not go on.
            refuseToContinue(core: core, because: reexecute())
        }
    }

    /// Replaces this process with a fresh copy of itself (same pid, arguments and, but for what
    /// the caller changed, environment). Returns only if that fails: why.
    static func reexecute() -> String {
        var arguments = CommandLine.arguments.map { strdup($0) }
        arguments.append(nil)
        bsvi_block_stop_signals_for_exec()
        execv("/proc/self/exe", arguments)
        let reason = String(cString: strerror(errno))
        bsvi_install_stop_handlers()
        for p in arguments { free(p) }
        return reason
    }

    /// Ends a process whose OpenBLAS core must not be used after the restart that would have left
    /// it failed.
    static func refuseToContinue(core: String, because failure: String) -> Never {
        bsvi_release_stop_signals()
        printError("error: could not restart without OpenBLAS's \(core) core (\(failure)), which this process must not use; "
                   + "set OPENBLAS_CORETYPE to a core this CPU runs (`bsvi-dist cpu` names the CPU) and run again.")
        exit(ExitStatus.software.rawValue)
    }

    /// FTZ and DAZ on this thread (the only one that computes): products that meet a denormal
    /// operand would otherwise take microcode assists, ~100× slower.
    static func flushDenormalsToZero() {
        #if arch(x86_64)
        bsvi_flush_denormals_on_this_thread()
        #endif
    }
}
