import BSVIParallel
import BSVITraining
import Foundation
import Testing

@Suite("rank 0 decides, every rank learns")
struct RootDecisionTests {
    struct Sums: Codable, Equatable { var bound: Double; var refined: Double; var label: String }

    @Test("±∞ and NaN reach every rank (a diverged refinement's −∞ epoch sum used to end a resume with an EncodingError)")
    func nonFiniteValues() throws {
        let sent = Sums(bound: -12.5, refined: -.infinity, label: "inf")
        let received = try LocalCommunicator().rootDecides { sent }
        #expect(received == sent)
        let nan = try LocalCommunicator().rootDecides { Double.nan }
        #expect(nan.isNaN)
    }

    @Test("a failure on rank 0 reaches every rank as one CollectiveError with its exit status")
    func failureTravels() {
        #expect(performing: {
            try LocalCommunicator().rootDecides { () throws -> Int in
                throw TrainingError.writeFailed(file: "/x/metrics.csv", problem: "disk full")
            }
        }, throws: { error in
            guard let e = error as? CollectiveError else { return false }
            return e.exitStatus == .ioError && e.message.contains("/x/metrics.csv")
        })
    }
}
