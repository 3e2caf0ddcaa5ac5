@testable import BSVIParallel
import Foundation
import Testing

@Suite("Local communicator and stall watchdog")
struct CommunicatorTests {
    @Test func localCollectivesAreIdentities() {
        let c = LocalCommunicator()
        #expect(c.rank == 0 && c.size == 1 && c.isRoot)
        var values: [Double] = [1.5, -2, 3]
        c.allreduceSum(&values)
        #expect(values == [1.5, -2, 3])
        #expect(c.allgather(42) == [42])
        #expect(c.broadcast(string: "hello") == "hello")
        #expect(c.broadcast(bytes: [1, 2, 3]) == [1, 2, 3])
        let pending = c.startAllgather([0.5, 7])
        #expect(pending.wait() == [0.5, 7])
        #expect(pending.wait() == [0.5, 7], "a completed gather keeps its result")
    }

    @Test("a pending gather completes once, when first waited for")
    func pendingGatherCompletesOnce() {
        var completions = 0
        let pending = PendingGather {
            completions += 1
            return [Double(completions)]
        }
        #expect(completions == 0, "starting does not wait")
        #expect(pending.wait() == [1])
        #expect(pending.wait() == [1])
        #expect(completions == 1)
    }

    @Test func watchdogFiresOnlyForAStalledCollective() {
        let fired = DispatchSemaphore(value: 0)
        var message = ""
        let dog = StallWatchdog(timeout: 0.2) { m in
            message = m
            fired.signal()
        }
        // A collective that completes in time does not fire.
        dog.watch("quick allreduce") {}
        #expect(fired.wait(timeout: .now() + 0.5) == .timedOut)
        // One that blocks past the timeout does; the report names what it waited for.
        let release = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            dog.watch("MPI_Allreduce of 7 floats") { _ = release.wait(timeout: .now() + 5) }
        }
        #expect(fired.wait(timeout: .now() + 3) == .success)
        release.signal()
        #expect(message.contains("MPI_Allreduce of 7 floats") && message.contains("stall"))
    }

    @Test("a rank started by mpirun, a PMIx launcher or srun is detected; Open MPI settings alone are not a launch")
    func launchDetection() {
        #expect(isMPILaunch(environment: ["OMPI_COMM_WORLD_SIZE": "2", "OMPI_COMM_WORLD_RANK": "1"]))
        #expect(isMPILaunch(environment: ["PMIX_RANK": "0"]))
        #expect(isMPILaunch(environment: ["PMI_RANK": "3", "PMI_SIZE": "4"]))
        // What scripts/mpi-env exports in every shell, and a plain shell: one process, no MPI.
        #expect(!isMPILaunch(environment: ["OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
                                           "OMPI_MCA_mpi_yield_when_idle": "1", "OPENBLAS_NUM_THREADS": "1"]))
        #expect(!isMPILaunch(environment: ["PATH": "/usr/bin", "HOME": "/root"]))
        // This test process was not started by mpirun, so it gets the local communicator.
        #expect(makeCommunicator() is LocalCommunicator)
    }
}
