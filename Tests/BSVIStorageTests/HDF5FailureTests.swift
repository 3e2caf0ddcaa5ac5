@testable import BSVIStorage
import Foundation
import Testing

/// A failing HDF5 call reaches the user as a StorageError naming the file, the object, what was
/// being done, and the C call with HDF5's own reason.
@Suite("HDF5 failures name the call")
struct HDF5FailureTests {
    /// The StorageError `body` throws (the test fails if it throws none).
    func storageError(_ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) -> StorageError? {
        do {
            try body()
            Issue.record("expected a StorageError, nothing was thrown", sourceLocation: sourceLocation)
        } catch let e as StorageError {
            return e
        } catch {
            Issue.record("expected a StorageError, got \(type(of: error)): \(error)", sourceLocation: sourceLocation)
        }
        return nil
    }

    @Test("readDoubles and readInt64s check the stored type instead of letting HDF5 convert it")
    func typedReadsCheckTheType() throws {
        let dir = try makeScratchFolder("dtype")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/types.h5"
        let f = try HDF5File.create(path)
        try f.writeDoubles("/fractions", [0.25, 1.5, -3])
        try f.writeInt64s("/counts", [1, 2, 3])
        try f.writeStrings("/names", ["a", "b"])
        try f.writeFloats("/floats", [0.5, 2], shape: [2])
        try f.close()

        let r = try HDF5File.open(path)
        // HDF5 would convert both silently (2.5 → 2, counts → doubles): the readers refuse.
        let intsAsDoubles = storageError { _ = try r.readDoubles("/counts") }
        #expect(intsAsDoubles?.file == path && intsAsDoubles?.object == "/counts")
        #expect(intsAsDoubles?.problem == "expected a float64 dataset, found int64")
        let doublesAsInts = storageError { _ = try r.readInt64s("/fractions") }
        #expect(doublesAsInts?.object == "/fractions" && doublesAsInts?.problem == "expected an int64 dataset, found float64")
        let stringsAsInts = storageError { _ = try r.readInt64s("/names") }
        #expect(stringsAsInts?.problem == "expected an int64 dataset, found string")
        let numbersAsStrings = storageError { _ = try r.readStrings("/counts") }
        #expect(numbersAsStrings?.problem == "expected a string dataset, found int64")
        // What each reader is for still reads, float32 widened to Float64 exactly.
        #expect(try r.readDoubles("/fractions") == [0.25, 1.5, -3])
        #expect(try r.readDoubles("/floats") == [0.5, 2])
        #expect(try r.readInt64s("/counts") == [1, 2, 3])
    }

    @Test("a dataset read from a file truncated after it was opened fails naming H5Dread and the cause")
    func truncatedAfterOpening() throws {
        let dir = try makeScratchFolder("cut")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/cut.h5"
        let values = (0..<100_000).map { Double($0) }
        let f = try HDF5File.create(path)
        try f.writeDoubles("/values", values)
        try f.close()
        let size = try #require(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)

        let r = try HDF5File.open(path)
        #expect(try r.datasetInfo("/values").count == values.count)  // its metadata is now cached
        #expect(truncate(path, off_t(size / 2)) == 0)
        let e = storageError { _ = try r.readDoubles("/values") }
        #expect(e?.file == path && e?.object == "/values")
        let problem = e?.problem ?? ""
        #expect(problem.hasPrefix("reading the data failed (checksum mismatch or corrupt file): H5Dread failed: "), "\(problem)")
        // HDF5's own reason follows the call's name.
        #expect(problem.count > "reading the data failed (checksum mismatch or corrupt file): H5Dread failed: ".count + 5, "\(problem)")
    }

    @Test("writing into a file opened read-only fails naming the HDF5 call that refused")
    func writingIntoAReadOnlyFile() throws {
        let dir = try makeScratchFolder("readonly")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/ro.h5"
        let f = try HDF5File.create(path)
        try f.writeInt64s("/counts", [1])
        try f.close()

        let r = try HDF5File.open(path)  // read-only
        let dataset = storageError { try r.writeDoubles("/more", [1, 2]) }
        #expect(dataset?.file == path && dataset?.object == "/more")
        #expect(dataset?.problem.hasPrefix("cannot create dataset: H5Dcreate2 failed: ") == true, "\(String(describing: dataset))")
        let group = storageError { try r.createGroup("/training") }
        #expect(group?.object == "/training" && group?.problem.hasPrefix("cannot create group: H5Gcreate2 failed: ") == true,
                "\(String(describing: group))")
        let attribute = storageError { try r.setAttribute("step", Int64(3)) }
        #expect(attribute?.object == "/" && attribute?.problem.hasPrefix("cannot create attribute 'step': H5Acreate_by_name failed: ") == true,
                "\(String(describing: attribute))")
        // Nothing was written: the file reads as before.
        let again = try HDF5File.open(path)
        #expect(try again.children(of: "/") == ["counts"] && !again.hasAttribute("step"))
    }
}

@Suite("HDF5 error descriptions")
struct HDF5ErrorDescriptionTests {
    @Test("the file driver's multi-line description becomes one line: the operation and the system's message")
    func fileDriverDescriptionIsShortened() {
        // What HDF5 1.10's POSIX driver recorded when a checkpoint write hit a full disk.
        let recorded = """
            file write failed: time = Tue Dec  1 14:59:45 2026
            , filename = '/tmp/run/checkpoints/.ckpt-4.h5.tmp-19718', file descriptor = 4, errno = 28, \
            error message = 'No space left on device', buf = 0x55861dadca5f, total write size = 149, \
            bytes this sub-write = 149, bytes actually written = 18446744073709551615, offset = 0
            """
        #expect(HDF5ErrorStack.concise(recorded) == "file write failed: No space left on device")
        #expect(HDF5ErrorStack.concise("data error detected by\n Fletcher32  checksum") == "data error detected by Fletcher32 checksum")
        #expect(HDF5ErrorStack.concise("no write intent on file") == "no write intent on file")
    }
}
