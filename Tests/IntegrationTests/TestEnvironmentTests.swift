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
}
