import BSVI
import Foundation

/// What one process sees of a dataset file, in a few numbers that ranks can compare: each
/// split's rows and width, what /train holds, and a hash of the attributes that say where the
/// data came from. A run under MPI may read a separate copy of the file on every host
/// (docs/cluster.md); copies that differ would give the ranks different schedules and so
/// different collectives (a hang) or different shuffles (rows used twice or never). Built from
/// metadata alone: no row is read, so building it costs the same for any file size.
///
/// It is not a checksum of the rows: two copies with the same shapes and attributes but other
/// values agree here (a damaged chunk is caught by its Fletcher32 checksum when read).
public struct DatasetFingerprint: Equatable, Sendable {
    /// Rows and width of one split; `absent` when the split is missing or unusable (wrong type
    /// or rank, zero rows): the check that needs the split says why, once the ranks agree.
    public struct SplitShape: Equatable, Sendable, CustomStringConvertible {
        public var rows: Int
        public var width: Int
        public init(rows: Int, width: Int) {
            self.rows = rows
            self.width = width
        }
        public static let absent = SplitShape(rows: 0, width: 0)
        public var description: String { self == .absent ? "absent or unusable" : "\(rows) rows × \(width)" }
    }

    public var train: SplitShape
    public var valid: SplitShape
    public var test: SplitShape
    public var trainValues: SplitValues
    /// FNV-1a of `attributes`' names and values (absent ones included as absent), so that files
    /// of other sources or binarizations differ even when their shapes agree.
    public var attributesHash: UInt64
    /// The root attributes `attributesHash` covers (named in `differences`; not in `words`).
    public var attributes: [String]

    /// The root attributes that identify a dataset file's content (DESIGN.md §4, docs/data.md),
    /// as ranks compare their copies of one file.
    public static let identityAttributes = ["source", "binarization", "binarization_seed", "binarization_threshold",
                                            "image_height", "image_width"]
    /// What a run's checkpoints record of the data it trained on: the identity attributes but
    /// `source`, which holds the input path as typed to prepare-data, so that the same files
    /// prepared again from another folder (a job's scratch copy) are the same data.
    public static let trainingAttributes = identityAttributes.filter { $0 != "source" }

    public init(train: SplitShape, valid: SplitShape, test: SplitShape, trainValues: SplitValues, attributesHash: UInt64,
                attributes: [String] = identityAttributes) {
        self.train = train
        self.valid = valid
        self.test = test
        self.trainValues = trainValues
        self.attributesHash = attributesHash
        self.attributes = attributes
    }

    /// The fingerprint of an open dataset over `attributes`. Never throws: a split or attribute
    /// that cannot be read is recorded as such, so a rank with a damaged copy still takes part in
    /// the comparison.
    public init(of dataset: BinaryDataset, attributes: [String] = identityAttributes) {
        func shape(_ split: DataSplit) -> SplitShape {
            (try? dataset.shape(of: split)).map { SplitShape(rows: $0.rows, width: $0.width) } ?? .absent
        }
        self.init(train: shape(.train), valid: shape(.valid), test: shape(.test), trainValues: dataset.values(of: .train),
                  attributesHash: Self.hash(attributes.map { "\($0)=\(Self.attributeText($0, in: dataset.file))" }), attributes: attributes)
    }

    // MARK: Exchanging

    /// The fingerprint as a fixed number of 64-bit words (`wordCount`), for an allgather.
    public var words: [UInt64] {
        [train.rows, train.width, valid.rows, valid.width, test.rows, test.width].map { UInt64($0) }
            + [trainValues == .intensities ? 1 : 0, attributesHash]
    }

    public static let wordCount = 8

    /// What a run's checkpoints record of `dataset`, the data it trains on (`trainingAttributes`).
    public static func ofTrainingData(_ dataset: BinaryDataset) -> DatasetFingerprint { .init(of: dataset, attributes: trainingAttributes) }

    /// The fingerprint a checkpoint recorded as `words`.
    public static func ofTrainingData(words: [UInt64]) -> DatasetFingerprint { .init(words: words, attributes: trainingAttributes) }

    /// The fingerprint `words` came from (over `attributes`).
    public init(words w: [UInt64], attributes: [String] = identityAttributes) {
        precondition(w.count == Self.wordCount, "a dataset fingerprint is \(Self.wordCount) words, got \(w.count)")
        func shape(_ i: Int) -> SplitShape { SplitShape(rows: Int(truncatingIfNeeded: w[i]), width: Int(truncatingIfNeeded: w[i + 1])) }
        self.init(train: shape(0), valid: shape(2), test: shape(4), trainValues: w[6] == 1 ? .intensities : .binary, attributesHash: w[7],
                  attributes: attributes)
    }

    // MARK: Comparing

    /// How this fingerprint differs from `reference`, one phrase per difference, naming this
    /// value and the reference's (`referenceName`, e.g. "rank 0"); empty when they agree.
    public func differences(from reference: DatasetFingerprint, referenceName: String) -> [String] {
        var found: [String] = []
        for (name, mine, theirs) in [("/train", train, reference.train), ("/valid", valid, reference.valid), ("/test", test, reference.test)]
        where mine != theirs {
            found.append("\(name) \(mine) (\(referenceName): \(theirs))")
        }
        if trainValues != reference.trainValues {
            found.append("/train holds \(trainValues.rawValue) values (\(referenceName): \(reference.trainValues.rawValue))")
        }
        if attributesHash != reference.attributesHash {
            found.append("its attributes (\(attributes.joined(separator: ", "))) differ: hash "
                         + String(format: "%016llx", attributesHash) + " (\(referenceName): " + String(format: "%016llx", reference.attributesHash) + ")")
        }
        return found
    }

    // MARK: Attributes

    /// An attribute's value as text, "absent" or "unreadable"; floats by their bits, so equal
    /// text means equal values.
    static func attributeText(_ name: String, in file: HDF5File) -> String {
        guard (try? file.hasAttribute(name)) == true else { return "absent" }
        if let s = try? file.stringAttribute(name) { return "s:" + s }
        if let i = try? file.scalarInt64Attribute(name) { return "i:\(i)" }
        if let d = try? file.doubleAttribute(name) { return "d:" + String(d.bitPattern, radix: 16) }
        return "unreadable"
    }

    /// FNV-1a over the lines (each followed by a zero byte): the same on every host and in
    /// every process.
    static func hash(_ lines: [String]) -> UInt64 {
        var h = FNV1a()
        for line in lines { h.add(line.utf8 + [0]) }
        return h.value
    }
}
