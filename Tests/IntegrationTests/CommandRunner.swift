import BSVIStorage
import Foundation
import Testing

/// This checkout's top folder (Tests/IntegrationTests/ is two levels below it).
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// The release binary the integration tests launch (scripts/test builds it and exports its path).
func binaryPath() throws -> String {
    if let p = ProcessInfo.processInfo.environment["BSVI_DIST_BINARY"] { return p }
    let p = repositoryRoot.appendingPathComponent(".build/release/bsvi-dist").path
    try #require(FileManager.default.isExecutableFile(atPath: p),
                 "build the release binary first: swift build -c release --product bsvi-dist (scripts/test does)")
    return p
}

/// The variables scripts/mpi-env exports (root permission for Open MPI, one BLAS thread per
/// rank, ranks that yield while waiting), read from the script itself so the two never differ.
let mpiEnvironment: [String: String] = {
    let script = (try? String(contentsOf: repositoryRoot.appendingPathComponent("scripts/mpi-env"), encoding: .utf8)) ?? ""
    var variables: [String: String] = [:]
    for line in script.split(separator: "\n") where line.hasPrefix("export ") {
        for assignment in line.dropFirst(7).split(separator: " ") {
            let parts = assignment.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { variables[String(parts[0])] = String(parts[1]) }
        }
    }
    precondition(variables["OPENBLAS_NUM_THREADS"] != nil, "scripts/mpi-env was not found or exports nothing")
    return variables
}()

/// This process's environment plus scripts/mpi-env's settings and `extra`. With
/// `mpiSessionFolder` (a folder the caller removes afterwards), Open MPI keeps its session
/// directories there (`orte_tmpdir_base`) instead of in the /tmp/ompi.HOST.UID every mpirun
/// shares: a job that ends removes that shared folder once it looks empty, and a job starting
/// beside it then fails with "A call to mkdir was unable to create the desired directory"
/// (open-mpi/ompi#8510; it failed this suite's CI once, 2026-12-03). The suite runs many jobs at once.
func testEnvironment(_ extra: [String: String] = [:], unsetting: [String] = [], mpiSessionFolder: String? = nil) -> [String: String] {
    var env = ProcessInfo.processInfo.environment
    if let mpiSessionFolder { env["OMPI_MCA_orte_tmpdir_base"] = mpiSessionFolder }
    // scripts/test turns HDF5's file locks off for the test process only; children lock as the
    // caller's own runs would.
    if let callers = env.removeValue(forKey: "BSVI_TEST_CALLERS_HDF5_LOCKING") {
        env["HDF5_USE_FILE_LOCKING"] = callers == "unset" ? nil : callers
    }
    for (k, v) in mpiEnvironment { env[k] = v }
    for (k, v) in extra { env[k] = v }
    for k in unsetting { env[k] = nil }
    return env
}

/// Foundation's `Process.run()` opens a socketpair (not close-on-exec) whose end it watches for
/// the child's exit, and closes in the child only the descriptors open when it looked: a run() on
/// another thread in between hands its socket to this child, and that process's exit is then
/// reported only when this child ends too (a 1-s command "took" as long as a concurrent
/// training job). So the test processes start one at a time.
private let processLaunch = NSLock()

/// `process.run()`, never beside another launch of this test process.
func launch(_ process: Process) throws {
    processLaunch.lock()
    defer { processLaunch.unlock() }
    try process.run()
}

struct CommandResult {
    var status: Int32
    var stdout: String
    var stderr: String
    /// true when the process ended by a signal rather than exit().
    var signaled: Bool
    var timedOut: Bool
    var seconds: Double
}

/// Runs a command with its output in temp files (no pipe-buffer deadlocks) and a hard
/// timeout after which the process is killed and the result says so.
func runCommand(_ executable: String, _ arguments: [String], timeout: TimeInterval = 300,
                environment: [String: String] = [:], unsetting: [String] = [], directory: String? = nil) throws -> CommandResult {
    let dir = try makeTemporaryDirectory(prefix: "cmd")
    let outPath = dir + "/stdout", errPath = dir + "/stderr"
    FileManager.default.createFile(atPath: outPath, contents: nil)
    FileManager.default.createFile(atPath: errPath, contents: nil)
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = arguments
    p.environment = testEnvironment(environment, unsetting: unsetting, mpiSessionFolder: dir)
    if let directory { p.currentDirectoryURL = URL(fileURLWithPath: directory) }
    p.standardOutput = FileHandle(forWritingAtPath: outPath)
    p.standardError = FileHandle(forWritingAtPath: errPath)
    p.standardInput = FileHandle.nullDevice
    let done = DispatchSemaphore(value: 0)
    p.terminationHandler = { _ in done.signal() }
    let start = Date()
    try launch(p)
    var timedOut = false
    if done.wait(timeout: .now() + timeout) == .timedOut {
        timedOut = true
        kill(p.processIdentifier, SIGKILL)
        done.wait()
    }
    let out = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
    let err = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
    try? FileManager.default.removeItem(atPath: dir)
    return CommandResult(status: p.terminationStatus, stdout: out, stderr: err,
                         signaled: p.terminationReason == .uncaughtSignal, timedOut: timedOut,
                         seconds: Date().timeIntervalSince(start))
}

