import Foundation
import Testing
import KVMScopeTestSupport

/// `kvmscope drops|exits trace.dat` end to end, on the real trace-cmd files of
/// Tests/Fixtures/tracedat, from a file and from standard input.
@Suite struct TraceDatCLITests {
    static func path(_ name: String) -> String { TestFixtures.path("tracedat/" + name) }

    @Test(arguments: ["drops-v6.dat", "drops-v7.dat", "drops-v7-zstd.dat"])
    func dropsReadsTheFileAndStdin(_ name: String) throws {
        let r = try CLIRunner.run(["drops", "--json", Self.path(name)])
        #expect(r.status == 1, "drops were seen: exit 1")
        let j = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        #expect(j["drops"] as? Int == 8)
        #expect((j["sourceDetail"] as? String)?.hasPrefix("trace-dat-drops from ") == true)
        // Redirected from the file (a regular file on fd 0) and through a pipe.
        for shell in ["'\(CLIRunner.binary.path)' drops --by comm - < '\(Self.path(name))'",
                      "cat '\(Self.path(name))' | '\(CLIRunner.binary.path)' drops --by comm -"] {
            let piped = try runProcess("/bin/sh", ["-c", shell])
            #expect(piped.status == 1)
            #expect(piped.stdout.contains("8 drops in task bash"), "\(piped.stdout)\(piped.stderr)")
        }
    }

    @Test func exitsOnAKVMFileWithoutRecordsSaysSo() throws {
        let r = try CLIRunner.run(["exits", Self.path("kvm-v7-zstd.dat")])
        #expect(r.status == 2, "like every input without kvm events")
        #expect(r.stderr.contains("holds the kvm_exit/kvm_entry formats but none of their events"))
        let wrong = try CLIRunner.run(["exits", Self.path("drops-v6.dat")])
        #expect(wrong.status == 2)
        #expect(wrong.stderr.contains("no kvm:kvm_exit or kvm:kvm_entry events (its formats: skb)"))
    }

    @Test func exitsReadsTheSyntheticFile() throws {
        let r = try CLIRunner.run(["exits", "--json", Self.path("synthetic-kvm-v6.dat")])
        #expect(r.status == 0)
        let j = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        #expect(j["format"] as? String == "trace-dat")
        #expect((j["total"] as! [String: Any])["count"] as? Int == 80)
    }

    @Test func damagedFilesAreOneClearError() throws {
        let full = try Data(contentsOf: URL(fileURLWithPath: Self.path("drops-v6.dat")))
        let cut = NSTemporaryDirectory() + "kvmscope-cut-\(getpid()).dat"
        try full.prefix(163_900).write(to: URL(fileURLWithPath: cut))
        let r = try CLIRunner.run(["drops", cut])
        #expect(r.status == 2)
        #expect(r.stderr.contains("trace.dat is truncated or corrupt"), "\(r.stderr)")
        var v = full
        v[10] = UInt8(ascii: "9")
        try v.write(to: URL(fileURLWithPath: cut))
        let w = try CLIRunner.run(["exits", cut])
        #expect(w.stderr.contains("trace.dat version '9': kvmscope reads versions 6 and 7"), "\(w.stderr)")
        #expect(w.stderr.split(separator: "\n").count == 1)
    }
}
