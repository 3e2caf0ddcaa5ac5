/// One named tensor inside the flat parameter vector.
public struct ParameterTensor: Sendable, Equatable {
    public let name: String
    public let shape: [Int]
    public let offset: Int
    public var count: Int { shape.reduce(1, *) }
    /// Its floats in the flat vector.
    public var range: Range<Int> { offset..<(offset + count) }
}

/// The order and shapes of every trainable tensor in one flat Float32 vector. Parameters,
/// gradients and both Adam moments share this layout, so the gradient allreduce and the
/// optimizer each handle a single contiguous buffer.
///
/// Every tensor starts on a cache line: its offset is a multiple of `alignment` floats, and the
/// vector's buffer is 64-byte aligned (`bsvi_allocate_floats`). Packed end to end, the default
/// decoder's 200 × 784 output kernel would start 16 bytes into a line, so every row of a 16-wide
/// strip the forward product reads would span two lines (32 floats on AVX-512: three); the AVX2
/// kernels copied each strip into an aligned panel per call instead. On a cache line they read it
/// in place: the products' bits are the same (docs/benchmarks.md, stop 53). The few floats between
/// tensors (`gaps`) hold zeros: buffers start zeroed, an objective that overwrites its gradients
/// zeroes them, and Adam leaves a zero parameter with zero gradient at zero. Checkpoints store the
/// tensors without the gaps (`packed`), as docs/checkpoint-format.md lays the moment vectors out.
public struct ParameterLayout: Sendable, Equatable {
    /// Floats in a 64-byte cache line.
    public static let alignment = 16

    public private(set) var tensors: [ParameterTensor] = []
    /// Floats in the flat vector: the tensors and the gaps that start each on a cache line.
    public private(set) var vectorLength = 0
    /// The parameters themselves: the tensors' element counts summed, without the gaps.
    public private(set) var parameterCount = 0

    public init() {}

    @discardableResult
    public mutating func add(_ name: String, shape: [Int]) -> ParameterTensor {
        precondition(tensor(named: name) == nil, "duplicate parameter \(name)")
        let offset = (vectorLength + Self.alignment - 1) / Self.alignment * Self.alignment
        let t = ParameterTensor(name: name, shape: shape, offset: offset)
        tensors.append(t)
        vectorLength = offset + t.count
        parameterCount += t.count
        return t
    }

    public func tensor(named name: String) -> ParameterTensor? { tensors.first { $0.name == name } }

    /// The floats of the vector that belong to no tensor, in order.
    public var gaps: [Range<Int>] {
        var end = 0
        var result: [Range<Int>] = []
        for t in tensors {
            if t.offset > end { result.append(end..<t.offset) }
            end = t.range.upperBound
        }
        return result
    }

    /// Sets the gaps of a flat vector to zero.
    public func zeroGaps(_ vector: UnsafeMutablePointer<Float>) {
        for g in gaps { (vector + g.lowerBound).update(repeating: 0, count: g.count) }
    }

    /// The tensors of a flat vector end to end, in layout order, without the gaps
    /// (`parameterCount` values): the order of a checkpoint's moment vectors.
    public func packed(_ vector: UnsafeBufferPointer<Float>) -> [Float] {
        precondition(vector.count == vectorLength, "a vector of \(vector.count) floats, the layout has \(vectorLength)")
        var values: [Float] = []
        values.reserveCapacity(parameterCount)
        for t in tensors { values.append(contentsOf: vector[t.range]) }
        return values
    }

    public func packed(_ vector: [Float]) -> [Float] { vector.withUnsafeBufferPointer { packed($0) } }

    /// The flat vector (`vectorLength` floats, zeros in the gaps) of values packed by `packed`.
    public func unpacked(_ values: [Float]) -> [Float] {
        precondition(values.count == parameterCount, "\(values.count) packed values, the layout has \(parameterCount) parameters")
        var vector = [Float](repeating: 0, count: vectorLength)
        var next = 0
        for t in tensors {
            vector.replaceSubrange(t.range, with: values[next..<(next + t.count)])
            next += t.count
        }
        return vector
    }
}
