import CHDF5
import CHDF5Shims

/// Attributes on groups and datasets, addressed by object path ("/" is the root group).
extension HDF5File {
    public func hasAttribute(_ name: String, on object: String = "/") throws -> Bool {
        guard try object == "/" || exists(object) else { return false }
        return try checked(object, "cannot look up attribute '\(name)' (the file is corrupt)") {
            try hdf5(H5Aexists_by_name(id, object, name, bsvi_h5p_default()), "H5Aexists_by_name") > 0
        }
    }

    /// Removes the attribute if it is there.
    public func deleteAttribute(_ name: String, on object: String = "/") throws {
        guard try hasAttribute(name, on: object) else { return }
        try checked(object, "cannot remove attribute '\(name)'") {
            try hdf5(H5Adelete_by_name(id, object, name, bsvi_h5p_default()), "H5Adelete_by_name")
        }
    }

    private func writeAttribute(_ name: String, on object: String, type: hid_t, dims: [Int], data: UnsafeRawPointer) throws {
        try deleteAttribute(name, on: object)
        let attribute = try checked(object, "cannot create attribute '\(name)'") {
            var d = dims.map { hsize_t($0) }
            let space = dims.isEmpty ? try hdf5(H5Screate(H5S_SCALAR), "H5Screate")
                                     : try hdf5(H5Screate_simple(Int32(d.count), &d, nil), "H5Screate_simple")
            defer { ignoringFailure(H5Sclose(space)) }
            return try hdf5(H5Acreate_by_name(id, object, name, type, space, bsvi_h5p_default(), bsvi_h5p_default(), bsvi_h5p_default()),
                            "H5Acreate_by_name")
        }
        try closing(attribute, with: H5Aclose, "H5Aclose", object: object) { a in
            try checked(object, "cannot write attribute '\(name)'") { try hdf5(H5Awrite(a, type, data), "H5Awrite") }
        }
    }

    public func setAttribute(_ name: String, on object: String = "/", _ value: Int64) throws {
        var v = value
        try writeAttribute(name, on: object, type: bsvi_h5t_native_int64(), dims: [], data: &v)
    }

    public func setAttribute(_ name: String, on object: String = "/", _ values: [Int64]) throws {
        try values.withUnsafeBytes {
            try writeAttribute(name, on: object, type: bsvi_h5t_native_int64(), dims: [values.count], data: $0.baseAddress!)
        }
    }

    public func setAttribute(_ name: String, on object: String = "/", _ value: Double) throws {
        var v = value
        try writeAttribute(name, on: object, type: bsvi_h5t_native_double(), dims: [], data: &v)
    }

    /// A scalar variable-length UTF-8 string (h5py reads it as `str`, h5dump as a quoted string).
    /// A scalar string attribute, stored as a fixed-length NUL-terminated UTF-8 string inside the
    /// attribute itself. (Not variable-length: those live in the file's global heap, and HDF5
    /// 1.10 crashes — a segmentation fault in H5HG_read — when it reads one whose heap reference
    /// is damaged, which the corruption tests hit. Files written before 2026-12 hold
    /// variable-length strings; `stringAttribute` reads both.)
    public func setAttribute(_ name: String, on object: String = "/", _ value: String) throws {
        let bytes = Array(value.utf8) + [0]
        let type = try checked(object, "cannot make a string type for attribute '\(name)'") { try Self.fixedStringType(bytes.count) }
        defer { ignoringFailure(H5Tclose(type)) }
        try bytes.withUnsafeBufferPointer { try writeAttribute(name, on: object, type: type, dims: [], data: $0.baseAddress!) }
    }

    /// Runs `body` with attribute `name` of `object` open (it must exist), and closes it.
    private func withAttribute<T>(_ name: String, on object: String, _ body: (hid_t) throws -> T) throws -> T {
        guard try hasAttribute(name, on: object) else { throw fail(object, "attribute '\(name)' is missing") }
        let attribute = try checked(object, "cannot open attribute '\(name)'") {
            try hdf5(H5Aopen_by_name(id, object, name, bsvi_h5p_default(), bsvi_h5p_default()), "H5Aopen_by_name")
        }
        return try closing(attribute, with: H5Aclose, "H5Aclose", object: object, body)
    }

