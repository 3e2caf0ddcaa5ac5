import CHDF5
import CHDF5Shims
import Foundation

/// The HDF5 library prints its own error stack by default; we report errors ourselves.
private var silenceHDF5Errors: Void { bsvi_h5_silence_errors() }

/// An open HDF5 file with typed helpers that throw a `StorageError` naming the file and object.
/// Every HDF5 call they make is checked through `hdf5(_:_:)` (HDF5Call.swift), and a failing call
/// is named in the error ("H5Dread failed: …").
public final class HDF5File {
    public let path: String
    let id: hid_t
    private var isOpen = true

    private init(path: String, id: hid_t) {
        self.path = path
        self.id = id
        // Best effort: a descriptor left inheritable costs nothing unless this process starts
        // another while the file is open (the test suite does, on many threads).
        _ = bsvi_h5f_close_on_exec(id)
    }

    /// A file dropped without `close()` was only read, or is being abandoned on an error path;
    /// files that were written are closed with `close()`, which checks.
    deinit { if isOpen { ignoringFailure(H5Fclose(id)) } }

    /// Opens an existing file (read-only unless `writable`).
    public static func open(_ path: String, writable: Bool = false) throws -> HDF5File {
        _ = silenceHDF5Errors
        guard PathKind(path) != .nothing else {
            throw StorageError(file: path, problem: "file not found", fix: "check the path", kind: .missingInput)
        }
        // Before HDF5 opens it: H5Fis_hdf5 on a FIFO waits for a writer, and on a folder fails
        // with "Is a directory", which would be reported as a damaged file.
        try PathKind.checkIsInputFile(path, why: "HDF5 reads a file by seeking in it, which a pipe cannot do")
        let notHDF5 = "not an HDF5 file (or truncated/corrupt)"
        let notHDF5Fix = "pass a file written by bsvi-dist or another HDF5 tool"
        let isHDF5 = try checkingHDF5(file: path, object: nil, notHDF5, fix: notHDF5Fix, kind: .badData) {
            try hdf5(H5Fis_hdf5(path), "H5Fis_hdf5")
        }
        guard isHDF5 > 0 else { throw StorageError(file: path, problem: notHDF5, fix: notHDF5Fix, kind: .badData) }
        do {
            let id = try hdf5(H5Fopen(path, writable ? bsvi_h5f_acc_rdwr() : bsvi_h5f_acc_rdonly(), bsvi_h5p_default()), "H5Fopen")
            return HDF5File(path: path, id: id)
        } catch let failure {
            // HDF5's file lock held by another program (h5py with "a" or "w") is not damage: a
            // caller that skips damaged files (--resume auto) must not skip this one.
            if "\(failure)".contains("unable to lock file") {
                throw StorageError(file: path, problem: "the file is open for writing in another program (HDF5 file lock: \(failure))",
                                   fix: "close it there (h5py: f.close()) and run this again", kind: .ioError)
            }
            throw StorageError(file: path, object: nil, problem: "HDF5 could not open the file (truncated or corrupt): \(failure)", kind: .badData)
        }
    }

    /// Creates a new file, replacing any file at `path`. Files use the HDF5 1.10 format
    /// (superblock v3, version-2 object headers, new chunk indexes), in which every piece of
    /// metadata carries a checksum, so corruption anywhere is detected on read; HDF5 ≥ 1.10
    /// (h5py, h5dump) reads it.
    public static func create(_ path: String) throws -> HDF5File {
        _ = silenceHDF5Errors
        let id = try checkingHDF5(file: path, object: nil, "cannot create the file", fix: "check that the folder exists and is writable",
                                  kind: .cannotCreateOutput) {
            let fapl = try hdf5(H5Pcreate(bsvi_h5p_file_access()), "H5Pcreate")
            defer { ignoringFailure(H5Pclose(fapl)) }
            try hdf5(H5Pset_libver_bounds(fapl, H5F_LIBVER_V110, H5F_LIBVER_V110), "H5Pset_libver_bounds")
            // No creation times in any object header (the root group's comes from here): the same
            // contents give the same bytes.
            let fcpl = try hdf5(H5Pcreate(bsvi_h5p_file_create()), "H5Pcreate")
            defer { ignoringFailure(H5Pclose(fcpl)) }
            try hdf5(H5Pset_obj_track_times(fcpl, false), "H5Pset_obj_track_times")
            return try hdf5(H5Fcreate(path, bsvi_h5f_acc_trunc(), fcpl, fapl), "H5Fcreate")
        }
        return HDF5File(path: path, id: id)
    }

