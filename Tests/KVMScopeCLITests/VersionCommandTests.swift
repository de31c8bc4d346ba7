import Foundation
import Testing
import KVMScopeTestSupport
import KVMScope

@Suite struct VersionCommandTests {
    /// `--version` names the version and the commit the binary was built from (Plugins/GitCommit),
    /// so a bug report says which build it came from.
    @Test func versionNamesTheCommit() throws {
        let r = try CLIRunner.run(["--version"])
        #expect(r.status == 0)
        let line = r.stdout.trimmingCharacters(in: .newlines)
        #expect(line == "\(KVMScopeVersion.string) (commit \(KVMScopeVersion.commit ?? "unknown"))")
        // 12 hex digits (with -dirty when tracked files differed from the commit), or "unknown"
        // outside a git checkout: never an empty or made-up commit.
        let commit = try #require(line.firstMatch(of: #/^[0-9]+\.[0-9]+\.[0-9]+ \(commit (.+)\)$/#)?.1)
        #expect(commit == "unknown" || commit.wholeMatch(of: #/[0-9a-f]{12}(-dirty)?/#) != nil)
    }

    /// Built inside this repository's git checkout, the commit is known (the plugin ran) and is one
    /// of the repository's commits (not necessarily HEAD: the binary may predate a later commit).
    @Test func commitIsKnownInACheckout() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let head = try runProcess("/usr/bin/git", ["-C", root.path, "rev-parse", "HEAD"])
        try #require(head.status == 0, "not a git checkout: nothing to compare")
        let commit = try #require(KVMScopeVersion.commit, "built in a git checkout, yet the commit is unknown")
        let hash = String(commit.prefix(12))
        let known = try runProcess("/usr/bin/git", ["-C", root.path, "cat-file", "-e", "\(hash)^{commit}"])
        #expect(known.status == 0, "\(hash) is not a commit of \(root.path)")
    }
}
