/// The default dataset: the Fashion-MNIST IDX files of Debian's `dataset-fashion-mnist`
/// converted with the default flags of `prepare-data` — train = the first 50,000 training
/// images, valid = the last 10,000, test = the 10,000 test images; each pixel becomes 1 with
/// probability intensity/255, drawn once from a counter-based stream keyed by
/// (seed, split, row, pixel). The output is the same, bit for bit, as before `prepare-data`
/// read other formats (Tests/BSVIStorageTests/FashionMNISTCompatibilityTests.swift).
public enum FashionMNISTImporter {
    public static let defaultSourceFolder = "/usr/share/datasets/fashion-mnist"

    /// Prepares the default dataset at `output` (replacing any file there); `progress` gets a
    /// line for long steps and the summary.
    public static func prepare(sourceFolder: String = defaultSourceFolder, output: String, seed: UInt64,
                               progress: @escaping (String) -> Void = { _ in }) throws {
        var request = DataImportRequest(seed: seed)
        request.format = .fashionMNIST
        request.sourceFolder = sourceFolder
        request.output = output
        request.force = true
        let summary = try DatasetImporter.run(request, progress: ImportProgress(report: progress))
        progress(summary.description)
    }
}