    /// Flushes and closes; errors here mean the data may not be on disk. The close is attempted
    /// even after a failed flush, so the file is released either way.
    public func close() throws {
        guard isOpen else { return }
        isOpen = false
        let flushed = Result { try hdf5(H5Fflush(id, H5F_SCOPE_GLOBAL), "H5Fflush") }
        let closed = Result { try hdf5(H5Fclose(id), "H5Fclose") }
        for case .failure(let failure) in [flushed, closed] {
            throw StorageError(file: path, problem: "flushing/closing the file failed (disk full?): \(failure)")
        }
    }

    func fail(_ object: String?, _ problem: String, fix: String? = nil) -> StorageError {
        StorageError(file: path, object: object, problem: problem, fix: fix)
    }

    /// Runs HDF5 calls on `object` of this file; a failing call becomes a `StorageError` naming
    /// the file, the object, `action` and the call.
    @discardableResult
    func checked<T>(_ object: String?, _ action: String, fix: String? = nil, _ body: () throws -> T) throws -> T {
        try checkingHDF5(file: path, object: object, action, fix: fix, body)
    }

    /// Runs `body` on `handle`, an object of this file just opened or created (a group, dataset
    /// or attribute at `object`), then closes it with `close`. The close is checked after success
    /// — closing a dataset is when HDF5 writes its cached chunks, so a failed close after writing
    /// is lost data — and ignored after a failure, whose error is the one to report.
    @discardableResult
    func closing<T>(_ handle: hid_t, with close: (hid_t) -> herr_t, _ closeCall: StaticString, object: String,
                    _ body: (hid_t) throws -> T) throws -> T {
        let result: T
        do {
            result = try body(handle)
        } catch {
            ignoringFailure(close(handle))
            throw error
        }
        try checked(object, "closing \(object) failed (disk full?)") { try hdf5(close(handle), closeCall) }
        return result
    }

    // MARK: Structure

    /// Whether an object exists at an absolute path ("/a/b/c"), checking each component. A
    /// damaged link or group throws rather than reading as "absent", so a corrupt optional part
    /// (e.g. /training) is never mistaken for a missing one.
    public func exists(_ objectPath: String) throws -> Bool {
        var prefix = ""
        for part in objectPath.split(separator: "/") {
            prefix += "/" + part
            let found = try checked(prefix, "cannot look up the object (the file is corrupt)") {
                try hdf5(H5Lexists(id, prefix, bsvi_h5p_default()), "H5Lexists")
            }
            if found == 0 { return false }
        }
        return true
    }

    /// Removes the link to a dataset or group (its space stays in the file until it is repacked).
    public func unlink(_ objectPath: String) throws {
        try checked(objectPath, "cannot remove it") {
            try hdf5(H5Ldelete(id, objectPath, bsvi_h5p_default()), "H5Ldelete")
        }
    }

    /// Creates the group and any missing parents.
    public func createGroup(_ objectPath: String) throws {
        var prefix = ""
        for part in objectPath.split(separator: "/") {
            prefix += "/" + part
            if try exists(prefix) { continue }
            let group = try checked(prefix, "cannot create group") {
                let creation = try hdf5(H5Pcreate(bsvi_h5p_group_create()), "H5Pcreate")
                defer { ignoringFailure(H5Pclose(creation)) }
                try hdf5(H5Pset_obj_track_times(creation, false), "H5Pset_obj_track_times")  // as for datasets (HDF5Datasets)
                return try hdf5(H5Gcreate2(id, prefix, bsvi_h5p_default(), creation, bsvi_h5p_default()), "H5Gcreate2")
            }
            try closing(group, with: H5Gclose, "H5Gclose", object: prefix) { _ in }
        }
    }

    /// Names of the direct children of a group.
    public func children(of group: String) throws -> [String] {
        let handle = try checked(group, "group not found") { try hdf5(H5Gopen2(id, group, bsvi_h5p_default()), "H5Gopen2") }
        return try closing(handle, with: H5Gclose, "H5Gclose", object: group) { g in
            try checked(group, "cannot list the group") {
                var info = H5G_info_t()
                try hdf5(H5Gget_info(g, &info), "H5Gget_info")
                return try (0..<info.nlinks).map { i in
                    let n = try hdf5(H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, nil, 0, bsvi_h5p_default()), "H5Lget_name_by_idx")
                    var name = [CChar](repeating: 0, count: n + 1)
                    try hdf5(H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, &name, n + 1, bsvi_h5p_default()), "H5Lget_name_by_idx")
                    return String(cString: name)
                }
            }
        }
    }

    func parentPath(of name: String) -> String {
        guard let slash = name.lastIndex(of: "/"), slash != name.startIndex else { return "/" }
        return String(name[..<slash])
    }
}
