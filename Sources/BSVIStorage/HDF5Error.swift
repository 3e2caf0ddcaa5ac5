/// What sort of failure a `StorageError` reports; the command line turns it into the exit
/// status of sysexits.h (DESIGN.md §6). Errors without a kind are left to the command's default.
public enum FailureKind: Int32, Sendable {
    /// EX_USAGE: a flag value that cannot work (e.g. more validation rows than the input has).
    case usage = 64
    /// EX_DATAERR: the input exists but its contents are wrong (corrupt, truncated, out of range).
    case badData = 65
    /// EX_NOINPUT: an input file, or a split it should hold, is not there.
    case missingInput = 66
    /// EX_CANTCREAT: the output cannot be created (it exists, or its folder cannot be written).
    case cannotCreateOutput = 73
    /// EX_IOERR: reading or writing failed part way (disk full, I/O error).
    case ioError = 74
}

/// A failed HDF5 or file operation, phrased for the user: which file, which object, what
/// went wrong and, where we know it, what to do about it.
public struct StorageError: Error, CustomStringConvertible, Equatable {
    public let file: String
    public let object: String?
    public let problem: String
    public let fix: String?
    public let kind: FailureKind?

    public init(file: String, object: String? = nil, problem: String, fix: String? = nil, kind: FailureKind? = nil) {
        self.file = file
        self.object = object
        self.problem = problem
        self.fix = fix
        self.kind = kind
    }

    /// The same error with `kind` filled in where it was not known yet.
    public func classified(as defaultKind: FailureKind) -> StorageError {
        StorageError(file: file, object: object, problem: problem, fix: fix, kind: kind ?? defaultKind)
    }

    public var description: String {
        var s = "\(file)"
        if let object { s += ": \(object)" }
        s += ": \(problem)"
        if let fix { s += " (\(fix))" }
        return s
    }
}
