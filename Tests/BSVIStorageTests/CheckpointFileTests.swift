import BSVI
import BSVIStorage
import Foundation
import Testing

/// A fresh empty folder under the system temp folder.
func makeScratchFolder(_ prefix: String) throws -> String {
    let path = NSTemporaryDirectory() + "bsvi-storage-\(prefix)-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// Offsets at which `pattern` occurs in `bytes`.
func occurrences(of pattern: [UInt8], in bytes: [UInt8]) -> [Int] {
    guard !pattern.isEmpty, bytes.count >= pattern.count else { return [] }
    var found: [Int] = []
    for start in 0...(bytes.count - pattern.count) where bytes[start] == pattern[0] {
        if bytes[start..<(start + pattern.count)].elementsEqual(pattern) { found.append(start) }
    }
    return found
}

func littleEndianBytes(_ values: ArraySlice<Float>) -> [UInt8] {
    values.flatMap { v -> [UInt8] in
        let b = v.bitPattern.littleEndian
        return [UInt8(b & 0xff), UInt8(b >> 8 & 0xff), UInt8(b >> 16 & 0xff), UInt8(b >> 24 & 0xff)]
    }
}

/// Values chosen so that a lossy conversion anywhere (Float64 round trips, sign of zero,
/// subnormals, the largest finite value) would change a bit pattern.
func awkwardFloats(_ n: Int, salt: UInt32) -> [Float] {
    let specials: [Float] = [-0.0, 0.0, .leastNonzeroMagnitude, -.leastNormalMagnitude, .greatestFiniteMagnitude,
                             -.greatestFiniteMagnitude, 1, .ulpOfOne, Float(bitPattern: 0x3EAA_AAAB)]
    return (0..<n).map { i in
        if i < specials.count { return specials[(i + Int(salt)) % specials.count] }
        // A scrambled but finite bit pattern: random mantissa and sign, exponent kept in range.
        var x = UInt32(truncatingIfNeeded: i) &* 2_654_435_761 ^ salt &* 40_503
        x ^= x >> 13
        x = x &* 0x5bd1_e995
        let mantissa = x & 0x007f_ffff, sign = (x >> 31) << 31
        let exponent = UInt32(1 + (x >> 23) % 253) << 23
        return Float(bitPattern: sign | exponent | mantissa)
    }
}

func sampleCheckpoint(withTraining: Bool = true, piCount: Int = 4, history: Int = 3) -> Checkpoint {
    let shape = ModelShape(inputDim: 6, latentDim: 3, hiddenDims: [5, 4], activation: .softplus)
    // Every parameter awkward, the layout's gaps zero (a file holds no gaps: reading gives zeros).
    let layout = VAEModel(shape: shape, piCount: piCount).layout
    let vector = { (salt: UInt32) in layout.unpacked(awkwardFloats(layout.parameterCount, salt: salt)) }
    let training = TrainingState(
        configJSON: #"{"hiddenDims":[5,4],"method":"bsvi","note":"quotes \" and unicode λ₀ π","seed":18446744073709551557}"#,
        seed: 18_446_744_073_709_551_557,  // above Int64.max: stored as the int64 with the same bits
        worldSize: 7, adamStep: 12_345, firstMoment: vector(2),
        secondMoment: vector(3).map { abs($0) }, skippedSteps: 17)  // step = 12,345 + 17
    let splits = ["valid", "test", "valid", "train"]
    let records = (0..<history).map { i in
        MetricRecord(step: 100 * (i + 1), epoch: i + 1, split: splits[i % splits.count], examples: 1000 + i, samples: 5000 - i,
                     logLikelihood: -90.123_456_789_012_3 - Double(i) / 3, elbo: -95.5 - Double(i) * .ulpOfOne,
                     elboRefined: -93.25 + 1e-300 * Double(i))
    }
    return Checkpoint(shape: shape, method: "bsvi", step: 12_362, epoch: 9, piCount: piCount,
                      parameters: vector(1), training: withTraining ? training : nil, history: records)
}

@Suite("Checkpoint file: write, read, validate")
struct CheckpointFileTests {
    @Test("--resume's counters are checked (a missing step resumed at 0, a negative one crashed); damage is an error for every reader")
    func trainingCountersValidated() throws {
        let dir = try makeScratchFolder("counters")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let original = sampleCheckpoint()
        let edits: [(String, (HDF5File) throws -> Void, String)] = [
            ("nostep", { f in try f.deleteAttribute("step") }, "lacks the root attribute step, which --resume needs"),
            ("negative", { f in try f.setAttribute("step", Int64(-5)) }, "do not fit together"),
            ("mismatch", { f in try f.setAttribute("step", Int64(12_363)) }, "step = adam_step + skipped_steps"),
            ("worldzero", { f in try f.setAttribute("world_size", on: "/training", Int64(0)) }, "world_size ≥ 1"),
            // HDF5's conversion turned NaN into INT64_MIN and 16.7 into 16.
            ("nanstep", { f in try f.setAttribute("adam_step", on: "/training", Double.nan) }, "should be a whole number, found nan"),
            ("fraction", { f in try f.setAttribute("adam_step", on: "/training", 12_345.5) }, "should be a whole number, found 12345.5"),
        ]
        for (name, edit, says) in edits {
            let path = dir + "/\(name).h5"
            try CheckpointFile.write(original, to: path)
            let f = try HDF5File.open(path, writable: true)
            try edit(f)
            try f.close()
            let e = #expect(throws: StorageError.self, "\(name)") { try CheckpointFile.read(path, requireTrainingState: true) }
            #expect(e?.description.contains(says) == true, "\(name): \(String(describing: e))")
            if name == "nostep" {
                // Missing, not damaged: eval, sample and inspect set /training aside and use the model.
                let modelOnly = try CheckpointFile.read(path)
                #expect(modelOnly.training == nil && modelOnly.unreadableTrainingState?.hasPrefix("/training lacks the root attribute step (set aside") == true)
                #expect(modelOnly.configurationJSON == original.training?.configJSON)
                #expect(modelOnly.parameters.map(\.bitPattern) == original.parameters.map(\.bitPattern))
            } else {
                #expect(throws: StorageError.self, "\(name)") { try CheckpointFile.read(path) }
            }
        }
        try CheckpointFile.write(original, to: dir + "/good.h5")
        #expect(try CheckpointFile.read(dir + "/good.h5").unreadableTrainingState == nil)
    }

    @Test("a checkpoint slimmed for sharing (moments deleted, a metrics column gone) still evaluates: those parts are set aside, named; --resume refuses it")
    func slimmedCheckpoint() throws {
        let dir = try makeScratchFolder("slim")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let original = sampleCheckpoint()
        try CheckpointFile.write(original, to: dir + "/slim.h5")
        let f = try HDF5File.open(dir + "/slim.h5", writable: true)
        try f.unlink("/training/adam_first_moment")
        try f.unlink("/training/adam_second_moment")
        try f.unlink("/metrics/elbo")
        try f.close()
        let c = try CheckpointFile.read(dir + "/slim.h5")
        #expect(c.training == nil && c.history.isEmpty)
        #expect(c.unreadableTrainingState == "/training lacks adam_first_moment, adam_second_moment (set aside: --resume cannot continue from this file); "
                + "/metrics lacks elbo (set aside: no evaluation history)", "\(c.unreadableTrainingState ?? "nil")")
        // The run's settings are still there for eval's and sample's defaults.
        #expect(c.configurationJSON == original.training?.configJSON)
        #expect(c.parameters.map(\.bitPattern) == original.parameters.map(\.bitPattern) && c.step == original.step)
        let e = #expect(throws: StorageError.self) { try CheckpointFile.read(dir + "/slim.h5", requireTrainingState: true) }
        #expect(e?.problem.contains("lacks adam_first_moment, adam_second_moment, which --resume needs") == true, "\(String(describing: e))")

        // What is present is still checked: a missing part must not hide damage in another.
        let damages: [(String, (HDF5File) throws -> Void, String)] = [
            ("world", { f in try f.setAttribute("world_size", on: "/training", Int64(-3)) }, "do not fit together"),
            ("seed", { f in try f.setAttribute("seed", on: "/training", 16.7) }, "whole number"),
            ("metrics", { f in try f.unlink("/metrics/log_likelihood"); try f.writeDoubles("/metrics/log_likelihood", [1, 2, 3, 4, 5, 6, 7]) },
             "metric columns have different lengths"),
        ]
        for (name, damage, says) in damages {
            let path = dir + "/slim-\(name).h5"
            try FileManager.default.copyItem(atPath: dir + "/slim.h5", toPath: path)
            let g = try HDF5File.open(path, writable: true)
            try damage(g)
            try g.close()
            let d = #expect(throws: StorageError.self, "\(name)") { try CheckpointFile.read(path) }
            #expect(d?.problem.contains(says) == true, "\(name): \(String(describing: d))")
        }
        // A moment present with a NaN, the other one deleted.
        try CheckpointFile.write(original, to: dir + "/nan-moment.h5")
        let g = try HDF5File.open(dir + "/nan-moment.h5", writable: true)
        try g.unlink("/training/adam_first_moment")
        try g.unlink("/training/adam_second_moment")
        let momentLength = original.model.layout.parameterCount
        try g.writeFloats("/training/adam_second_moment", [Float.nan] + Array(repeating: 0, count: momentLength - 1),
                          shape: [momentLength], checksummed: false)
        try g.close()
        let d = #expect(throws: StorageError.self) { try CheckpointFile.read(dir + "/nan-moment.h5") }
        #expect(d?.problem.contains("non-finite") == true, "\(String(describing: d))")
    }

    @Test("every field survives CheckpointFile.write then read, bit for bit")
    func roundTripEveryField() throws {
        let dir = try makeScratchFolder("roundtrip")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let original = sampleCheckpoint()
        let path = dir + "/ckpt.h5"
        try CheckpointFile.write(original, to: path)
        let back = try CheckpointFile.read(path, requireTrainingState: true)

        #expect(back.shape == original.shape)
        #expect(back.method == original.method)
        #expect(back.step == original.step)
        #expect(back.epoch == original.epoch)
        #expect(back.piCount == original.piCount)
        #expect(back.parameters.map(\.bitPattern) == original.parameters.map(\.bitPattern))
        // The π logits are the last tensor of the layout; they are stored in /training/pi_logits.
        let pi = try #require(back.model.piLogits)
        #expect(pi.offset + pi.count == back.parameters.count)
        #expect(back.parameters[pi.offset...].map(\.bitPattern) == original.parameters[pi.offset...].map(\.bitPattern))

        let t = try #require(back.training), o = try #require(original.training)
        #expect(t.configJSON == o.configJSON)
        #expect(t.seed == o.seed)
        #expect(t.worldSize == o.worldSize)
        #expect(t.adamStep == o.adamStep)
        #expect(t.skippedSteps == o.skippedSteps)
        #expect(t.firstMoment.map(\.bitPattern) == o.firstMoment.map(\.bitPattern))
        #expect(t.secondMoment.map(\.bitPattern) == o.secondMoment.map(\.bitPattern))

        #expect(back.history.count == original.history.count)
        for (a, b) in zip(back.history, original.history) {
            #expect(a.step == b.step && a.epoch == b.epoch && a.split == b.split)
            #expect(a.examples == b.examples && a.samples == b.samples)
            #expect(a.logLikelihood.bitPattern == b.logLikelihood.bitPattern)
            #expect(a.elbo.bitPattern == b.elbo.bitPattern)
            #expect(a.elboRefined.bitPattern == b.elboRefined.bitPattern)
        }
        #expect(back == original)
        // No temp file is left beside the checkpoint.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["ckpt.h5"])
    }

    @Test("a model-only checkpoint without π and with an empty history round-trips; --resume's reader refuses it")
    func roundTripModelOnly() throws {
        let dir = try makeScratchFolder("modelonly")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let original = sampleCheckpoint(withTraining: false, piCount: 0, history: 0)
        try CheckpointFile.write(original, to: dir + "/m.h5")
        let back = try CheckpointFile.read(dir + "/m.h5")
        #expect(back == original)
        #expect(back.training == nil && back.piCount == 0 && back.history.isEmpty)
        let error = #expect(throws: StorageError.self) { try CheckpointFile.read(dir + "/m.h5", requireTrainingState: true) }
        #expect(error?.object == "/training")
        #expect(error?.description.contains("--resume") == true)
    }

    @Test("the file has the layout of DESIGN.md §4 and every float dataset carries a Fletcher32 checksum")
    func layoutAndChecksums() throws {
        let dir = try makeScratchFolder("layout")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let c = sampleCheckpoint()
        try CheckpointFile.write(c, to: dir + "/c.h5")
        let f = try HDF5File.open(dir + "/c.h5")
        #expect(try f.stringAttribute("format") == "bsvi-checkpoint")
        #expect(try f.scalarInt64Attribute("format_version") == 1)
        #expect(try f.scalarInt64Attribute("step") == 12_362)
        #expect(try f.scalarInt64Attribute("epoch") == 9)
        #expect(try f.stringAttribute("method") == "bsvi")
        #expect(try f.scalarInt64Attribute("input_dim", on: "/model") == 6)
        #expect(try f.scalarInt64Attribute("latent_dim", on: "/model") == 3)
        #expect(try f.int64Attribute("hidden_dims", on: "/model") == [5, 4])
        #expect(try f.stringAttribute("activation", on: "/model") == "softplus")
        #expect(try f.stringAttribute("likelihood", on: "/model") == "bernoulli")
        #expect(try f.children(of: "/").sorted() == ["metrics", "model", "training"])
        #expect(try f.children(of: "/model/encoder") == ["dense_0", "dense_1", "dense_2"])
        #expect(try f.children(of: "/model/decoder") == ["dense_0", "dense_1", "dense_2"])
        // Encoder 6→5→4→2·3, decoder 3→4→5→6, kernels [in, out].
        let expected: [(String, [Int])] = [
            ("/model/encoder/dense_0/kernel", [6, 5]), ("/model/encoder/dense_1/kernel", [5, 4]),
            ("/model/encoder/dense_2/kernel", [4, 6]), ("/model/encoder/dense_2/bias", [6]),
            ("/model/decoder/dense_0/kernel", [3, 4]), ("/model/decoder/dense_2/kernel", [5, 6]),
            ("/model/decoder/dense_2/bias", [6]), ("/training/pi_logits", [4]),
        ]
        for (name, shape) in expected {
            let info = try f.datasetInfo(name)
            #expect(info.shape == shape, "\(name)")
            #expect(info.elementType == .float32, "\(name)")
        }
        let model = c.model
        for t in model.layout.tensors {
            let name = Checkpoint.datasetPath(for: t.name)
            #expect(try f.datasetInfo(name).hasFletcher32, "\(name) has no Fletcher32 filter")
            // Each dataset holds exactly its slice of the flat parameter vector.
            let values = try f.readFloats(name).values
            #expect(values.map(\.bitPattern) == c.parameters[t.range].map(\.bitPattern), "\(name)")
        }
        for name in ["/training/adam_first_moment", "/training/adam_second_moment"] {
            let info = try f.datasetInfo(name)
            #expect(info.shape == [model.layout.parameterCount] && info.hasFletcher32, "\(name)")
        }
        #expect(try f.stringAttribute("parameter_order", on: "/training")
                == model.layout.tensors.map { Checkpoint.datasetPath(for: $0.name) }.joined(separator: ","))
        #expect(try f.readStrings("/metrics/split") == ["valid", "test", "valid"])
        #expect(try f.datasetInfo("/metrics/log_likelihood").elementType == .float64)
        #expect(try f.datasetInfo("/metrics/step").elementType == .int64)
    }

    @Test("a flipped byte inside a parameter dataset fails the read with a checksum error")
    func flippedByteIsDetected() throws {
        let dir = try makeScratchFolder("flip")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let c = sampleCheckpoint()
        let path = dir + "/c.h5"
        try CheckpointFile.write(c, to: path)
        let t = try #require(c.model.layout.tensor(named: "decoder/dense_1/kernel"))
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let at = occurrences(of: littleEndianBytes(c.parameters[t.range]), in: bytes)
        try #require(at.count == 1, "the dataset's raw bytes should occur once in the file, found \(at.count)")
        bytes[at[0] + 4 * t.count / 2 + 1] ^= 0x10
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let error = #expect(throws: StorageError.self) { try CheckpointFile.read(path) }
        #expect(error?.object == "/model/decoder/dense_1/kernel")
        #expect(error?.problem.contains("checksum") == true)
    }

    @Test("the reader names the file, the dataset and the problem for files that do not match the model attributes")
    func readerValidates() throws {
        let dir = try makeScratchFolder("validate")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let good = sampleCheckpoint(withTraining: false, piCount: 0, history: 0)

        /// Writes `good` through the plain HDF5 API, letting `edit` change one thing.
        func writeModelOnly(_ path: String, omit: String? = nil, edit: (HDF5File) throws -> Void = { _ in },
                            values: (String, [Float]) -> [Float] = { $1 }, shapes: (String, [Int]) -> [Int] = { $1 }) throws {
            let f = try HDF5File.create(path)
            try f.createGroup("/model")
            try f.setAttribute("input_dim", on: "/model", Int64(good.shape.inputDim))
            try f.setAttribute("latent_dim", on: "/model", Int64(good.shape.latentDim))
            try f.setAttribute("hidden_dims", on: "/model", good.shape.hiddenDims.map(Int64.init))
            try f.setAttribute("activation", on: "/model", good.shape.activation.rawValue)
            for t in good.model.layout.tensors {
                let name = Checkpoint.datasetPath(for: t.name)
                if name == omit { continue }
                let v = values(name, Array(good.parameters[t.range]))
                let s = shapes(name, t.shape)
                if s.reduce(1, *) == v.count { try f.writeFloats(name, v, shape: s, checksummed: false) }
                else { try f.writeFloats(name, Array(v.prefix(s.reduce(1, *))), shape: s, checksummed: false) }
            }
            try edit(f)
            try f.close()
        }

        // The plain layout, without any bsvi-dist attributes, reads.
        try writeModelOnly(dir + "/plain.h5")
        let plain = try CheckpointFile.read(dir + "/plain.h5")
        #expect(plain.parameters.map(\.bitPattern) == good.parameters.map(\.bitPattern))
        #expect(plain.training == nil && plain.step == 0)

        try writeModelOnly(dir + "/shape.h5", shapes: { name, s in name == "/model/decoder/dense_1/kernel" ? [s[1], s[0]] : s })
        var e = #expect(throws: StorageError.self) { try CheckpointFile.read(dir + "/shape.h5") }
        #expect(e?.object == "/model/decoder/dense_1/kernel" && e?.problem.contains("shape") == true)
        #expect(e?.file == dir + "/shape.h5")

        try writeModelOnly(dir + "/nan.h5", values: { name, v in
            name == "/model/encoder/dense_1/bias" ? v.enumerated().map { $0.offset == 2 ? .nan : $0.element } : v })
        e = #expect(throws: StorageError.self) { try CheckpointFile.read(dir + "/nan.h5") }
        #expect(e?.object == "/model/encoder/dense_1/bias" && e?.problem.contains("non-finite") == true)
        #expect(e?.problem.contains("index 2") == true)
        #expect(e?.problem.contains("float32's range") == false)

        // A float64 weight of 1e39 is finite in the file: the message says why it is not here.
        try writeModelOnly(dir + "/wide.h5", omit: "/model/encoder/dense_0/bias", edit: { f in
            try f.writeDoubles("/model/encoder/dense_0/bias", [1e39, 0, 0, 0, 0])
        })
        e = #expect(throws: StorageError.self) { try CheckpointFile.read(dir + "/wide.h5") }
        #expect(e?.problem.contains("beyond float32's range") == true, "\(String(describing: e))")

        try writeModelOnly(dir + "/missing.h5", omit: "/model/decoder/dense_2/bias")
        e = #expect(throws: StorageError.self) { try CheckpointFile.read(dir + "/missing.h5") }
        #expect(e?.object == "/model/decoder/dense_2/bias" && e?.problem.contains("missing") == true, "\(String(describing: e))")

        // Attributes that disagree with the stored tensors: a third hidden layer the file lacks.
        try writeModelOnly(dir + "/deeper.h5", edit: { f in try f.setAttribute("hidden_dims", on: "/model", [Int64(5), 4, 3]) })
        e = #expect(throws: StorageError.self) { try CheckpointFile.read(dir + "/deeper.h5") }
        #expect(e?.object == "/model/encoder/dense_2/kernel" && e?.problem.contains("shape") == true)

        try writeModelOnly(dir + "/activation.h5", edit: { f in try f.setAttribute("activation", on: "/model", "gelu") })
        e = #expect(throws: StorageError.self) { try CheckpointFile.read(dir + "/activation.h5") }
        #expect(e?.problem.contains("gelu") == true)

        try writeModelOnly(dir + "/format.h5", edit: { f in try f.setAttribute("format", "something-else") })
        e = #expect(throws: StorageError.self) { try CheckpointFile.read(dir + "/format.h5") }
        #expect(e?.problem.contains("something-else") == true)

        try writeModelOnly(dir + "/version.h5", edit: { f in
            try f.setAttribute("format", Checkpoint.format)
            try f.setAttribute("format_version", Checkpoint.formatVersion + 1)
        })
        e = #expect(throws: StorageError.self) { try CheckpointFile.read(dir + "/version.h5") }
        #expect(e?.problem.contains("format_version") == true)

        // A /training group whose moments do not match the model is refused for --resume, not
        // half-loaded; a reader of the model alone sets it aside.
        let full = sampleCheckpoint()
        try CheckpointFile.write(full, to: dir + "/moments.h5")
        do {
            let f = try HDF5File.open(dir + "/moments.h5", writable: true)
            let moment = try f.readFloats("/training/adam_first_moment").values
            try f.unlink("/training/adam_first_moment")
            try f.writeFloats("/training/adam_first_moment", Array(moment.dropLast()), shape: [moment.count - 1])
            try f.close()
        }
        for require in [true, false] {
            e = #expect(throws: StorageError.self) { try CheckpointFile.read(dir + "/moments.h5", requireTrainingState: require) }
            #expect(e?.object == "/training" && e?.problem.contains("moments") == true)
        }

        try Data("not an HDF5 file\n".utf8).write(to: URL(fileURLWithPath: dir + "/text.h5"))
        e = #expect(throws: StorageError.self) { try CheckpointFile.read(dir + "/text.h5") }
        #expect(e?.problem.contains("not an HDF5 file") == true)
        e = #expect(throws: StorageError.self) { try CheckpointFile.read(dir + "/absent.h5") }
        #expect(e?.problem.contains("not found") == true)
    }

    @Test("the writer refuses non-finite parameters and leaves neither the file nor a temp file")
    func refusesNonFinite() throws {
        let dir = try makeScratchFolder("nonfinite")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var c = sampleCheckpoint()
        c.parameters[3] = .infinity
        #expect(throws: StorageError.self) { try CheckpointFile.write(c, to: dir + "/c.h5") }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)
    }

    @Test("AtomicFile: stale temp files go; without the folder's lock only those of writers that are no longer alive")
    func staleTemporaries() throws {
        let dir = try makeScratchFolder("atomic-stale")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let output = dir + "/out.h5"
        // Above Linux's largest pid (2²²): no process can have it.
        let dead = dir + "/.out.h5.tmp-2147483646", alive = dir + "/.out.h5.tmp-\(getpid())", other = dir + "/.other.h5.tmp-2147483646"
        let fresh = dir + "/.out.h5.tmp-2147483645"  // a pid unknown here, but written to just now (another host's writer)
        for path in [dead, alive, other, fresh] { try Data("partial".utf8).write(to: URL(fileURLWithPath: path)) }
        let idle = Date(timeIntervalSinceNow: -2 * AtomicFile.idleSecondsOfAbandoned)
        for path in [dead, alive, other] { try FileManager.default.setAttributes([.modificationDate: idle], ofItemAtPath: path) }
        AtomicFile.removeStaleTemporaryFiles(of: output, anyWriter: false)
        let left = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        #expect(left == [".other.h5.tmp-2147483646", ".out.h5.tmp-2147483645", ".out.h5.tmp-\(getpid())"].sorted(), "\(left)")
        AtomicFile.removeStaleTemporaryFiles(of: output)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == [".other.h5.tmp-2147483646"])
    }

    @Test("AtomicFile: a failing writer leaves the previous file intact and no temp file")
    func atomicReplace() throws {
        let dir = try makeScratchFolder("atomic")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let first = sampleCheckpoint()
        try CheckpointFile.write(first, to: dir + "/c.h5")
        struct Interrupted: Error {}
        #expect(throws: (any Error).self) {
            try AtomicFile.write(to: dir + "/c.h5") { tmp in
                #expect(URL(fileURLWithPath: tmp).deletingLastPathComponent().path == URL(fileURLWithPath: dir).path)
                #expect(tmp.hasSuffix(".tmp-\(getpid())"))
                try Data("half a file".utf8).write(to: URL(fileURLWithPath: tmp))
                throw Interrupted()
            }
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["c.h5"])
        #expect(try CheckpointFile.read(dir + "/c.h5") == first)
        // A successful replacement swaps the whole file.
        var second = first
        second.step += 1
        second.training?.adamStep += 1
        second.parameters[0] = 42
        try CheckpointFile.write(second, to: dir + "/c.h5")
        #expect(try CheckpointFile.read(dir + "/c.h5") == second)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["c.h5"])
        // The destination folder must exist.
        #expect(throws: StorageError.self) { try CheckpointFile.write(first, to: dir + "/missing/c.h5") }
    }
}
