import BSVIStorage
import CHDF5
import CHDF5Shims
import DataFixtures
import Foundation
import Testing

@Suite("Import: datasets of any HDF5 file")
struct HDF5ImportTests {
    @Test("FILE:/path names a dataset anywhere (uint8 N×H×W, float64 N×D); /x_train and /x_test are found without a path")
    func anyPath() throws {
        let dir = try makeScratchFolder("h5")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let images = randomBits(10 * 6, seed: 41), heldout = randomBits(4 * 6, seed: 42)
        let f = try HDF5File.create(dir + "/in.h5")
        try images.withUnsafeBufferPointer { try f.writeUInt8("/deep/group/images", $0, shape: [10, 2, 3]) }
        try f.writeDoubles("/flat", heldout.map(Double.init))  // 1-D: refused below
        try f.writeFloats("/x_train", images.map(Float.init), shape: [10, 6])
        try f.writeFloats("/x_test", heldout.map(Float.init), shape: [4, 6])
        try f.close()
        let summary = try runImport(dir) {
            $0.train = dir + "/in.h5:/deep/group/images"
            $0.test = dir + "/in.h5:x_test"
            $0.validFromTrain = 3
        }
        #expect(try stored(dir, .train) + stored(dir, .valid) == images)
        #expect(try stored(dir, .test) == heldout)
        #expect(summary.imageShape == ImageShape(height: 2, width: 3))
        try runImport(dir) {
            $0.train = dir + "/in.h5"
            $0.validFromTrain = 3
            $0.imageShape = ImageShape(height: 3, width: 2)
        }
        #expect(try stored(dir, .train) + stored(dir, .valid) == images)
        #expect(try stored(dir, .test) == heldout)

        let flat = importError(dir) {
            $0.train = dir + "/in.h5:/flat"
            $0.test = dir + "/in.h5:x_test"
        }
        expectError(flat, .badData, mentions: ["in.h5", "/flat", "shape is (24)"])
        let missing = importError(dir) {
            $0.train = dir + "/in.h5:/nope"
            $0.test = dir + "/in.h5:x_test"
        }
        expectError(missing, .missingInput, mentions: ["in.h5", "/nope", "deep, flat, x_test, x_train"])
    }

    /// A 2-D int64 dataset through the C API (HDF5File writes int64 only as 1-D).
    static func writeInt64Matrix(_ path: String, _ name: String, _ values: [Int64], rows: Int, cols: Int) throws {
        let file = H5Fcreate(path, bsvi_h5f_acc_trunc(), bsvi_h5p_default(), bsvi_h5p_default())
        var dims: [hsize_t] = [hsize_t(rows), hsize_t(cols)]
        let space = H5Screate_simple(2, &dims, nil)
        let d = H5Dcreate2(file, name, H5T_STD_I64LE_g, space, bsvi_h5p_default(), bsvi_h5p_default(), bsvi_h5p_default())
        let status = H5Dwrite(d, bsvi_h5t_native_int64(), bsvi_h5s_all(), bsvi_h5s_all(), bsvi_h5p_default(), values)
        H5Dclose(d)
        H5Sclose(space)
        H5Fclose(file)
        try #require(file >= 0 && d >= 0 && status >= 0)
    }

    @Test("integer datasets hold 0–255 (int64 is read too); 300 is outside the range, floats outside [0, 1] likewise")
    func valueRanges() throws {
        let dir = try makeScratchFolder("h5-range")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.writeInt64Matrix(dir + "/ints.h5", "/x", [0, 255, 0, 128, 1, 300, 0, 0], rows: 2, cols: 4)
        let ints = importError(dir) {
            $0.train = dir + "/ints.h5:/x"
            $0.test = dir + "/ints.h5:/x"
            $0.validFromTrain = 1
            $0.imageShape = ImageShape(height: 2, width: 2)
        }
        expectError(ints, .badData, mentions: ["ints.h5", "/x", "row 1, column 1", "300", "outside 0–255"])
        try Self.writeInt64Matrix(dir + "/ints.h5", "/x", [0, 255, 0, 128, 1, 30, 0, 0], rows: 2, cols: 4)
        try runImport(dir, seed: 4) {
            $0.train = dir + "/ints.h5:/x"
            $0.test = dir + "/ints.h5:/x"
            $0.validFromTrain = 1
            $0.imageShape = ImageShape(height: 2, width: 2)
            $0.binarization = .dynamic
        }
        #expect(try stored(dir, .train) == [0, 255, 0, 128])

        let g = try HDF5File.create(dir + "/floats.h5")
        try g.writeFloats("/x", [0, 1, 0, 1, 1, 1.5, 0, 0], shape: [2, 4])
        try g.close()
        let floats = importError(dir) {
            $0.train = dir + "/floats.h5:/x"
            $0.test = dir + "/floats.h5:/x"
            $0.validFromTrain = 1
            $0.imageShape = ImageShape(height: 2, width: 2)
        }
        expectError(floats, .badData, mentions: ["floats.h5", "/x", "row 1, column 1", "1.5", "outside [0, 1]"])
    }

    /// A 2-D one-byte enum dataset through the C API, with the members `values` on an unsigned
    /// or signed base type (h5py.enum_dtype({...}, basetype='u1' or 'i1')).
    static func writeEnumMatrix(_ path: String, _ name: String, _ values: [UInt8], rows: Int, cols: Int, signed: Bool) throws {
        let file = H5Fcreate(path, bsvi_h5f_acc_trunc(), bsvi_h5p_default(), bsvi_h5p_default())
        let type = H5Tenum_create(signed ? H5T_STD_I8LE_g : H5T_STD_U8LE_g)
        for (i, member) in Set(values).sorted().enumerated() {
            var value = member
            try #require(H5Tenum_insert(type, "M\(i)", &value) >= 0)
        }
        var dims: [hsize_t] = [hsize_t(rows), hsize_t(cols)]
        let space = H5Screate_simple(2, &dims, nil)
        let d = H5Dcreate2(file, name, type, space, bsvi_h5p_default(), bsvi_h5p_default(), bsvi_h5p_default())
        let status = H5Dwrite(d, type, bsvi_h5s_all(), bsvi_h5s_all(), bsvi_h5p_default(), values)
        H5Dclose(d)
        H5Sclose(space)
        H5Tclose(type)
        H5Fclose(file)
        try #require(file >= 0 && d >= 0 && status >= 0)
    }

    @Test("a one-byte enum's value is reported as stored: 200 of a uint8 enum is not −56, −3 of an int8 enum stays −3")
    func enumValues() throws {
        let dir = try makeScratchFolder("h5-enum")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for (signed, value, says) in [(false, UInt8(200), "holds 200.0,"), (true, UInt8(bitPattern: -3), "holds -3.0,")] {
            try Self.writeEnumMatrix(dir + "/enum.h5", "/x", [0, 1, 0, 1, 1, value, 0, 0], rows: 2, cols: 4, signed: signed)
            let error = importError(dir) {
                $0.train = dir + "/enum.h5:/x"
                $0.test = dir + "/enum.h5:/x"
                $0.validFromTrain = 1
                $0.imageShape = ImageShape(height: 2, width: 2)
            }
            expectError(error, .badData, mentions: ["enum.h5", "/x", "row 1, column 1", says, "outside [0, 1]", "bool (enum)"])
        }
    }
}
