import BSVIStorage

/// What a run trains on, as its checkpoints record it (/training's `data_fingerprint` and
/// `train_digest`) and `--resume` compares it: the file's shapes and binarization, and the
/// digest of /train's rows, which tells other images of the same shape apart.
struct TrainingData {
    let fingerprint: DatasetFingerprint
    let trainDigest: UInt64

    /// How this differs from what the checkpoint's run recorded, one phrase per difference;
    /// empty when they agree or the checkpoint (written before 2026-12-03) recorded nothing.
    func differences(fromRecordedIn t: TrainingState) -> [String] {
        guard let words = t.dataFingerprint else { return [] }
        var found = fingerprint.differences(from: .ofTrainingData(words: words), referenceName: "the checkpoint's run trained on")
        if found.isEmpty, let digest = t.trainDigest, digest != trainDigest {
            found.append("/train holds other rows of the same shape (digest " + String(trainDigest, radix: 16)
                         + ", the checkpoint's run trained on " + String(digest, radix: 16) + ")")
        }
        return found
    }
}
