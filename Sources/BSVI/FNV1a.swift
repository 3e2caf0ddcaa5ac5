/// 64-bit FNV-1a: a fixed hash of bytes, the same in every process and on every host (unlike
/// Swift's per-process seeded `Hasher`), for values ranks compare: parameter checksums, dataset
/// fingerprints.
public struct FNV1a {
    public private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    public init() {}

    public mutating func add(_ byte: UInt8) { value = (value ^ UInt64(byte)) &* 0x100_0000_01b3 }

    public mutating func add<Bytes: Sequence<UInt8>>(_ bytes: Bytes) { for byte in bytes { add(byte) } }
}
