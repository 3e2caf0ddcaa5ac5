import BSVI
import BSVIParallel
import Foundation

extension Communicator {
    /// "Rank 0 decides, every rank learns": runs `decide` on rank 0 only (reading files,
    /// preparing data, loading a checkpoint) and gives every rank its result — or, when rank 0
    /// failed, the same CollectiveError (message and exit status) on every rank, so all stop
    /// together and only rank 0 reports. A collective: every rank calls it at the same point.
    public func rootDecides<T: Codable>(_ decide: () throws -> T) throws -> T {
        var payload = Data()
        if isRoot {
            let outcome: RootOutcome<T>
            do { outcome = .value(try decide()) } catch { outcome = .failure(CollectiveError(error, isRoot: true)) }
            // Rank 0 must reach the broadcast whatever happens, or the others wait in it forever:
            // a value that cannot be encoded travels as the failure it is.
            do {
                payload = try Self.payloadEncoder.encode(outcome)
            } catch {
                payload = (try? Self.payloadEncoder.encode(RootOutcome<T>.failure(CollectiveError(error, isRoot: true)))) ?? Data()
            }
        }
        payload = Data(broadcast(bytes: Array(payload), root: 0))
        switch try Self.payloadDecoder.decode(RootOutcome<T>.self, from: payload) {
        case .value(let value): return value
        case .failure(let error): throw CollectiveError(message: error.message, exitStatus: error.exitStatus, silent: !isRoot)
        }
    }

    /// ±∞ and NaN travel as strings (a diverged refinement's −∞ epoch sum is a legitimate value).
    private static var payloadEncoder: JSONEncoder {
        let e = JSONEncoder()
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return e
    }
    private static var payloadDecoder: JSONDecoder {
        let d = JSONDecoder()
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return d
    }

    /// `rootDecides` for a decision that returns nothing but may fail.
    public func rootDecides(_ decide: () throws -> Void) throws {
        let _: Bool = try rootDecides { try decide(); return true }
    }
}

/// What rank 0 decided: a value, or the error every rank stops with.
private enum RootOutcome<T: Codable>: Codable {
    case value(T)
    case failure(CollectiveError)
}

extension Communicator {
    /// Runs `open` on every rank (each reads its own copy of a file, as on hosts that do not share
    /// a file system) and agrees on the outcome before anyone goes on. When every rank fails the
    /// same way (a mistyped --data), rank 0 alone reports it instead of every rank; a rank whose
    /// failure differs from rank 0's (its host's copy) reports its own, named; ranks that
    /// succeeded while another failed stop silently with that failure's status. A collective.
    public func onEveryRank<T>(_ open: () throws -> T) throws -> T {
        let outcome = Result { try open() }
        // 0 for success, else the message's hash with the exit status in the low byte.
        var code: UInt64 = 0
        if case .failure(let error) = outcome {
            var hash = FNV1a()
            hash.add("\(error)".utf8)
            code = (hash.value << 8) | UInt64(ExitStatus(for: error).rawValue)
        }
        let codes = allgather(code)
        switch outcome {
        case .success(let value):
            guard let failed = codes.first(where: { $0 != 0 }) else { return value }
            throw CollectiveError(message: "another rank failed", exitStatus: ExitStatus(rawValue: Int32(failed & 0xff)) ?? .software, silent: true)
        case .failure(let error):
            throw CollectiveError(message: "\(error)", exitStatus: ExitStatus(for: error), silent: !(isRoot || codes[0] != code))
        }
    }
}
