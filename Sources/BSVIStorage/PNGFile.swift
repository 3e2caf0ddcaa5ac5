import CPNG
import Foundation

/// 8-bit grayscale images written and read with libpng's simplified API.
public enum PNGFile {
    /// Writes `pixels` (row-major, width × height bytes) atomically.
    public static func writeGray(_ pixels: [UInt8], width: Int, height: Int, to path: String) throws {
        precondition(pixels.count == width * height)
        try AtomicFile.write(to: path) { tmp in
            var image = png_image()
            image.version = UInt32(PNG_IMAGE_VERSION)
            image.width = UInt32(width)
            image.height = UInt32(height)
            image.format = UInt32(PNG_FORMAT_GRAY)
            let ok = pixels.withUnsafeBytes { png_image_write_to_file(&image, tmp, 0, $0.baseAddress, Int32(width), nil) }
            let message = withUnsafeBytes(of: image.message) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            png_image_free(&image)
            guard ok != 0 else { throw StorageError(file: path, problem: "libpng could not write the image: \(message)") }
        }
    }

    /// Reads any PNG as 8-bit grayscale; returns its size and pixels.
    public static func readGray(_ path: String) throws -> (width: Int, height: Int, pixels: [UInt8]) {
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        guard png_image_begin_read_from_file(&image, path) != 0 else {
            throw StorageError(file: path, problem: "not a readable PNG file")
        }
        image.format = UInt32(PNG_FORMAT_GRAY)
        var pixels = [UInt8](repeating: 0, count: Int(image.width * image.height))
        let ok = pixels.withUnsafeMutableBytes { png_image_finish_read(&image, nil, $0.baseAddress, Int32(image.width), nil) }
        defer { png_image_free(&image) }
        guard ok != 0 else { throw StorageError(file: path, problem: "libpng could not decode the image") }
        return (Int(image.width), Int(image.height), pixels)
    }
}
