import CHDF5
import CHDF5Shims

/// One failed HDF5 C call: the function's name and HDF5's own description of the innermost
/// error it recorded, e.g. `H5Dread failed: data error detected by Fletcher32 checksum`.
/// `HDF5File` turns it into the `StorageError` users read (file, object, what we were doing).
struct HDF5CallError: Error, Equatable, CustomStringConvertible {
    let call: String
    let reason: String?

    var description: String { reason.map { "\(call) failed: \($0)" } ?? "\(call) failed" }
}

// MARK: The one place HDF5 return codes are tested
//
// Every HDF5 call in this module goes through `hdf5(_:_:)` (or, for a size, `hdf5Size`), so no
// call site compares a return code by hand and none can forget; the few results deliberately
// not checked go through `ignoringFailure`, which says so.

/// HDF5 reports failure with a negative value in every integer it returns: herr_t (status),
/// hid_t (identifiers), htri_t (true/false), ssize_t and hssize_t (counts), int (ranks).
@discardableResult
func hdf5<Result: SignedInteger & FixedWidthInteger>(_ result: Result, _ call: StaticString) throws(HDF5CallError) -> Result {
    guard result >= 0 else { throw HDF5CallError(call: "\(call)", reason: HDF5ErrorStack.innermostReason()) }
    return result
}

/// Enumerations (H5T_class_t, H5T_sign_t, H5D_layout_t) report failure as their −1 member
/// (H5T_NO_CLASS, H5T_SGN_ERROR, H5D_LAYOUT_ERROR).
@discardableResult
func hdf5<Result: RawRepresentable>(_ result: Result, _ call: StaticString) throws(HDF5CallError) -> Result
where Result.RawValue: SignedInteger & FixedWidthInteger {
    try hdf5(result.rawValue, call)
    return result
}

/// Sizes (size_t, e.g. H5Tget_size) report failure as 0.
@discardableResult
func hdf5Size(_ result: Int, _ call: StaticString) throws(HDF5CallError) -> Int {
    guard result > 0 else { throw HDF5CallError(call: "\(call)", reason: HDF5ErrorStack.innermostReason()) }
    return result
}

/// A close whose failure cannot lose data, deliberately not checked: a dataspace, datatype or
/// property list (they only hold memory), a handle that was only read from, or any handle
/// released on a path that is already throwing (that error is the one to report). Written out
/// so every HDF5 call in the module is visibly either checked or ignored on purpose.
@inline(__always)
func ignoringFailure(_ result: herr_t) {}

/// Runs HDF5 calls for one user-visible action: a failing call becomes the `StorageError`
/// users read — the file, the object, what we were doing with its hint, then the C call and
/// HDF5's reason ("reading the data failed (…): H5Dread failed: …"). Other errors pass as
/// they are.
@discardableResult
func checkingHDF5<T>(file: String, object: String?, _ action: String, fix: String? = nil, kind: FailureKind? = nil,
                     _ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let failure as HDF5CallError {
        throw StorageError(file: file, object: object, problem: "\(action): \(failure)", fix: fix, kind: kind)
    }
}

/// HDF5 records every failure on a per-thread error stack, from the API function the caller
/// called down to the routine that detected the problem; each API call clears it on entry, so
/// after a failed call it describes that call.
enum HDF5ErrorStack {
    /// The description at the bottom of the stack (the most specific one), or nil when HDF5
    /// recorded none.
    static func innermostReason() -> String? {
        var reason: String? = nil
        withUnsafeMutablePointer(to: &reason) { slot in
            // Walking up from the innermost error: entry 0 is the one that detected the problem.
            // A failure of the walk itself only loses the reason, never the error.
            ignoringFailure(H5Ewalk2(bsvi_h5e_default(), H5E_WALK_UPWARD, { index, error, context in
                guard index == 0, let description = error?.pointee.desc, description.pointee != 0 else { return 0 }
                context?.assumingMemoryBound(to: String?.self).pointee = String(cString: description)
                return 0
            }, slot))
        }
        return reason.map(concise)
    }

    /// One line of what matters in an HDF5 description. The POSIX file driver's descriptions
    /// span lines and list every argument ("file write failed: time = Tue Dec  1 …\n, filename
    /// = '…', file descriptor = 4, errno = 28, error message = 'No space left on device', buf =
    /// …"): those keep the operation and the system's message ("file write failed: No space
    /// left on device"); any other description only has its whitespace collapsed.
    static func concise(_ description: String) -> String {
        let oneLine = description.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        guard let operationEnd = oneLine.range(of: ": time = "),
              let messageStart = oneLine.range(of: "error message = '"),
              let messageEnd = oneLine[messageStart.upperBound...].firstIndex(of: "'") else { return oneLine }
        return oneLine[..<operationEnd.lowerBound] + ": " + oneLine[messageStart.upperBound..<messageEnd]
    }
}
