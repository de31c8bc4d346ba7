import Foundation
import Testing
import KVMScopeTestSupport
import KVMScope

@Suite struct ErrnoCommandTests {
    @Test func numbersNamesAndNegativeNumbers() throws {
        for q in ["5", "-5", "EIO", "eio"] {
            let r = try CLIRunner.run(["errno", q])
            #expect(r.status == 0)
            #expect(r.stdout == "EIO 5 Input/output error\n")
        }
    }

    @Test func severalQueriesInOrder() throws {
        let r = try CLIRunner.run(["errno", "28", "ewouldblock", "-95"])
        #expect(r.stdout == "ENOSPC 28 No space left on device\nEAGAIN 11 Resource temporarily unavailable\nEOPNOTSUPP 95 Operation not supported\n")
    }

    @Test func listHasEveryEntry() throws {
        let r = try CLIRunner.run(["errno", "--list"])
        #expect(r.status == 0)
        let lines = r.stdout.split(separator: "\n")
        // 131 user-space numbers, then the kernel's own 512...531 (520 unused).
        #expect(lines.count == 131 + 19)
        #expect(lines.first == "EPERM 1 Operation not permitted")
        #expect(lines[130] == "EHWPOISON 133 Memory page has hardware error")
        #expect(lines.last == "ENOGRACE 531 NFS file lock reclaim refused (kernel-internal, never returned to user space)")
    }

    @Test func search() throws {
        let r = try CLIRunner.run(["errno", "--search", "quota"])
        #expect(r.stdout == "EDQUOT 122 Disk quota exceeded\n")
        let none = try CLIRunner.run(["errno", "--search", "zzz", "qqq"])
        #expect(none.status == 1)
        #expect(none.stderr == "kvmscope: no errno matches 'zzz qqq'\n")
    }

    @Test func jsonKeys() throws {
        let r = try CLIRunner.run(["errno", "--json", "--arch", "mips", "1133"])
        #expect(r.status == 0)
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(doc["architecture"] as? String == "mips")
        let parsed = try #require(doc["errnos"] as? [[String: Any]])
        #expect(parsed.count == 1)
        #expect(parsed[0]["name"] as? String == "EDQUOT")
        #expect(parsed[0]["number"] as? Int == 1133)
        #expect(parsed[0]["message"] as? String == "Disk quota exceeded")
        #expect(parsed[0]["architecture"] as? String == "mips")
        #expect(parsed[0]["aliases"] as? [String] == [])
    }

    @Test func architectures() throws {
        #expect(try CLIRunner.run(["errno", "--arch", "sparc", "69"]).stdout == "EDQUOT 69 Disk quota exceeded\n")
        #expect(try CLIRunner.run(["errno", "--arch", "parisc", "enotsup"]).stdout == "ENOTSUP 252 Not supported\n")
    }

    @Test func unknownIsOneLineOnStderrAndStatus1() throws {
        for q in ["41", "ENOPE", "999999999999999999999"] {
            let r = try CLIRunner.run(["errno", q])
            #expect(r.status == 1)
            #expect(r.stdout.isEmpty)
            #expect(r.stderr.split(separator: "\n").count == 1)
            #expect(r.stderr.hasPrefix("kvmscope: unknown errno '\(q)'"))
        }
    }

    @Test func usageErrorsExit2() throws {
        for args in [["errno"], ["errno", "--bogus"], ["errno", "-x", "5"], ["errno", "--arch", "vax", "5"], ["errno", "--list", "5"], ["nosuchcommand"]] {
            let r = try CLIRunner.run(args)
            #expect(r.status == 2, "\(args)")
            #expect(!r.stderr.isEmpty)
            #expect(!r.stderr.contains("Fatal error"))
        }
    }

    /// `--` ends the options, as in every Unix tool: what follows is a query even if it starts with `-`.
    @Test func doubleDashEndsTheOptions() throws {
        let r = try CLIRunner.run(["errno", "--", "-28"])
        #expect(r.status == 0 && r.stdout == "ENOSPC 28 No space left on device\n")
        let unknown = try CLIRunner.run(["errno", "--", "--bogus"])
        #expect(unknown.status == 1 && unknown.stderr.hasPrefix("kvmscope: unknown errno '--bogus'"))
        #expect(try CLIRunner.run(["errno", "--"]).status == 2)
    }

    /// Bare `kvmscope`, like git or perf without a subcommand: the help on stderr, exit 2.
    @Test func bareKvmscopeIsAUsageError() throws {
        let r = try CLIRunner.run([])
        #expect(r.status == 2)
        #expect(r.stdout.isEmpty)
        #expect(r.stderr.contains("USAGE: kvmscope <subcommand>") && r.stderr.contains("kvmscope explain --example write-eio"))
    }

    @Test func helpShowsExamples() throws {
        let r = try CLIRunner.run(["errno", "--help"])
        #expect(r.status == 0)
        #expect(r.stdout.contains("kvmscope errno -5"))
        #expect(r.stdout.contains("EIO 5 Input/output error"))
    }
}
