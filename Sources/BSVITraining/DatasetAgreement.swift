import BSVIParallel
import BSVIStorage
import Foundation

/// Whether every rank sees the same dataset file: each rank's `DatasetFingerprint` against
/// rank 0's. Pure: the comparison and the message, without the exchange (`requireSameDataset`).
public struct DatasetAgreement: Equatable {
    /// Every rank's fingerprint, rank 0's first.
    public let fingerprints: [DatasetFingerprint]

    public init(fingerprints: [DatasetFingerprint]) {
        precondition(!fingerprints.isEmpty, "at least rank 0's fingerprint")
        self.fingerprints = fingerprints
    }

    /// The ranks whose fingerprint differs from rank 0's, in rank order.
    public var disagreeingRanks: [Int] { fingerprints.indices.filter { fingerprints[$0] != fingerprints[0] } }

    /// The ranks a message names: rank 0 and the first few that disagree (with thousands of
    /// ranks on a wrong file, the first ones are enough to find the bad hosts).
    public var namedRanks: [Int] { [0] + disagreeingRanks.prefix(Self.namedDisagreeingRanks) }
    public static let namedDisagreeingRanks = 4

    public static let fix = "give every rank the same dataset file (copies must be identical)"

    /// What is wrong, for `TrainingError.data`; nil when every rank agrees. `hosts` names the
    /// host of each of `namedRanks` that is known, `paths` its --data as given: a rank whose
    /// path differs from rank 0's (an MPMD launch, one --data per program) is named with it.
    public func problem(hosts: [Int: String], paths: [Int: String] = [:]) -> String? {
        let disagreeing = disagreeingRanks
        guard !disagreeing.isEmpty else { return nil }
        func name(_ rank: Int) -> String {
            let path = rank != 0 && paths[rank] != paths[0] ? paths[rank].map { "--data \($0)" } : nil
            let details = [hosts[rank].map { "host \($0)" }, path].compactMap { $0 }
            return details.isEmpty ? "rank \(rank)" : "rank \(rank) (" + details.joined(separator: ", ") + ")"
        }
        let shown = disagreeing.prefix(Self.namedDisagreeingRanks).map { rank in
            "\(name(rank)) sees " + fingerprints[rank].differences(from: fingerprints[0], referenceName: "rank 0").joined(separator: ", ")
        }
        let more = disagreeing.count > shown.count ? "; and \(disagreeing.count - shown.count) more rank(s)" : ""
        let samePath = shown.indices.allSatisfy { paths[disagreeing[$0]] == paths[0] }
        return "the ranks see different files" + (samePath ? " at this path" : "")
            + ": \(disagreeing.count) of \(fingerprints.count) ranks differ from \(name(0)): " + shown.joined(separator: "; ") + more
    }
}

extension Communicator {
    /// `split`'s shape as every rank's copy has it. Every rank reads the same file (or an
    /// identical copy, `requireSameDataset`), so a split missing or unusable (no /test, float
    /// pixels) fails on every rank alike: rank 0 alone reports it and every rank leaves with its
    /// exit status, instead of each printing it and aborting the job. A collective.
    public func agreedShape(of split: DataSplit, in dataset: BinaryDataset) throws -> (rows: Int, width: Int) {
        try onEveryRank { try dataset.shape(of: split) }
    }

    /// Stops the run on every rank, with the same error, unless every rank's `dataset` has the
    /// same fingerprint as rank 0's. A collective (one allgather per fingerprint word, and when
    /// they differ two broadcasts, host name and path, per named rank): every rank calls it at the same
    /// point, unconditionally, before anything collective depends on the file. Only rank 0
    /// prints the error; every rank exits with status 65.
    public func requireSameDataset(_ dataset: BinaryDataset) throws {
        let gathered = allgather(DatasetFingerprint(of: dataset).words)
        let agreement = DatasetAgreement(fingerprints: gathered.map { DatasetFingerprint(words: $0) })
        // Every rank holds the same gathered fingerprints, so every rank takes this branch or none.
        guard !agreement.disagreeingRanks.isEmpty else { return }
        var hosts: [Int: String] = [:], paths: [Int: String] = [:]
        for rank in agreement.namedRanks {
            hosts[rank] = broadcast(string: self.rank == rank ? localHostName() : "", root: rank)
            paths[rank] = broadcast(string: self.rank == rank ? dataset.path : "", root: rank)
        }
        let problem = agreement.problem(hosts: hosts, paths: paths) ?? ""
        throw CollectiveError(TrainingError.data(file: dataset.path, problem: problem, fix: DatasetAgreement.fix), isRoot: isRoot)
    }
}
