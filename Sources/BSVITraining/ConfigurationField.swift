import BSVIStorage

/// One setting of a run: its command-line flag, whether it defines the experiment, and its value.
///
/// The table `all` lists every stored property of `RunConfiguration` once (a test checks it
/// against the type), so the resume rule below covers a new setting as soon as it exists:
/// everything that defines the experiment must match the checkpoint; schedule settings may change.
public struct ConfigurationField: Sendable {
    public enum Role: Sendable {
        /// Defines what is trained and how (data, model, method, objective, batch, seed): a resumed
        /// run with a different value would no longer be the experiment its checkpoint says.
        case experiment
        /// How long, how often, how fast (epochs, evaluation and checkpoint cadence, lr, timeouts):
        /// may change on resume; every change is printed and recorded.
        case schedule
        /// Where the run lives (--run-dir): not compared.
        case location
    }

    public let flag: String
    public let role: Role
    /// "section.property" of RunConfiguration.
    public let property: String
    public let value: @Sendable (RunConfiguration) -> String
    /// Whether two values (the checkpoint's, the command's) mean the same setting; `==` but for
    /// --data, where two spellings of one file (`d.h5`, `./d.h5`, an absolute path) agree.
    public let sameSetting: @Sendable (String, String) -> Bool

    init(_ flag: String, _ role: Role, _ property: String, sameSetting: @escaping @Sendable (String, String) -> Bool = { $0 == $1 },
         _ value: @escaping @Sendable (RunConfiguration) -> String) {
        self.flag = flag
        self.role = role
        self.property = property
        self.sameSetting = sameSetting
        self.value = value
    }

    public static let all: [ConfigurationField] = [
        .init("--hidden", .experiment, "model.hiddenDims") { $0.model.hiddenDims.map(String.init).joined(separator: ",") },
        .init("--latent", .experiment, "model.latentDim") { "\($0.model.latentDim)" },
        .init("--activation", .experiment, "model.activation") { $0.model.activation.rawValue },
        .init("--method", .experiment, "objective.method") { $0.objective.method.rawValue },
        .init("--k", .experiment, "objective.k") { "\($0.objective.k)" },
        .init("--vae-samples", .experiment, "objective.vaeSamples") { "\($0.objective.vaeSamples)" },
        .init("--pi", .experiment, "objective.pi") { $0.objective.pi.rawValue },
        .init("--svi-rule", .experiment, "objective.sviRule") { $0.objective.sviRule.rawValue },
        .init("--svi-lr", .experiment, "objective.sviLearningRate") { "\($0.objective.sviLearningRate)" },
        .init("--svi-momentum", .experiment, "objective.sviMomentum") { "\($0.objective.sviMomentum)" },
        .init("--svi-clip", .experiment, "objective.sviClip") { "\($0.objective.sviClip)" },
        .init("--batch-size", .experiment, "optimizer.batchSize") { "\($0.optimizer.batchSize)" },
        .init("--lr", .schedule, "optimizer.learningRate") { "\($0.optimizer.learningRate)" },
        .init("--seed", .experiment, "optimizer.seed") { "\($0.optimizer.seed)" },
        .init("--epochs", .schedule, "schedule.epochs") { "\($0.schedule.epochs)" },
        .init("--max-steps", .schedule, "schedule.maxSteps") { "\($0.schedule.maxSteps)" },
        .init("--checkpoint-every", .schedule, "schedule.checkpointEvery") { "\($0.schedule.checkpointEvery)" },
        .init("--keep-checkpoints", .schedule, "schedule.keepCheckpoints") { "\($0.schedule.keepCheckpoints)" },
        .init("--max-bad-steps", .schedule, "schedule.maxBadSteps") { "\($0.schedule.maxBadSteps)" },
        .init("--consistency-every", .schedule, "schedule.consistencyEvery") { "\($0.schedule.consistencyEvery)" },
        .init("--stall-timeout", .schedule, "schedule.stallTimeout") { "\($0.schedule.stallTimeout)" },
        .init("--eval-every", .schedule, "evaluation.every") { "\($0.evaluation.every)" },
        .init("--eval-samples", .schedule, "evaluation.samples") { "\($0.evaluation.samples)" },
        .init("--eval-limit", .schedule, "evaluation.limit") { "\($0.evaluation.limit)" },
        .init("--eval-proposal", .schedule, "evaluation.proposal") { $0.evaluation.proposal.rawValue },
        .init("--no-final-eval", .schedule, "evaluation.skipFinal") { "\($0.evaluation.skipFinal)" },
        .init("--data", .experiment, "files.dataPath", sameSetting: { FileIdentity.sameFile($0, $1) }) {
            $0.files.dataPath
        },
        .init("--run-dir", .location, "files.runDirectory") { $0.files.runDirectory },
    ]
}

/// A setting that differs between a checkpoint's run and the command that resumes it.
public struct SettingChange: Codable, Equatable, Sendable, CustomStringConvertible {
    public var flag: String
    public var checkpoint: String
    public var now: String

    public init(flag: String, checkpoint: String, now: String) {
        self.flag = flag
        self.checkpoint = checkpoint
        self.now = now
    }

    public var description: String { "\(flag) \(checkpoint) → \(now)" }
}

/// The resume rule: which experiment settings differ (the resume is refused) and which schedule
/// settings changed (allowed, printed and recorded).
public struct ResumeComparison: Equatable, Sendable {
    public var mismatches: [SettingChange] = []
    public var scheduleChanges: [SettingChange] = []

    public init(saved: RunConfiguration, current: RunConfiguration) {
        for field in ConfigurationField.all where field.role != .location {
            let old = field.value(saved), new = field.value(current)
            guard !field.sameSetting(old, new) else { continue }
            let change = SettingChange(flag: field.flag, checkpoint: old, now: new)
            if field.role == .experiment { mismatches.append(change) } else { scheduleChanges.append(change) }
        }
    }

    /// With the data's content recorded (the digest of its rows), the content decides whether
    /// --data is the run's data, not its path: a copy elsewhere, or a relative --data typed in
    /// another folder (a requeued job's), continues the run when the content matches, which the
    /// caller checks. The new path is then printed and recorded like a schedule change.
    public mutating func judgeDataByContent() {
        scheduleChanges += mismatches.filter { $0.flag == "--data" }
        mismatches.removeAll { $0.flag == "--data" }
    }
}
