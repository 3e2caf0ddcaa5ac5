import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Who holds a run folder's lock, as written in `<run-dir>/.lock`: the host, the process id,
/// when the run started and, inside a Slurm job, the job and how often Slurm had requeued it.
/// Only used to name the holder in messages and to recognise a lock file that a run which can
/// no longer be running left behind; the lock itself is the kernel's (see `RunFolderLock`).
public struct RunFolderLockHolder: Equatable, Sendable, CustomStringConvertible {
    /// A Slurm job (`SLURM_JOB_ID`) and its `SLURM_RESTART_COUNT`: a requeued job keeps its id
    /// and counts up, and Slurm ends all of a job's processes before it requeues it.
    public struct SlurmJob: Equatable, Sendable {
        public let id: String
        public let restart: Int
        public init(id: String, restart: Int) {
            self.id = id
            self.restart = restart
        }

        /// The job this process runs in, from the environment srun and sbatch give it.
        public static func current(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> SlurmJob? {
            guard let id = environment["SLURM_JOB_ID"], !id.isEmpty, !id.contains(where: \.isWhitespace) else { return nil }
            return SlurmJob(id: id, restart: environment["SLURM_RESTART_COUNT"].flatMap { Int($0) } ?? 0)
        }
    }

    public let host: String
    public let pid: Int32
    /// Whole seconds, so that the value survives a round trip through the file.
    public let since: Date
    public let job: SlurmJob?

    public init(host: String, pid: Int32, since: Date, job: SlurmJob? = nil) {
        self.host = host
        self.pid = pid
        self.since = Date(timeIntervalSince1970: since.timeIntervalSince1970.rounded(.down))
        self.job = job
    }

    /// This process, now.
    public static func current() -> RunFolderLockHolder {
        RunFolderLockHolder(host: localHostName(), pid: getpid(), since: Date(), job: .current())
    }

    /// "pid 4242 on host node17, since 2026-11-25T10:00:00Z" (", Slurm job 812 restart 1")
    public var description: String {
        "pid \(pid) on host \(host), since \(Self.timestamp(since))" + (job.map { ", Slurm job \($0.id) restart \($0.restart)" } ?? "")
    }

    /// The file's text: one `key=value` per line, readable with `cat`.
    var fileContents: String {
        "host=\(host)\npid=\(pid)\nsince=\(Self.timestamp(since))\n" + (job.map { "slurm_job=\($0.id)\nslurm_restart=\($0.restart)\n" } ?? "")
    }

    /// Parses `fileContents`; nil for anything else (a file cut short, edited, or not ours).
    init?(fileContents text: String) {
        var fields: [Substring: Substring] = [:]
        for line in text.split(separator: "\n") {
            guard let eq = line.firstIndex(of: "=") else { continue }
            fields[line[..<eq]] = line[line.index(after: eq)...]
        }
        guard let host = fields["host"], !host.isEmpty, let pid = fields["pid"].flatMap({ Int32($0) }), pid > 0,
              let since = fields["since"].flatMap({ ISO8601DateFormatter().date(from: String($0)) }) else { return nil }
        var job: SlurmJob? = nil
        if let id = fields["slurm_job"] {
            guard !id.isEmpty, let restart = fields["slurm_restart"].flatMap({ Int($0) }) else { return nil }
            job = SlurmJob(id: String(id), restart: restart)
        }
        self.init(host: String(host), pid: pid, since: since, job: job)
    }

    /// Whether the holder ran in an earlier incarnation of the Slurm job `me` runs in: then it
    /// has ended, wherever it ran, because Slurm requeues a job only after ending its processes.
    func isEarlierRun(ofJobOf me: RunFolderLockHolder) -> Bool {
        guard let mine = me.job, let theirs = job else { return false }
        return mine.id == theirs.id && theirs.restart < mine.restart
    }

    static func timestamp(_ date: Date) -> String { ISO8601DateFormatter().string(from: date) }
}
