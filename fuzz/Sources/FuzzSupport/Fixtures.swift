import Foundation

/// The repository's test fixtures, read by path like the tests do (fuzz/ sits in the repository).
enum Fixtures {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func text(_ relative: String) -> String {
        let path = root.appendingPathComponent(relative).path
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            FuzzCheck.require(false, "fixture \(path) is missing")
            fatalError()
        }
        return text
    }
}
