import Foundation
import Testing

/// HDF5File's promise that every HDF5 call is checked holds by construction: each call to the
/// C library in Sources/BSVIStorage is the argument of `hdf5(…)` or `hdf5Size(…)` (which throw
/// an error naming it) or of `ignoringFailure(…)` (a close that cannot lose data, on purpose).
@Suite("HDF5 call coverage")
struct HDF5CallCoverageTests {
    @Test("every HDF5 function call in Sources/BSVIStorage goes through hdf5, hdf5Size or ignoringFailure")
    func everyCallIsChecked() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let sources = root.appendingPathComponent("Sources/BSVIStorage")
        let files = try #require(FileManager.default.enumerator(atPath: sources.path)?.compactMap { $0 as? String }
            .filter { $0.hasSuffix(".swift") })
        // HDF5 functions are H5 + an interface letter + a lowercase letter (H5Dread, H5free_memory);
        // types and constants (H5G_info_t, H5T_STRING) have an underscore or capital there.
        let call = try Regex(#"(\w*)\(\s*H5[A-Za-z][a-z]\w*\("#)
        let bare = try Regex(#"H5[A-Za-z][a-z]\w*\("#)
        var checkedCalls = 0
        for file in files {
            let text = try String(contentsOf: sources.appendingPathComponent(file), encoding: .utf8)
            for line in text.split(separator: "\n") where !line.trimmingCharacters(in: .whitespaces).hasPrefix("//") {
                let all = line.matches(of: bare).count
                let wrapped = line.matches(of: call).filter { ["hdf5", "hdf5Size", "ignoringFailure"].contains(String($0.output[1].substring ?? "")) }.count
                #expect(all == wrapped, "\(file): an HDF5 call outside hdf5(…)/ignoringFailure(…): \(line)")
                checkedCalls += wrapped
            }
        }
        #expect(checkedCalls > 50, "found only \(checkedCalls) HDF5 calls: has the code moved?")
    }
}
