import BSVI
import BSVITraining
import Foundation
import Testing

/// The one configuration: validation naming the flag, the stored JSON (snake_case, sections;
/// old flat checkpoints still read), the field table covering every setting, and the resume rule.
@Suite("Run configuration and the resume rule")
struct RunConfigurationTests {
    @Test("validation names the flag and the problem")
    func validationNamesTheFlag() {
        var c = RunConfiguration()
        #expect(throws: Never.self) { try c.validate() }
        c.objective.k = -1
        #expect(throws: TrainingError.invalidConfiguration(flag: "--k", problem: "must be between 0 and 100000, got -1")) { try c.validate() }
        c.objective.k = 100_001  // one step of it would outlast any stop signal
        #expect(throws: TrainingError.invalidConfiguration(flag: "--k", problem: "must be between 0 and 100000, got 100001")) { try c.validate() }
        c = RunConfiguration()
        c.evaluation.samples = 0
        #expect(throws: TrainingError.invalidConfiguration(flag: "--eval-samples", problem: "must be between 1 and 10000000, got 0")) { try c.validate() }
        c.evaluation.samples = 10_000_001
        #expect(throws: TrainingError.invalidConfiguration(flag: "--eval-samples", problem: "must be between 1 and 10000000, got 10000001")) { try c.validate() }
        c = RunConfiguration()
        c.schedule.stallTimeout = -1
        #expect(throws: TrainingError.invalidConfiguration(flag: "--stall-timeout", problem: "must be finite and ≥ 0 (0: off), got -1.0")) { try c.validate() }
    }

