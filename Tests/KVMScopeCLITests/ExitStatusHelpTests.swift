import Foundation
import Testing
import KVMScopeTestSupport

/// Every command's help ends with its exit statuses, `Exit status: 0 …, 1 …, 2 usage error.`:
/// that paragraph is what `--help` shows and what packaging/man-exit-status turns into the man
/// page's EXIT STATUS (generate-manual alone writes a generic `.Ex -std` there). A command
/// whose help lacks it would get no EXIT STATUS, and `make man` would stop.
@Suite struct ExitStatusHelpTests {
    /// Every command and subcommand, as a user types it.
    static let commands: [[String]] = [
        [], ["explain"], ["errno"], ["guest"], ["host"], ["trace"], ["exits"], ["drops"], ["record"], ["watch"],
        ["blkdebug"], ["blkdebug", "check"], ["blkdebug", "events"], ["io"], ["nbd"], ["nbd", "serve"],
    ]

    /// The statuses the paragraph lists, split at ", N " outside parentheses, as the man-page
    /// step splits them.
    static func statuses(inHelp help: String) -> [(code: Int, meaning: String)]? {
        let lines = help.components(separatedBy: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        // It may follow another sentence on its line ("… stops it cleanly. Exit status: 0 …").
        guard let start = lines.firstIndex(where: { $0.contains("Exit status: ") }),
              let at = lines[start].range(of: "Exit status: ") else { return nil }
        var text = ""
        for l in [String(lines[start][at.lowerBound...])] + lines[(start + 1)...] {
            if l.isEmpty { break }
            text += (text.isEmpty ? "" : " ") + l
            if l.hasSuffix(".") { break }
        }
        text = String(text.dropFirst("Exit status: ".count))
        if text.hasSuffix(".") { text.removeLast() }
        var items: [String] = [], current = "", depth = 0
        var rest = Substring(text)
        while let c = rest.first {
            if c == "(" { depth += 1 }
            if c == ")" { depth -= 1 }
            if depth == 0, rest.count > 3, rest.hasPrefix(", "), rest.dropFirst(2).first?.isNumber == true,
               rest.dropFirst(3).first == " " {
                items.append(current); current = ""; rest = rest.dropFirst(2); continue
            }
            current.append(c); rest = rest.dropFirst()
        }
        items.append(current)
        var out: [(Int, String)] = []
        for item in items {
            guard let code = item.first?.wholeNumberValue, item.dropFirst().first == " " else { return nil }
            out.append((code, String(item.dropFirst(2))))
        }
        return out
    }

    @Test(arguments: commands)
    func helpEndsWithTheExitStatuses(_ command: [String]) throws {
        let r = try CLIRunner.run(command + ["--help"], environment: ["COLUMNS": "100"])
        #expect(r.status == 0)
        let name = (["kvmscope"] + command).joined(separator: " ")
        guard let statuses = Self.statuses(inHelp: r.stdout) else {
            Issue.record("\(name) --help has no parseable \"Exit status: 0 …, 2 usage error.\" paragraph")
            return
        }
        let codes = statuses.map(\.code)
        #expect(codes.first == 0, "\(name): the statuses start at 0: \(codes)")
        #expect(codes == codes.sorted() && Set(codes).count == codes.count, "\(name): statuses in order, each once: \(codes)")
        #expect(Set(codes).isSubset(of: [0, 1, 2]), "\(name): kvmscope exits only 0, 1 or 2: \(codes)")
        #expect(statuses.last.map { $0.code == 2 && $0.meaning.hasPrefix("usage") } == true,
                "\(name): 2 is the usage error: \(statuses)")
    }

    /// The list above is every subcommand `kvmscope --help` shows (so a new command is checked).
    @Test func everySubcommandIsChecked() throws {
        let help = try CLIRunner.run(["--help"]).stdout
        guard let at = help.range(of: "SUBCOMMANDS:") else { Issue.record("no SUBCOMMANDS in kvmscope --help"); return }
        // "  explain                 Say why …": two blanks, the name, blanks, its abstract
        // (continuation lines are indented further; the "See 'kvmscope help …'" line is not a name).
        let names = help[at.upperBound...].components(separatedBy: "\n").compactMap { line -> String? in
            guard line.hasPrefix("  "), !line.hasPrefix("   "), let name = line.split(separator: " ").first,
                  name.allSatisfy({ $0.isLowercase }), line.contains(String(name) + "  ") else { return nil }
            return String(name)
        }.filter { $0 != "help" }
        #expect(!names.isEmpty)
        for n in names { #expect(Self.commands.contains([n]), "kvmscope \(n) is not in ExitStatusHelpTests.commands") }
    }

    /// The statuses said are the ones the commands give, on inputs in the repository.
    @Test func theStatusesAreTheOnesGiven() throws {
        let fixtures: [([String], Int32)] = [
            (["explain", "--example", "write-eio"], 1),
            (["explain", "--example", "list"], 0),
            (["errno", "5"], 0), (["errno", "999"], 1),
            (["guest", "lab/scenarios/write-eio/console.log"], 1),
            (["guest", "lab/scenarios/write-eio/qmp.jsonl"], 2),   // no kernel message in it
            (["host", "lab/scenarios/host-disk-eio/host-dmesg.log"], 1),
            (["trace", "lab/scenarios/write-eio/trace.log"], 1),
            (["trace", "--events-only", "lab/scenarios/write-eio/trace.log"], 0),
            (["drops", "Tests/Fixtures/tracedat/drops-v7-zstd.dat"], 1),
            (["blkdebug", "check", "lab/scenarios/write-eio/rules.cfg"], 0),
            (["blkdebug", "events"], 0),
            (["blkdebug"], 0), (["nbd"], 0),
            (["blkdebug", "nosuch"], 2), (["explain", "--no-such-flag"], 2),
        ]
        for (args, want) in fixtures {
            let r = try runProcess(CLIRunner.binary.path, args, cwd: LabFixtures.repoRoot.path)
            #expect(r.status == want, "kvmscope \(args.joined(separator: " ")) exited \(r.status), not \(want)")
        }
    }
}
