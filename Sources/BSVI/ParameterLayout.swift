/// One named tensor inside the flat parameter vector.
public struct ParameterTensor: Sendable, Equatable {
    public let name: String
    public let shape: [Int]
    public let offset: Int
    public var count: Int { shape.reduce(1, *) }
}

/// The order and shapes of every trainable tensor in one flat Float32 vector. Parameters,
/// gradients and both Adam moments share this layout, so the gradient allreduce, the
/// optimizer and checkpoints each handle a single contiguous buffer.
public struct ParameterLayout: Sendable, Equatable {
    public private(set) var tensors: [ParameterTensor] = []
    public private(set) var count = 0

    public init() {}

    @discardableResult
    public mutating func add(_ name: String, shape: [Int]) -> ParameterTensor {
        precondition(tensor(named: name) == nil, "duplicate parameter \(name)")
        let t = ParameterTensor(name: name, shape: shape, offset: count)
        tensors.append(t)
        count += t.count
        return t
    }

    public func tensor(named name: String) -> ParameterTensor? { tensors.first { $0.name == name } }
}
