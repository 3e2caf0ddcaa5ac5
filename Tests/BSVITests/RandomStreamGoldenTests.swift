import BSVI
import Testing

/// Golden values of the random streams, recorded from the implementation that trained the
/// published runs (2026-11). Every resumed run and every comparison across versions depends on
/// these numbers staying the same, and the statistical tests would not notice a change: a
/// different mixer or a reordered Box–Muller still looks perfectly random. The normals must be
/// bit-identical on every kernel path (the sampler's kernel is computed without contraction).
@Suite("Random streams: golden values")
struct RandomStreamGoldenTests {
    static let stream = RandomStream(seed: 42, purpose: .trainingNoise, 3, 5, 7)

    static func normals(count: Int, counterOffset: UInt64, path: KernelPath) -> [Float] {
        var out = [Float](repeating: .nan, count: count)
        onPath(path) { out.withUnsafeMutableBufferPointer { stream.fillNormals($0.baseAddress!, count: count, counterOffset: counterOffset) } }
        return out
    }

    @Test("keys, bits, uniforms, indices and permutations")
    func integerStreams() {
        let s = Self.stream
        #expect(s.key == 0xc976_d6fb_af0d_7fd2)
        #expect((0..<4).map { s.bits(UInt64($0)) } == [0xba05_4186_adda_1d8d, 0x467f_99c2_2d21_363c, 0xbf1f_e203_2e6e_1636, 0xaed6_e75a_37f4_8dea])
        #expect((0..<3).map { s.uniform(UInt64($0)).bitPattern } == [4_604_720_235_127_618_372, 4_598_632_506_601_457_741, 4_604_899_816_561_298_882])
        #expect((0..<5).map { s.index(UInt64($0), below: 1000) } == [726, 275, 746, 682, 112])
        #expect(RandomStream(seed: 1, purpose: .shuffle, 0, 0).permutation(count: 12) == [8, 2, 1, 0, 5, 9, 4, 6, 3, 7, 11, 10])
    }

    @Test("normals: the same bits on every kernel path", arguments: KernelPath.supported)
    func normals(path: KernelPath) {
        let long = Self.normals(count: 1000, counterOffset: 16, path: path)
        #expect(long[0..<8].map(\.bitPattern) == [0xbf3b_cc30, 0xbf61_cf7a, 0x3d9f_1646, 0x3d03_038c, 0xbf9a_b10b, 0x3fea_506d, 0x3fe8_154a, 0xbf1a_9eaf])
        #expect(long[32..<36].map(\.bitPattern) == [0x3f36_12ea, 0x3fe0_36f0, 0x3f59_e2b2, 0x3e04_841c])
        #expect(fingerprint(long) == 0xf9a1_43f2_3a8d_32f8)
        // A latent row of 50: one full block of 32 and a partial one.
        #expect(fingerprint(Self.normals(count: 50, counterOffset: 0, path: path)) == 0x9b60_b38d_d3db_9983)
    }
}
