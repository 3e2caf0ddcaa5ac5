import Foundation

/// The input arrays of an import, found from the request's flags: which file (and which
/// array in it) becomes /train, /valid and /test. /valid may be nil: the last rows of the
/// training input are used then.
struct ResolvedInputs {
    var train: InputSpec
    var valid: InputSpec?
    var test: InputSpec

    /// Finds the inputs, or throws a StorageError naming the file and the flag that fixes it.
    init(_ request: DataImportRequest) throws {
        if let folder = request.sourceFolder { try Self.checkSourceFolder(folder, isFashionMNIST: request.isFashionMNIST) }
        if request.isFashionMNIST {
            let folder = request.sourceFolder ?? FashionMNISTImporter.defaultSourceFolder
            func find(_ base: String) throws -> InputSpec {
                for name in [base + ".gz", base] where FileManager.default.fileExists(atPath: folder + "/" + name) {
                    try InputFinder.checkIsRegularFile(folder + "/" + name, flag: "--source")
                    return InputSpec(format: .fashionMNIST, file: folder + "/" + name)
                }
                throw StorageError(file: "\(folder)/\(base)[.gz]", problem: "file not found",
                                   fix: "install Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist) or pass --source",
                                   kind: .missingInput)
            }
            train = try find("train-images-idx3-ubyte")
            valid = nil
            test = try find("t10k-images-idx3-ubyte")
            return
        }
        let finder = InputFinder(request: request)
        train = try finder.spec(for: .train, named: request.train)!  // never nil: a missing --train throws
        // --valid-from-train takes /valid from the training input: a validation file that
        // --source happens to hold is not looked for (it would win, and the flag do nothing).
        var valid = request.validFromTrain == nil ? try finder.spec(for: .valid, named: request.valid) : nil
        var test = try finder.spec(for: .test, named: request.test)
        // An .npz or HDF5 training file may hold the other splits too, under the usual names.
        if valid == nil && request.validFromTrain == nil { valid = try finder.companion(.valid, of: train) }
        if test == nil { test = try finder.companion(.test, of: train) }
        guard let test else {
            throw StorageError(file: train.description, problem: "no test split: nothing names one" + finder.searched(for: .test),
                               fix: "pass --test FILE (the split the final evaluation reports on)", kind: .missingInput)
        }
        self.valid = valid
        self.test = test
        warnings = try Self.sharedArrays([(.train, train, request.train != nil), (.valid, valid, request.valid != nil), (.test, test, request.test != nil)])
    }

    /// A --source that does not exist or is not a folder is named as such: otherwise every file
    /// looked for in it is "not found", or (with --format and no --train) no training input is.
    static func checkSourceFolder(_ folder: String, isFashionMNIST: Bool) throws {
        switch PathKind(folder) {
        case .folder:
            return
        case .nothing:
            throw StorageError(file: folder, problem: "folder not found (given as --source)",
                               fix: isFashionMNIST ? "check the path; or install Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist) and leave --source out"
                                   : "check the path", kind: .missingInput)
        case .regularFile, .other:
            throw StorageError(file: folder, problem: "is not a folder (given as --source, the folder the input files are looked for in)",
                               fix: "pass the folder that holds the files with --source, or name the file itself with --train",
                               kind: .missingInput)
        }
    }

    /// What the user should know: two splits named by their flags that read the same array.
    var warnings: [String] = []

    /// Two splits read from the same array would evaluate the model on the rows it was trained
    /// on. Refused when a split was found rather than named (a companion array of the training
    /// file); a warning when the flags name the same array twice, as a quick test may mean to.
    private static func sharedArrays(_ splits: [(DataSplit, InputSpec?, named: Bool)]) throws -> [String] {
        let present = splits.compactMap { split, spec, named in spec.map { (split, $0, named) } }
        var warnings: [String] = []
        for (i, (split, spec, named)) in present.enumerated() {
            for (earlier, other, otherNamed) in present[..<i] where spec.isSameArray(as: other) {
                let problem = "is both /\(earlier.rawValue) and /\(split.rawValue): the model would be evaluated on the examples it was trained on"
                guard named && otherNamed else {
                    throw StorageError(file: spec.description, problem: problem,
                                       fix: "name each split's input with --train, --valid and --test (FILE or FILE:KEY); "
                                           + "to take validation rows from the training input use --valid-from-train N",
                                       kind: .usage)
                }
                warnings.append("\(spec.description) \(problem)")
            }
        }
        return warnings
    }
}