    @Test("infinite or overflowing float flags (1e39 parses as +∞) are refused before any work; they used to trap when the configuration was stored")
    func infiniteFloatFlags() throws {
        let settings: [(String, (inout RunConfiguration) -> Void)] = [
            ("--lr", { $0.optimizer.learningRate = .infinity }),
            ("--lr", { $0.optimizer.learningRate = 4e37 }),  // Adam's first step, 10·lr, overflows
            ("--svi-lr", { $0.objective.sviLearningRate = .infinity }),
            ("--svi-clip", { $0.objective.sviClip = .infinity }),
            ("--stall-timeout", { $0.schedule.stallTimeout = .infinity }),
        ]
        for (flag, set) in settings {
            var c = RunConfiguration()
            set(&c)
            #expect(performing: { try c.validate() }, throws: { error in
                guard case TrainingError.invalidConfiguration(let named, _)? = error as? TrainingError else { return false }
                return named == flag
            })
        }
        var largest = RunConfiguration()
        largest.optimizer.learningRate = 3e37
        #expect(throws: Never.self) { try largest.validate() }
        #expect(try RunConfiguration.fromJSON(try largest.jsonString()).optimizer.learningRate == 3e37)
    }

    @Test("stored as JSON with sections and snake_case keys; the round trip is exact")
    func storedJSON() throws {
        var c = RunConfiguration()
        c.objective.method = .iwae
        c.objective.k = 7
        c.model.hiddenDims = [10, 20]
        c.objective.sviLearningRate = 0.0125
        let json = try c.jsonString()
        let object = try #require(JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect(Set(object.keys) == ["model", "objective", "optimizer", "schedule", "evaluation", "files"])
        #expect((object["model"] as? [String: Any])?["hidden_dims"] as? [Int] == [10, 20])
        #expect((object["objective"] as? [String: Any])?["svi_learning_rate"] != nil)
        #expect(!json.contains("hiddenDims") && !json.contains("sviLearningRate"))
        #expect(try RunConfiguration.fromJSON(json) == c)
    }

    @Test("a checkpoint's flat camelCase configuration of earlier versions still reads")
    func legacyConfiguration() throws {
        // The configuration attribute of a checkpoint written on 2026-11-25 (before the sections).
        let legacy = #"{"activation":"tanh","batchSize":100,"checkpointEvery":0,"consistencyEvery":1000,"dataPath":"data\/fashion-mnist.h5","epochs":20,"evalEvery":2,"evalLimit":2000,"evalProposal":"encoder","evalSamples":5000,"hiddenDims":[200,200],"k":5,"keepCheckpoints":3,"latentDim":50,"learningRate":0.001,"maxBadSteps":20,"maxSteps":0,"method":"bsvi","pi":"learned","runDirectory":"results\/full\/bsvi-learned\/seed2","seed":2,"skipFinalEval":false,"sviClip":0,"sviLearningRate":0.02,"sviMomentum":0.9,"sviRule":"adam","vaeSamples":1}"#
        let c = try RunConfiguration.fromJSON(legacy)
        #expect(c.objective.method == .bsvi && c.objective.pi == .learned && c.objective.sviLearningRate == 0.02)
        #expect(c.optimizer.seed == 2 && c.schedule.epochs == 20 && c.evaluation.every == 2 && c.evaluation.limit == 2000)
        #expect(c.files.runDirectory == "results/full/bsvi-learned/seed2")
        // An older one without the fields added later takes the defaults of its era for them
        // (η 0.05, adam, k 5, π uniform for every method), not today's per-method ones.
        let older = #"{"method":"svi","k":3,"batchSize":64,"seed":9}"#
        let o = try RunConfiguration.fromJSON(older)
        #expect(o.objective.method == .svi && o.objective.k == 3 && o.optimizer.batchSize == 64 && o.objective.vaeSamples == 1)
        #expect(o.objective.sviLearningRate == 0.05 && o.objective.sviRule == .adam && o.objective.pi == .uniform)
        #expect(try RunConfiguration.fromJSON(#"{"method":"bsvi"}"#).objective.k == 5)
        #expect(throws: (any Error).self) { try RunConfiguration.fromJSON(#"{"nonsense":true}"#) }
    }

    @Test("each method starts from its own defaults; the help text lists them per method")
    func methodDefaults() {
        for method in TrainingMethod.allCases {
            let section = ObjectiveSection(method: method), d = MethodDefaults.of(method)
            #expect(section.method == method && section.k == d.k && section.pi == d.pi)
            #expect(section.sviRule == d.sviRule && section.sviLearningRate == d.sviLearningRate)
        }
        #expect(ObjectiveSection() == ObjectiveSection(method: .bsvi), "bsvi is the default method")
        // Methods that share a value are named together; one value for all is given alone.
        let (svi, bsvi, iwae) = (MethodDefaults.of(.svi), MethodDefaults.of(.bsvi), MethodDefaults.of(.iwae))
        let kText = MethodDefaults.describe({ "\($0.k)" }, methods: [.svi, .bsvi, .iwae])
        if svi.k == bsvi.k && bsvi.k != iwae.k {
            #expect(kText == "\(svi.k) (svi, bsvi), \(iwae.k) (iwae)")
        }
        let rate = MethodDefaults.describe({ "\($0.sviLearningRate)" }, methods: [.svi, .bsvi])
        #expect(rate == (svi.sviLearningRate == bsvi.sviLearningRate ? "\(svi.sviLearningRate)"
                         : "\(svi.sviLearningRate) (svi), \(bsvi.sviLearningRate) (bsvi)"))
        #expect(MethodDefaults.describe({ $0.sviRule.rawValue }, methods: [.svi, .bsvi]) == "adam")
    }

    /// The names of the stored properties of every section, "section.property".
    static var storedProperties: [String] {
        let c = RunConfiguration()
        return Mirror(reflecting: c).children.flatMap { section in
            Mirror(reflecting: section.value).children.map { "\(section.label!).\($0.label!)" }
        }
    }

    @Test("the field table lists every setting of the configuration exactly once, with a distinct flag")
    func fieldTableCoversEverySetting() {
        let table = ConfigurationField.all.map(\.property)
        #expect(table.sorted() == Self.storedProperties.sorted())
        #expect(Set(ConfigurationField.all.map(\.flag)).count == ConfigurationField.all.count)
        // Every field reads its own setting: changing that setting changes its value string.
        let base = RunConfiguration()
        var changed = base
        changed.model.hiddenDims = [3]; changed.model.latentDim = 2; changed.model.activation = .relu
        changed.objective.method = .vae; changed.objective.k = 9; changed.objective.vaeSamples = 4; changed.objective.pi = .last
        changed.objective.sviRule = .sgd; changed.objective.sviLearningRate = 0.5; changed.objective.sviMomentum = 0.1
        changed.objective.sviClip = 3
        changed.optimizer.batchSize = 7; changed.optimizer.learningRate = 0.5; changed.optimizer.seed = 99
        changed.schedule.epochs = 99; changed.schedule.maxSteps = 5; changed.schedule.checkpointEvery = 4
        changed.schedule.keepCheckpoints = 9; changed.schedule.maxBadSteps = 2; changed.schedule.consistencyEvery = 3
        changed.schedule.stallTimeout = 1
        changed.evaluation.every = 3; changed.evaluation.samples = 9; changed.evaluation.limit = 5
        changed.evaluation.proposal = .refined; changed.evaluation.skipFinal = true
        changed.files.dataPath = "x.h5"; changed.files.runDirectory = "r"
        for field in ConfigurationField.all { #expect(field.value(base) != field.value(changed), "\(field.flag)") }
    }

    @Test("resume rule: every experiment setting must match; schedule settings may change and are listed")
    func resumeRule() {
        let saved = RunConfiguration()
        var now = saved
        now.schedule.epochs = 30
        now.optimizer.learningRate = 0.0005
        now.evaluation.every = 5
        now.files.runDirectory = "elsewhere"
        let allowed = ResumeComparison(saved: saved, current: now)
        #expect(allowed.mismatches.isEmpty)
        #expect(allowed.scheduleChanges.map(\.flag) == ["--lr", "--epochs", "--eval-every"])
        #expect(allowed.scheduleChanges[1] == SettingChange(flag: "--epochs", checkpoint: "10", now: "30"))
        // The flags the old hand-picked list missed are experiment settings now.
        for change in [{ (c: inout RunConfiguration) in c.objective.sviLearningRate = 0.02 },
                       { $0.objective.sviRule = .sgd }, { $0.objective.sviMomentum = 0.5 }, { $0.objective.sviClip = 1 },
                       { $0.objective.vaeSamples = 2 }, { $0.files.dataPath = "other.h5" }] {
            var c = saved
            change(&c)
            #expect(ResumeComparison(saved: saved, current: c).mismatches.count == 1)
        }
        var many = saved
        many.objective.k = 20
        many.optimizer.seed = 4
        let refused = ResumeComparison(saved: saved, current: many)
        #expect(refused.mismatches == [SettingChange(flag: "--k", checkpoint: "\(saved.objective.k)", now: "20"),
                                       SettingChange(flag: "--seed", checkpoint: "1", now: "4")])
    }

    @Test("resume rule: --data spelled otherwise (./d.h5, an absolute path, a link) is the same setting; another file is not")
    func dataPathsNamingOneFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bsvi-data-spelling-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for name in ["d.h5", "other.h5"] { #expect(FileManager.default.createFile(atPath: dir + "/" + name, contents: Data([1]))) }
        try FileManager.default.createSymbolicLink(atPath: dir + "/link.h5", withDestinationPath: dir + "/d.h5")
        var saved = RunConfiguration()
        saved.files.dataPath = dir + "/d.h5"
        for spelling in [dir + "/./d.h5", dir + "//d.h5", dir + "/link.h5"] {
            var now = saved
            now.files.dataPath = spelling
            #expect(ResumeComparison(saved: saved, current: now).mismatches.isEmpty, "\(spelling)")
        }
        for other in [dir + "/other.h5", dir + "/missing.h5"] {
            var now = saved
            now.files.dataPath = other
            #expect(ResumeComparison(saved: saved, current: now).mismatches.map(\.flag) == ["--data"], "\(other)")
        }
    }
}
