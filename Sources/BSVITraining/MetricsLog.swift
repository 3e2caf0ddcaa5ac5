import Foundation

/// <run-dir>/metrics.csv, appended by rank 0: one `train` row per epoch and one `eval` row per
/// evaluation. Resumed runs append to the same file.
public final class MetricsLog {
    public static let header = "kind,epoch,step,split,examples,samples,bound,log_likelihood,elbo,elbo_refined,amortization_gap,examples_per_s,skipped_steps,wall_seconds,resident_mib"
    public let path: String

    public init(path: String) throws {
        self.path = path
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: Data((Self.header + "\n").utf8)) else {
                throw TrainingError.invalidConfiguration(flag: "--run-dir", problem: "cannot create \(path); check that the folder is writable")
            }
        }
    }

    private func append(_ fields: [String]) {
        guard let h = FileHandle(forWritingAtPath: path) else { return }
        defer { try? h.close() }
        h.seekToEndOfFile()
        h.write(Data((fields.joined(separator: ",") + "\n").utf8))
    }

    private static func f(_ x: Double) -> String { String(format: "%.6f", x) }

    /// Rank 0's resident memory when the row is written (to show memory does not grow over epochs).
    private static func residentField() -> String { ResidentMemory.currentMiB.map { String(format: "%.1f", $0) } ?? "" }

    public func recordEpoch(epoch: Int, step: Int, examples: Int, bound: Double, elbo: Double, elboRefined: Double,
                            examplesPerSecond: Double, skippedSteps: Int, wallSeconds: Double) {
        append(["train", "\(epoch)", "\(step)", "train", "\(examples)", "", Self.f(bound), "", Self.f(elbo), Self.f(elboRefined),
                Self.f(elboRefined - elbo), String(format: "%.1f", examplesPerSecond), "\(skippedSteps)", String(format: "%.3f", wallSeconds),
                Self.residentField()])
    }

    public func recordEvaluation(_ r: EvaluationResult, epoch: Int, step: Int, skippedSteps: Int, wallSeconds: Double) {
        append(["eval", "\(epoch)", "\(step)", r.split, "\(r.examples)", "\(r.samples)", "", Self.f(r.logLikelihood),
                Self.f(r.elbo), Self.f(r.elboRefined), Self.f(r.amortizationGap),
                String(format: "%.1f", Double(r.examples) / max(r.seconds, 1e-9)), "\(skippedSteps)", String(format: "%.3f", wallSeconds),
                Self.residentField()])
    }
}
