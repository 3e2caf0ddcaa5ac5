import BSVI
import BSVIParallel

extension Communicator {
    /// Stops the run on every rank unless every rank was given the same settings as rank 0.
    /// An MPMD launch or a wrapper script that gives one rank another --seed would make it
    /// follow its own data order (rows used twice or never, and the final checksum check still
    /// passes: every rank applies the same allreduced update); another --max-steps would leave
    /// the others waiting in a collective. A collective: one allgather of a hash of the compared
    /// settings and, when they differ, one broadcast of the first differing rank's; rank 0 names
    /// the settings. Not compared: `--run-dir` (only rank 0 writes there) and `--data`, whose
    /// spellings may differ (`d.h5`, `./d.h5`) and whose file `requireSameDataset` compares.
    public func requireSameConfiguration(_ config: RunConfiguration) throws {
        let fields = ConfigurationField.all.filter { $0.role != .location && $0.flag != "--data" }
        var hash = FNV1a()
        for field in fields { hash.add("\(field.flag)=\(field.value(config))\n".utf8) }
        let gathered = allgather(hash.value)
        // Every rank holds the same hashes, so every rank takes this branch or none.
        let differing = gathered.indices.filter { gathered[$0] != gathered[0] }
        guard let other = differing.first else { return }
        let json = broadcast(string: rank == other ? ((try? config.jsonString()) ?? "") : "", root: other)
        var settings = ""
        if let theirs = try? RunConfiguration.fromJSON(json) {
            let comparison = ResumeComparison(saved: config, current: theirs)
            let changes = (comparison.mismatches + comparison.scheduleChanges).filter { $0.flag != "--data" }
            settings = changes.map { "\($0.flag) \($0.now) (rank 0: \($0.checkpoint))" }.joined(separator: ", ")
        }
        let named = differing.count == 1 ? "rank \(other)" : "ranks " + differing.map(String.init).joined(separator: ", ")
        throw CollectiveError(TrainingError.invalidConfiguration(
            flag: "settings", problem: "\(named) of \(size) got other settings than rank 0" + (settings.isEmpty ? "" : " (rank \(other): \(settings))") + "; "
                + "give every rank the same train flags (an MPMD launch or a wrapper script gave them differently)"), isRoot: isRoot)
    }
}
