import Foundation

/// `.amat` text files (plain or gzip): one example per line, values separated by whitespace —
/// the format of the statically binarized MNIST of Larochelle & Murray (2011),
/// binarized_mnist_{train,valid,test}.amat, whose values are 0 and 1. Values in [0, 1] are
/// accepted too (grayscale .amat files); anything else names its line.
final class AMatReader: RowReader {
    let location: InputLocation
    private(set) var width = 0
    let imageShape: ImageShape? = nil
    let declaredRows: Int? = nil
    let range = ValueRange.unit
    let elementType = "text"
    private let input: ByteInput
    private var buffer = [UInt8](repeating: 0, count: 1 << 20)
    private var start = 0, end = 0
    private var inputEnded = false
    private var lineNumber = 0
    private var firstRow: [Double]?
    private var firstLine = 0
    /// The line of each row of the chunk read last, so messages can name lines.
    private var chunkLines: [Int] = []
    private var chunkFirstRow = 0
    private var rowsReturned = 0

    init(path: String) throws {
        input = try GzipFileInput(path: path)
        location = input.location
        var values: [Double] = []
        while values.isEmpty {
            let found = try nextLine { line in
                values = []
                try self.parse(line) { index, value in
                    guard index < SizeLimits.maxRowWidth else {
                        throw self.location.error("line \(self.lineNumber) holds more than \(SizeLimits.maxRowWidth) values, more than a row "
                                                  + "may hold (images of at most 4096×4096 pixels)",
                                                  fix: "check the file: an .amat file holds one image per line")
                    }
                    values.append(value)
                }
            }
            guard found else {
                throw location.error("holds no rows (an empty split)", fix: "an .amat file has one example per line")
            }
        }
        firstRow = values
        firstLine = lineNumber
        width = values.count
    }

    func describeRow(_ index: Int) -> String {
        let i = index - chunkFirstRow
        return chunkLines.indices.contains(i) ? "line \(chunkLines[i])" : "row \(index)"
    }

    func read(upTo maxRows: Int, into out: UnsafeMutablePointer<Double>) throws -> Int {
        let n = try readRows(upTo: maxRows, into: out)
        rowsReturned += n
        return n
    }

    private func readRows(upTo maxRows: Int, into out: UnsafeMutablePointer<Double>) throws -> Int {
        var n = 0
        chunkFirstRow = rowsReturned
        chunkLines.removeAll(keepingCapacity: true)
        if let first = firstRow, maxRows > 0 {
            for i in 0..<width { out[i] = first[i] }
            firstRow = nil
            chunkLines.append(firstLine)
            n = 1
        }
        while n < maxRows {
            var count = 0
            let row = out + n * width
            let found = try nextLine { line in
                try self.parse(line) { index, value in
                    guard index < self.width else {
                        throw self.location.error("line \(self.lineNumber) has more than \(self.width) values; line \(self.firstLine) has \(self.width)",
                                                  fix: "every line must hold one example with the same number of values")
                    }
                    row[index] = value
                    count = index + 1
                }
            }
            if !found { break }
            if count == 0 { continue }  // blank line
            guard count == width else {
                throw location.error("line \(lineNumber) has \(count) values; line \(firstLine) has \(width)",
                                     fix: "every line must hold one example with the same number of values")
            }
            chunkLines.append(lineNumber)
            n += 1
        }
        return n
    }

    /// Calls `body` with the next line (without its newline); false at the end of the file.
    private func nextLine(_ body: (UnsafeBufferPointer<UInt8>) throws -> Void) throws -> Bool {
        while true {
            if let newline = buffer[start..<end].firstIndex(of: UInt8(ascii: "\n")) {
                lineNumber += 1
                let lineStart = start
                start = newline + 1
                try buffer.withUnsafeBufferPointer { try body(UnsafeBufferPointer(rebasing: $0[lineStart..<newline])) }
                return true
            }
            if inputEnded {
                guard start < end else { return false }
                lineNumber += 1
                let lineStart = start
                start = end
                try buffer.withUnsafeBufferPointer { try body(UnsafeBufferPointer(rebasing: $0[lineStart..<end])) }
                return true
            }
            // Keep the partial line, make room (growing the buffer for very long lines), read on.
            if start > 0 {
                buffer.withUnsafeMutableBufferPointer { b in
                    for i in 0..<(end - start) { b[i] = b[start + i] }
                }
                end -= start
                start = 0
            }
            if end == buffer.count {
                // A row of the most values allowed, each written in 32 characters, fits.
                guard buffer.count < Self.maxLineBytes else {
                    throw location.error("line \(lineNumber + 1) is longer than \(Self.maxLineBytes >> 20) MiB without a line break",
                                         fix: "check the file: an .amat file holds one image per line")
                }
                buffer += [UInt8](repeating: 0, count: buffer.count)
            }
            let got = try buffer.withUnsafeMutableBytes { try input.read(into: $0.baseAddress! + end, count: $0.count - end) }
            if got < buffer.count - end { inputEnded = true }
            end += got
        }
    }

    /// Splits a line at whitespace and hands each number, with its index, to `value`.
    private func parse(_ line: UnsafeBufferPointer<UInt8>, _ value: (Int, Double) throws -> Void) throws {
        var index = 0
        var i = 0
        var token = [CChar](repeating: 0, count: 64)
        while i < line.count {
            while i < line.count && isSpace(line[i]) { i += 1 }
            guard i < line.count else { break }
            let tokenStart = i
            while i < line.count && !isSpace(line[i]) { i += 1 }
            let length = i - tokenStart
            if length == 1 && (line[tokenStart] == UInt8(ascii: "0") || line[tokenStart] == UInt8(ascii: "1")) {
                try value(index, line[tokenStart] == UInt8(ascii: "1") ? 1 : 0)
            } else {
                if token.count <= length { token = [CChar](repeating: 0, count: length + 1) }
                for j in 0..<length { token[j] = CChar(bitPattern: line[tokenStart + j]) }
                token[length] = 0
                var parsed = 0.0
                let consumed = token.withUnsafeMutableBufferPointer { t -> Int in
                    var endPointer: UnsafeMutablePointer<CChar>? = nil
                    parsed = strtod(t.baseAddress!, &endPointer)
                    return endPointer.map { $0 - t.baseAddress! } ?? 0
                }
                guard consumed == length else {
                    let text = String(decoding: UnsafeBufferPointer(rebasing: line[tokenStart..<i]).prefix(40), as: UTF8.self)
                    throw location.error("line \(lineNumber), value \(index + 1): '\(text)' is not a number",
                                         fix: "an .amat file holds whitespace-separated numbers, one example per line")
                }
                try value(index, parsed)
            }
            index += 1
        }
    }

    static let maxLineBytes = 32 * SizeLimits.maxRowWidth

    private func isSpace(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 || c == 0x0d || c == 0x0b || c == 0x0c }
}
