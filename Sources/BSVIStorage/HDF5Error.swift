/// A failed HDF5 or file operation, phrased for the user: which file, which object, what
/// went wrong and, where we know it, what to do about it.
public struct StorageError: Error, CustomStringConvertible, Equatable {
    public let file: String
    public let object: String?
    public let problem: String
    public let fix: String?

    public init(file: String, object: String? = nil, problem: String, fix: String? = nil) {
        self.file = file
        self.object = object
        self.problem = problem
        self.fix = fix
    }

    public var description: String {
        var s = "\(file)"
        if let object { s += ": \(object)" }
        s += ": \(problem)"
        if let fix { s += " (\(fix))" }
        return s
    }
}
