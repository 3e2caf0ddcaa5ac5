import CKernels
import Foundation

/// An owned, zero-initialized, 64-byte-aligned block of Float32s (on 2 MiB huge pages when
/// large; see bsvi_allocate_floats). The numerics keep all
/// parameters, gradients and workspaces in these so the step loop never allocates.
public final class FloatBuffer {
    public let count: Int
    public let base: UnsafeMutablePointer<Float>

    public init(count: Int) {
        precondition(count >= 0, "FloatBuffer count must be non-negative")
        self.count = count
        guard let raw = bsvi_allocate_floats(max(count, 1)) else {
            fatalError("out of memory allocating \(count) floats (\(count * 4 / 1_048_576) MiB)")
        }
        base = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        base.initialize(repeating: 0, count: max(count, 1))
    }

    public convenience init(_ values: [Float]) {
        self.init(count: values.count)
        for i in 0..<values.count { base[i] = values[i] }
    }

    deinit { free(base) }

    public subscript(i: Int) -> Float {
        get { base[i] }
        set { base[i] = newValue }
    }

    public var array: [Float] { Array(UnsafeBufferPointer(start: base, count: count)) }

    public func zero() { base.update(repeating: 0, count: count) }

    public func copy(from other: FloatBuffer) {
        precondition(other.count == count, "FloatBuffer copy between different sizes")
        base.update(from: other.base, count: count)
    }

    public func copy(from values: [Float]) {
        precondition(values.count == count, "FloatBuffer copy between different sizes")
        values.withUnsafeBufferPointer { base.update(from: $0.baseAddress!, count: count) }
    }

    /// A row-major matrix view of `rows × cols` elements starting at `offset`.
    public func matrix(rows: Int, cols: Int, offset: Int = 0) -> Matrix {
        precondition(offset >= 0 && offset + rows * cols <= count, "matrix view outside the buffer")
        return Matrix(base + offset, rows: rows, cols: cols)
    }
}
