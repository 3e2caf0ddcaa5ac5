/// What the uint8 values of a dataset split mean (DESIGN.md §4).
public enum SplitValues: String, Sendable {
    /// Pixels 0/1, used as they are: every split of a statically binarized dataset, and /valid
    /// and /test always.
    case binary
    /// Intensities 0–255 from which training draws a fresh binary image of every example in
    /// every epoch (`DynamicBinarization`): /train of a dataset prepared with `--binarize dynamic`.
    case intensities
}
