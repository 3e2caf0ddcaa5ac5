import Foundation

extension String {
    /// `String(format:)` for numbers people read, with every NaN printed "nan". glibc prints a
    /// NaN whose sign bit is set (what ∞ − ∞ and 0 · ∞ give on x86) as "-nan", a second
    /// spelling beside the JSON outputs' "nan" that means nothing.
    public init(numbers format: String, _ arguments: CVarArg...) {
        self.init(format: format, arguments: arguments.map { argument -> CVarArg in
            switch argument {
            case let x as Double where x.isNaN: Double.nan
            case let x as Float where x.isNaN: Float.nan
            default: argument
            }
        })
    }
}