func bsvi(_ arguments: [String], timeout: TimeInterval = 300) throws -> CommandResult {
    try runCommand(try binaryPath(), arguments, timeout: timeout)
}

func mpirunPath() -> String {
    for p in ["/usr/bin/mpirun", "/usr/local/bin/mpirun"] where FileManager.default.isExecutableFile(atPath: p) { return p }
    return "/usr/bin/mpirun"
}

/// `mpirun --oversubscribe -np P bsvi-dist …`.
func mpirunBSVI(ranks: Int, _ arguments: [String], timeout: TimeInterval = 300, unsetting: [String] = []) throws -> CommandResult {
    try runCommand(mpirunPath(), ["--oversubscribe", "-np", "\(ranks)", try binaryPath()] + arguments, timeout: timeout, unsetting: unsetting)
}

/// `mpirun` with one rank per folder of `folders`, each started there (`--wdir`), all running
/// `bsvi-dist arguments`: a relative path then names a different file on each rank, as on hosts
/// that each hold their own copy of the dataset.
func mpirunBSVI(inFolders folders: [String], _ arguments: [String], timeout: TimeInterval = 300) throws -> CommandResult {
    let binary = try binaryPath()
    var mpirunArguments = ["--oversubscribe"]
    for (i, folder) in folders.enumerated() {
        if i > 0 { mpirunArguments.append(":") }
        mpirunArguments += ["-np", "1", "--wdir", folder, binary] + arguments
    }
    return try runCommand(mpirunPath(), mpirunArguments, timeout: timeout)
}

func makeTemporaryDirectory(prefix: String) throws -> String {
    let path = NSTemporaryDirectory() + "bsvi-\(prefix)-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// A small structured binary dataset: rows are noisy copies of a few random prototypes, so a
/// VAE has something to learn.
/// `edit` may change a split's values (row-major, `width` a row) before they are written.
func writeToyDataset(_ path: String, train: Int = 96, valid: Int = 24, test: Int = 20, width: Int = 16, seed: UInt64 = 7,
                     source: String = "toy", edit: (DataSplit, inout [UInt8]) -> Void = { _, _ in }) throws {
    var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
    func next() -> UInt64 {
        state ^= state << 13; state ^= state >> 7; state ^= state << 17
        return state
    }
    let prototypes = (0..<4).map { _ in (0..<width).map { _ in UInt8(next() % 2) } }
    func rows(_ n: Int, _ split: DataSplit) -> [UInt8] {
        var v: [UInt8] = []
        for _ in 0..<n {
            let p = prototypes[Int(next() % 4)]
            for c in 0..<width { v.append(next() % 10 == 0 ? 1 - p[c] : p[c]) }
        }
        edit(split, &v)
        return v
    }
    try BinaryDatasetWriter.write(to: path, splits: [
        .init(name: .train, rows: train, width: width, values: rows(train, .train)),
        .init(name: .valid, rows: valid, width: width, values: rows(valid, .valid)),
        .init(name: .test, rows: test, width: width, values: rows(test, .test)),
    ], imageHeight: 4, imageWidth: width / 4, source: source)
}

/// Flags for a tiny model so integration runs take seconds.
let tinyModel = ["--hidden", "8", "--latent", "2", "--eval-samples", "20"]

func readJSON(_ path: String) throws -> [String: Any] {
    let data = try Data(contentsOf: URL(fileURLWithPath: path))
    return try #require(JSONSerialization.jsonObject(with: data) as? [String: Any])
}

func parseJSONLine(_ s: String) throws -> [String: Any] {
    let line = try #require(s.split(separator: "\n").last, "no output")
    return try #require(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
}
