import Foundation

/// The lab's real captures (lab/scenarios/NAME/{console.log,trace.log,qmp.jsonl}), found
/// relative to this file so tests run from any working directory.
public enum LabFixtures {
    public static let repoRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    public static func path(_ scenario: String, _ file: String) -> String {
        repoRoot.appendingPathComponent("lab/scenarios/\(scenario)/\(file)").path
    }

    /// Every scenario that has a capture of `file`.
    public static func scenarios(with file: String) -> [String] {
        let dir = repoRoot.appendingPathComponent("lab/scenarios")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return names.filter { FileManager.default.fileExists(atPath: path($0, file)) }.sorted()
    }
}

/// The committed test inputs (Tests/Fixtures/{drops,exits,guest,trace}), shared by every test target;
/// outside every target's directory, so nothing is compiled or bundled from it.
public enum TestFixtures {
    public static let dir = LabFixtures.repoRoot.appendingPathComponent("Tests/Fixtures")

    /// `relative` inside the fixtures directory, e.g. "drops/perf-script-6.18.txt".
    public static func path(_ relative: String) -> String { dir.appendingPathComponent(relative).path }
}
