import CHDF5
import CShims

/// Attributes on groups and datasets, addressed by object path ("/" is the root group).
extension HDF5File {
    public func hasAttribute(_ name: String, on object: String = "/") throws -> Bool {
        guard try object == "/" || exists(object) else { return false }
        let found = H5Aexists_by_name(id, object, name, bsvi_h5p_default())
        if found < 0 { throw fail(object, "cannot look up attribute '\(name)' (the file is corrupt)") }
        return found > 0
    }

    private func writeAttribute(_ name: String, on object: String, type: hid_t, dims: [Int], data: UnsafeRawPointer) throws {
        if try hasAttribute(name, on: object) { H5Adelete_by_name(id, object, name, bsvi_h5p_default()) }
        var d = dims.map { hsize_t($0) }
        let space = dims.isEmpty ? H5Screate(H5S_SCALAR) : H5Screate_simple(Int32(d.count), &d, nil)
        defer { H5Sclose(space) }
        let a = H5Acreate_by_name(id, object, name, type, space, bsvi_h5p_default(), bsvi_h5p_default(), bsvi_h5p_default())
        guard a >= 0 else { throw fail(object, "cannot create attribute '\(name)'") }
        defer { H5Aclose(a) }
        guard H5Awrite(a, type, data) >= 0 else { throw fail(object, "cannot write attribute '\(name)'") }
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
    public func setAttribute(_ name: String, on object: String = "/", _ value: String) throws {
        let type = Self.variableStringType()
        defer { H5Tclose(type) }
        try value.withCString { cString in
            var pointer: UnsafePointer<CChar>? = cString
            try writeAttribute(name, on: object, type: type, dims: [], data: &pointer)
        }
    }

    private func openAttribute(_ name: String, on object: String) throws -> hid_t {
        guard try hasAttribute(name, on: object) else { throw fail(object, "attribute '\(name)' is missing") }
        let a = H5Aopen_by_name(id, object, name, bsvi_h5p_default(), bsvi_h5p_default())
        guard a >= 0 else { throw fail(object, "cannot open attribute '\(name)'") }
        return a
    }

    private func attributeElementCount(_ a: hid_t) -> Int {
        let space = H5Aget_space(a)
        defer { H5Sclose(space) }
        return Int(H5Sget_simple_extent_npoints(space))
    }

    /// Integer attribute (any integer or float type, converted), scalar or array.
    public func int64Attribute(_ name: String, on object: String = "/") throws -> [Int64] {
        let a = try openAttribute(name, on: object)
        defer { H5Aclose(a) }
        let type = H5Aget_type(a)
        defer { H5Tclose(type) }
        let cls = H5Tget_class(type)
        guard cls == H5T_INTEGER || cls == H5T_FLOAT else {
            throw fail(object, "attribute '\(name)' should be an integer, found \(HDF5File.elementType(of: type))")
        }
        var values = [Int64](repeating: 0, count: attributeElementCount(a))
        guard values.isEmpty || H5Aread(a, bsvi_h5t_native_int64(), &values) >= 0 else {
            throw fail(object, "cannot read attribute '\(name)'")
        }
        return values
    }

    public func scalarInt64Attribute(_ name: String, on object: String = "/") throws -> Int64 {
        let v = try int64Attribute(name, on: object)
        guard v.count == 1 else { throw fail(object, "attribute '\(name)' should be a single integer, found \(v.count) values") }
        return v[0]
    }

    public func doubleAttribute(_ name: String, on object: String = "/") throws -> Double {
        let a = try openAttribute(name, on: object)
        defer { H5Aclose(a) }
        var v = 0.0
        guard attributeElementCount(a) == 1, H5Aread(a, bsvi_h5t_native_double(), &v) >= 0 else {
            throw fail(object, "attribute '\(name)' should be a single number")
        }
        return v
    }

    /// String attribute, fixed-length or variable-length (h5py writes the latter).
    public func stringAttribute(_ name: String, on object: String = "/") throws -> String {
        let a = try openAttribute(name, on: object)
        defer { H5Aclose(a) }
        let type = H5Aget_type(a)
        defer { H5Tclose(type) }
        guard H5Tget_class(type) == H5T_STRING, attributeElementCount(a) == 1 else {
            throw fail(object, "attribute '\(name)' should be a string")
        }
        if H5Tis_variable_str(type) > 0 {
            let mem = Self.variableStringType()
            defer { H5Tclose(mem) }
            var ptr: UnsafeMutablePointer<CChar>? = nil
            guard H5Aread(a, mem, &ptr) >= 0 else { throw fail(object, "cannot read attribute '\(name)'") }
            defer { H5free_memory(ptr) }
            return ptr.map { String(cString: $0) } ?? ""
        }
        let width = H5Tget_size(type)
        var bytes = [UInt8](repeating: 0, count: width + 1)
        guard H5Aread(a, type, &bytes) >= 0 else { throw fail(object, "cannot read attribute '\(name)'") }
        return String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
    }
}