/// Turns the text of --train/--valid/--test (or, without it, a conventional name in --source)
/// into an InputSpec: path, format, and for .npz/HDF5 the array's key.
private struct InputFinder {
    let request: DataImportRequest

    /// Conventional file-name endings per format and split, for finding files in --source.
    static func conventionalEndings(_ format: ImportFormat, _ split: DataSplit) -> [String] {
        switch (format, split) {
        case (.idx, .train): return ["train-images-idx3-ubyte", "train-images.idx3-ubyte"]
        case (.idx, .test): return ["t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte", "test-images-idx3-ubyte"]
        case (.amat, _): return ["_\(split.rawValue).amat", "-\(split.rawValue).amat"]
        case (.npy, _): return ["\(split.rawValue).npy"]
        default: return []
        }
    }

    func usage(_ flag: String, _ problem: String, fix: String) -> StorageError {
        StorageError(file: flag, problem: problem, fix: fix, kind: .usage)
    }

    /// The input for `split`: from its flag, else found in --source; nil when neither names one
    /// (a missing --train is an error, a missing --valid or --test is resolved by the caller).
    func spec(for split: DataSplit, named text: String?) throws -> InputSpec? {
        guard let text else {
            if let found = try findInSource(split) {
                try Self.checkIsRegularFile(found.file, flag: "--\(split.rawValue)")
                return found
            }
            if split == .train { throw noTrainingInput() }
            return nil
        }
        // A relative name lies in --source, with or without a :KEY (splitKey looks for the file).
        let located = request.sourceFolder.map { text.hasPrefix("/") ? text : $0 + "/" + text } ?? text
        let (file, key) = InputSpec.splitKey(located)
        // Before the file is opened: opening a FIFO waits for a writer.
        try Self.checkIsRegularFile(file, flag: "--\(split.rawValue)")
        guard let format = request.format ?? ImportFormat.inferred(fromFileName: file) else {
            throw usage("--\(split.rawValue)", "cannot tell the format of \(file) from its name",
                        fix: "pass --format idx, amat, npy, npz or hdf5")
        }
        if let key, !format.holdsNamedArrays {
            throw usage("--\(split.rawValue)", "\(file) is a \(format.rawValue) file, which holds one array, so ':\(key)' names nothing",
                        fix: "pass the file alone; FILE:KEY is for .npz and HDF5 files")
        }
        if !format.holdsNamedArrays || key != nil { return InputSpec(format: format, file: file, key: key) }
        guard let spec = try namedArray(split, in: file, format: format, orSoleArray: true) else {
            let held = try Self.arrays(in: file, format: format).joined(separator: ", ")
            throw StorageError(file: file, problem: "holds no array named \(Self.keys(split, format).joined(separator: " or ")) (it holds: \(held))",
                               fix: "name the array: --\(split.rawValue) \(file):KEY", kind: .missingInput)
        }
        return spec
    }

    /// Why no training input was found: with --source, the folder and what was looked for in it.
    func noTrainingInput() -> StorageError {
        let nameIt = "pass --train FILE (with --format, or a name ending .amat, .npy, .npz, .h5 or -ubyte[.gz])"
        guard let folder = request.sourceFolder else { return usage("--train", "no training input named", fix: nameIt) }
        guard let format = request.format else {
            return usage("--train", "no training input named: files in --source \(folder) are looked for by name only with --format",
                         fix: "pass --format idx, amat or npy, or name the file with --train FILE")
        }
        let endings = Self.conventionalEndings(format, .train)
        guard !endings.isEmpty else {
            return usage("--train", "no training input named: --source \(folder) is not searched for \(format.rawValue) files",
                         fix: "name the file with --train FILE; a relative name is looked for in --source")
        }
        return StorageError(file: folder, problem: "holds no \(format.rawValue) training file: " + Self.noNameEnding(endings),
                            fix: "name the file with --train FILE, or rename it to end that way", kind: .missingInput)
    }

