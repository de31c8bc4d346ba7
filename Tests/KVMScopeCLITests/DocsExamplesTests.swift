import Foundation
import Testing
import KVMScopeTestSupport

/// The docs cannot rot: every `$ kvmscope …` line in a docs/ code block that runs on a bundled
/// example or a file in the repository (a lab capture, a fixture) is run, and the lines the doc
/// shows under it must appear in the real output, in order (output lines the doc leaves out, or
/// marks with `...`, are skipped); a doc line ending in `...` matches an output line it begins.
/// Commands on the reader's own files (`trace.txt`, `disk.img`) or live systems are not run;
/// `drops` and `exits` are run when they read a capture in the repository (named last).
@Suite struct DocsExamplesTests {
    struct Example: CustomStringConvertible {
        let page: String, line: Int, arguments: [String], expected: [String]
        var description: String { "\(page):\(line) kvmscope \(arguments.joined(separator: " "))" }
    }

    static let root = LabFixtures.repoRoot

    static func examples() throws -> [Example] {
        let docs = root.appendingPathComponent("docs")
        var out: [Example] = []
        for name in try FileManager.default.contentsOfDirectory(atPath: docs.path).sorted() where name.hasSuffix(".md") {
            let lines = try String(contentsOf: docs.appendingPathComponent(name), encoding: .utf8).components(separatedBy: "\n")
            var inCode = false
            var current: (line: Int, args: [String], expected: [String])?
            func flush() {
                if let c = current, !c.expected.isEmpty { out.append(Example(page: name, line: c.line, arguments: c.args, expected: c.expected)) }
                current = nil
            }
            for (i, l) in lines.enumerated() {
                if l.hasPrefix("```") { flush(); inCode.toggle(); continue }
                guard inCode else { continue }
                if l.hasPrefix("$ ") {
                    flush()
                    guard l.hasPrefix("$ kvmscope "), let args = runnable(String(l.dropFirst("$ kvmscope ".count))) else { continue }
                    current = (i + 1, args, [])
                } else if current != nil {
                    current!.expected.append(l)
                }
            }
            flush()
        }
        return out
    }

    /// The arguments, when every file named exists in the repository (and nothing is piped).
    static func runnable(_ text: String) -> [String]? {
        var command = text
        if let hash = command.range(of: "   #") ?? command.range(of: "  #") { command = String(command[..<hash.lowerBound]) }
        if command.contains("|") || command.contains(">") || command.contains("$") || command.contains("'") || command.contains("\"") { return nil }
        let args = command.split(separator: " ").map(String.init)
        guard let sub = args.first else { return nil }
        // drops and exits read a capture when one is named last (else they record live).
        let readsAFile = ["drops", "exits"].contains(sub) && !args.contains("--live") && !args.contains("--record")
            && args.count > 1 && args.last.map { !$0.hasPrefix("-") && $0 != "-" } == true
        guard !["record", "drops", "exits", "nbd", "io"].contains(sub) || args.contains("--example") || readsAFile else { return nil }
        if args.contains("--example") { return args }
        for a in args.dropFirst() where !a.hasPrefix("-") && (a.contains("/") || a.contains(".")) {
            if !FileManager.default.fileExists(atPath: root.appendingPathComponent(a).path) { return nil }
        }
        return args
    }

    @Test func thereAreExamplesToCheck() throws {
        #expect(try Self.examples().count >= 8)
    }

    @Test(arguments: try DocsExamplesTests.examples())
    func theDocShowsWhatTheCommandPrints(_ e: Example) throws {
        let r = try runProcess(CLIRunner.binary.path, e.arguments, environment: ["NO_COLOR": "1", "COLUMNS": "100"],
                               cwd: Self.root.path)
        let output = (r.stdout + r.stderr).components(separatedBy: "\n").map { $0.replacingOccurrences(of: "\r", with: "") }
        var at = 0
        for want in e.expected where !want.trimmingCharacters(in: .whitespaces).isEmpty {
            if want.trimmingCharacters(in: .whitespaces) == "..." { continue }
            let prefix = want.hasSuffix("...") ? String(want.dropLast(3)) : nil
            func matches(_ got: String) -> Bool { prefix.map { got.hasPrefix($0) } ?? (got == want) }
            guard let found = output[at...].firstIndex(where: matches) else {
                Issue.record("\(e): the doc shows a line the command does not print:\n  \(want)")
                return
            }
            at = found + 1
        }
    }
}
