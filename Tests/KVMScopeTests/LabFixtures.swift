import Foundation

/// The lab's real captures (lab/scenarios/NAME/{console.log,trace.log,qmp.jsonl}), found
/// relative to this file so tests run from any working directory.
enum LabFixtures {
    static let repoRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func path(_ scenario: String, _ file: String) -> String {
        repoRoot.appendingPathComponent("lab/scenarios/\(scenario)/\(file)").path
    }

    /// Every scenario that has a capture of `file`.
    static func scenarios(with file: String) -> [String] {
        let dir = repoRoot.appendingPathComponent("lab/scenarios")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return names.filter { FileManager.default.fileExists(atPath: path($0, file)) }.sorted()
    }
}
