import BSVIParallel
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

    @Test func launchDetectionFollowsTheEnvironment() {
        // Tests run outside mpirun unless CI does something unusual.
        let env = ProcessInfo.processInfo.environment
        #expect(launchedByMPI == (env["OMPI_COMM_WORLD_SIZE"] != nil || env["PMIX_RANK"] != nil || env["PMI_RANK"] != nil))
    }
}