    /// How many values the attribute holds (1 for a scalar).
    private static func elementCount(_ attribute: hid_t) throws(HDF5CallError) -> Int {
        let space = try hdf5(H5Aget_space(attribute), "H5Aget_space")
        defer { ignoringFailure(H5Sclose(space)) }
        return Int(try hdf5(H5Sget_simple_extent_npoints(space), "H5Sget_simple_extent_npoints"))
    }

    /// Integer attribute (any integer or float type, converted), scalar or array.
    public func int64Attribute(_ name: String, on object: String = "/") throws -> [Int64] {
        try withAttribute(name, on: object) { a in
            try checked(object, "cannot read attribute '\(name)'") {
                let type = try hdf5(H5Aget_type(a), "H5Aget_type")
                defer { ignoringFailure(H5Tclose(type)) }
                let typeClass = try hdf5(H5Tget_class(type), "H5Tget_class")
                guard typeClass == H5T_INTEGER || typeClass == H5T_FLOAT else {
                    throw fail(object, "attribute '\(name)' should be an integer, found \(try HDF5ElementType.of(type))")
                }
                let count = try Self.elementCount(a)
                if typeClass == H5T_FLOAT {
                    // HDF5's conversion would turn NaN into INT64_MIN and 16.7 into 16 without a word.
                    var doubles = [Double](repeating: 0, count: count)
                    if count > 0 { try hdf5(H5Aread(a, bsvi_h5t_native_double(), &doubles), "H5Aread") }
                    guard let bad = doubles.first(where: { !($0 == $0.rounded() && abs($0) < 0x1p62) }) else { return doubles.map { Int64($0) } }
                    throw fail(object, "attribute '\(name)' should be a whole number, found \(bad)")
                }
                var values = [Int64](repeating: 0, count: count)
                if !values.isEmpty { try hdf5(H5Aread(a, bsvi_h5t_native_int64(), &values), "H5Aread") }
                return values
            }
        }
    }

    public func scalarInt64Attribute(_ name: String, on object: String = "/") throws -> Int64 {
        let v = try int64Attribute(name, on: object)
        guard v.count == 1 else { throw fail(object, "attribute '\(name)' should be a single integer, found \(v.count) values") }
        return v[0]
    }

    public func doubleAttribute(_ name: String, on object: String = "/") throws -> Double {
        try withAttribute(name, on: object) { a in
            try checked(object, "cannot read attribute '\(name)'") {
                let type = try hdf5(H5Aget_type(a), "H5Aget_type")
                defer { ignoringFailure(H5Tclose(type)) }
                let typeClass = try hdf5(H5Tget_class(type), "H5Tget_class")
                guard typeClass == H5T_INTEGER || typeClass == H5T_FLOAT, try Self.elementCount(a) == 1 else {
                    throw fail(object, "attribute '\(name)' should be a single number")
                }
                var v = 0.0
                try hdf5(H5Aread(a, bsvi_h5t_native_double(), &v), "H5Aread")
                return v
            }
        }
    }

    /// String attribute, fixed-length or variable-length (h5py writes the latter).
    public func stringAttribute(_ name: String, on object: String = "/") throws -> String {
        try withAttribute(name, on: object) { a in
            try checked(object, "cannot read attribute '\(name)'") {
                let type = try hdf5(H5Aget_type(a), "H5Aget_type")
                defer { ignoringFailure(H5Tclose(type)) }
                guard try hdf5(H5Tget_class(type), "H5Tget_class") == H5T_STRING, try Self.elementCount(a) == 1 else {
                    throw fail(object, "attribute '\(name)' should be a string")
                }
                if try hdf5(H5Tis_variable_str(type), "H5Tis_variable_str") > 0 {
                    let memType = try Self.variableStringType()
                    defer { ignoringFailure(H5Tclose(memType)) }
                    var pointer: UnsafeMutablePointer<CChar>? = nil
                    // HDF5 allocated the string; freeing memory cannot lose data.
                    defer { ignoringFailure(H5free_memory(pointer)) }
                    try hdf5(H5Aread(a, memType, &pointer), "H5Aread")
                    return pointer.map { String(cString: $0) } ?? ""
                }
                var bytes = [UInt8](repeating: 0, count: try hdf5Size(H5Tget_size(type), "H5Tget_size") + 1)
                try hdf5(H5Aread(a, type, &bytes), "H5Aread")
                return String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
            }
        }
    }
}
