import Foundation
import Testing

/// The programs under test run with the caller's HDF5 file locking, though scripts/test turns it
/// off for the test process (testEnvironment()).
@Suite("test environment")
struct TestEnvironmentTests {
    @Test("children get the caller's HDF5_USE_FILE_LOCKING back, and not scripts/test's marker")
    func callersHDF5Locking() {
        let own = ProcessInfo.processInfo.environment
        let child = testEnvironment()
        #expect(child["BSVI_TEST_CALLERS_HDF5_LOCKING"] == nil)
        if let callers = own["BSVI_TEST_CALLERS_HDF5_LOCKING"] {
            #expect(own["HDF5_USE_FILE_LOCKING"] == "FALSE", "scripts/test no longer turns the test process's locks off")
            #expect(child["HDF5_USE_FILE_LOCKING"] == (callers == "unset" ? nil : callers))
        } else {
            #expect(child["HDF5_USE_FILE_LOCKING"] == own["HDF5_USE_FILE_LOCKING"])
        }
    }

    @Test("every command the tests run keeps Open MPI's session directories in a folder of its own, removed afterwards")
    func ownMPISessionFolder() throws {
        let key = "OMPI_MCA_orte_tmpdir_base="
        let folders = try (0..<2).map { _ in
            let r = try runCommand("/usr/bin/env", [])
            #expect(r.status == 0)
            return r.stdout.split(separator: "\n").first { $0.hasPrefix(key) }.map { String($0.dropFirst(key.count)) }
        }
        #expect(folders.allSatisfy { $0?.hasPrefix(NSTemporaryDirectory()) == true }, "\(folders)")
        #expect(folders[0] != folders[1], "two commands shared \(folders[0] ?? "nothing")")
        for case let folder? in folders { #expect(!FileManager.default.fileExists(atPath: folder), "\(folder) left behind") }
    }
}
