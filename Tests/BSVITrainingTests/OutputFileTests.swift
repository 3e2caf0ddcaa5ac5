@testable import BSVITraining
import Foundation
import Testing

@Suite("Output files are checked by creating one")
struct OutputFileTests {
    @Test("the probe succeeds in a writable folder and leaves nothing behind; sysfs refuses it even for root")
    func probe() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("output-probe-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        #expect(OutputFile.creationProblem(inFolder: folder) == nil)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder).isEmpty)
        try OutputFile.checkCanCreate(folder + "/out.h5", flag: "--out")
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder).isEmpty)
        #expect(OutputFile.creationProblem(inFolder: "/sys") != nil)
        #expect(OutputFile.creationProblem(inFolder: folder + "/missing") != nil)
    }
}
