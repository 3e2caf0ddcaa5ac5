import Foundation
import Testing

/// A failing MPI call (MPICommunicator sets MPI_ERRORS_RETURN and checks every call) ends the
/// whole job with one line naming the rank and the call; no rank is left waiting.
@Suite("MPI failures")
struct MPIFailureTests {
    /// The probe `swift test` builds next to the test bundle (Tests/MPIFailureProbe).
    func probePath() throws -> String {
        let folder = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let candidates = [folder, folder.deletingLastPathComponent()].map { $0.appendingPathComponent("MPIFailureProbe").path }
        return try #require(candidates.first { FileManager.default.isExecutableFile(atPath: $0) },
                            "MPIFailureProbe not found next to the test bundle (\(candidates))")
    }

    @Test("rank 1's failing MPI_Bcast prints `rank 1: MPI_Bcast failed: MPI_ERR_ROOT…` and aborts rank 0 waiting in MPI_Allreduce")
    func failingCallAbortsTheJob() throws {
        let r = try runCommand(mpirunPath(), ["--oversubscribe", "-np", "2", try probePath()], timeout: 60)
        #expect(r.status != 0 && !r.timedOut, "status \(r.status): \(r.stderr)")
        #expect(r.seconds < 10, "mpirun took \(r.seconds) s to end")
        let line = try #require(r.stderr.split(separator: "\n").first { $0.hasPrefix("rank 1:") }, "\(r.stderr)")
        #expect(line.hasPrefix("rank 1: MPI_Bcast failed: MPI_ERR_ROOT"), "\(line)")
        // Neither rank went on: rank 0 never left its allreduce, rank 1 never reached it.
        #expect(!r.stdout.contains("finished"), "\(r.stdout)")
        #expect(!r.stderr.contains("rank 0:"), "\(r.stderr)")
    }
}
