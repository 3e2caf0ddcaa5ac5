/// Joins `--option -1` into `--option=-1` before ArgumentParser reads the arguments. It takes a
/// word that starts with a dash for the next option, so `--k -1` failed as "Missing value for
/// '--k <k>'", which names neither the problem nor the fix; joined, the value reaches the
/// option's own check ("--k must be ≥ 0, got -1"). Only numbers are joined: nothing else that
/// starts with a dash is a value.
enum NegativeValues {
    static func joined(_ arguments: [String]) -> [String] {
        var out: [String] = []
        var i = 0
        while i < arguments.count {
            let word = arguments[i]
            if word.hasPrefix("--"), word.count > 2, !word.contains("="), i + 1 < arguments.count, isNegativeNumber(arguments[i + 1]) {
                out.append(word + "=" + arguments[i + 1])
                i += 2
            } else {
                out.append(word)
                i += 1
            }
        }
        return out
    }

    /// "-1", "-0.5", "-1e-3", "-.5", "-inf", "-nan".
    static func isNegativeNumber(_ word: String) -> Bool {
        guard word.hasPrefix("-"), word.count > 1 else { return false }
        let rest = word.dropFirst()
        return Double(rest) != nil && (rest.first?.isNumber == true || rest.first == "." || ["inf", "nan", "infinity"].contains(rest.lowercased()))
    }
}
