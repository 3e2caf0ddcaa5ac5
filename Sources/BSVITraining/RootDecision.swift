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