    /// What was looked for in --source for `split`, to add to a message that none was found;
    /// empty when nothing was looked for.
    func searched(for split: DataSplit) -> String {
        guard let folder = request.sourceFolder, let format = request.format else { return "" }
        let endings = Self.conventionalEndings(format, split)
        return endings.isEmpty ? "" : " (in --source \(folder), " + Self.noNameEnding(endings) + ")"
    }

    static func noNameEnding(_ endings: [String]) -> String {
        "no name ends with " + endings.map { "'\($0)'" }.joined(separator: " or ") + " (optionally followed by .gz)"
    }

    /// A folder, a pipe or a device cannot be an input: each input is read twice (survey, then
    /// conversion), and a pipe's second reading would find it empty. A missing file is left to
    /// the reader, whose message names the format.
    static func checkIsRegularFile(_ file: String, flag: String) throws {
        try PathKind.checkIsInputFile(file, why: "prepare-data reads every input twice", flag: flag)
    }

    /// The array for `split` in an .npz/HDF5 file under its usual name or, for a file named
    /// for this split alone (`orSoleArray`), the only array of a file that holds one — unless
    /// that array is named for another split (x_test given as --train).
    func namedArray(_ split: DataSplit, in file: String, format: ImportFormat, orSoleArray: Bool = false) throws -> InputSpec? {
        let arrays = try Self.arrays(in: file, format: format)
        for key in Self.keys(split, format) where arrays.contains(key) {
            return InputSpec(format: format, file: file, key: key)
        }
        let otherSplits = DataSplit.allCases.filter { $0 != split }.flatMap { Self.keys($0, format) }
        if orSoleArray && arrays.count == 1 && !otherSplits.contains(arrays[0]) {
            return InputSpec(format: format, file: file, key: arrays[0])
        }
        return nil
    }

    /// /valid or /test from the training file when it holds several arrays under the usual names.
    func companion(_ split: DataSplit, of train: InputSpec) throws -> InputSpec? {
        guard train.format.holdsNamedArrays else { return nil }
        return try namedArray(split, in: train.file, format: train.format)
    }

    static func keys(_ split: DataSplit, _ format: ImportFormat) -> [String] {
        [split.rawValue, "x_" + split.rawValue].map { format == .hdf5 ? "/" + $0 : $0 }
    }

    static func arrays(in file: String, format: ImportFormat) throws -> [String] {
        if format == .npz { return try NPZArchive(path: file).keys }
        do {
            return try HDF5File.open(file).children(of: "/").map { "/" + $0 }
        } catch let e as StorageError {
            throw e.classified(as: .badData)
        }
    }

    /// A file in --source whose name ends in a conventional way for this format and split.
    func findInSource(_ split: DataSplit) throws -> InputSpec? {
        guard let folder = request.sourceFolder, let format = request.format else { return nil }
        let endings = Self.conventionalEndings(format, split)
        guard !endings.isEmpty else { return nil }
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: folder)
        } catch {
            // ResolvedInputs checked that it is a folder: what is left is a folder we may not read.
            throw StorageError(file: folder, problem: "cannot list the --source folder: \(error.localizedDescription)",
                               fix: "check its permissions", kind: .missingInput)
        }
        // A gzipped and a plain copy of the same file count once (the .gz is read).
        var matches: [String: String] = [:]
        for name in names.sorted() {
            let plain = name.hasSuffix(".gz") ? String(name.dropLast(3)) : name
            guard endings.contains(where: plain.hasSuffix) else { continue }
            if matches[plain] == nil || name.hasSuffix(".gz") { matches[plain] = name }
        }
        guard matches.count <= 1 else {
            throw usage("--source", "\(folder) holds several \(split.rawValue) files: \(matches.values.sorted().joined(separator: ", "))",
                        fix: "choose one with --\(split.rawValue) FILE")
        }
        return matches.values.first.map { InputSpec(format: format, file: folder + "/" + $0) }
    }
}
