import Foundation
import Testing
import KVMScopeTestSupport

/// `kvmscope guest` on a file that is no guest kernel log refuses it (issue 12, item 1): it
/// used to print "No disk errors" and exit 0.
@Suite struct GuestRefusalTests {
    @Test(arguments: ["/etc/passwd", LabFixtures.path("write-eio", "qmp.jsonl"),
                      LabFixtures.path("write-eio", "trace.log")])
    func notAKernelLogIsAUsageError(_ path: String) throws {
        let r = try CLIRunner.run(["guest", path])
        #expect(r.status == 2)
        #expect(r.stdout.isEmpty)
        #expect(r.stderr == "kvmscope: no kernel messages found in \(path): not a guest kernel log?\n")
        let j = try CLIRunner.run(["guest", "--json", path])
        #expect(j.status == 2)
        #expect(j.stdout.isEmpty)
    }

    @Test func reportSaysHowMuchWasUnderstood() throws {
        let r = try CLIRunner.run(["guest", GuestFixtures.lab("write-eio")])
        #expect(r.stdout.contains("(376 lines: 356 kernel messages, 20 not understood;"))
        let j = try CLIRunner.run(["guest", "--json", GuestFixtures.lab("write-eio")])
        let o = try #require(try JSONSerialization.jsonObject(with: Data(j.stdout.utf8)) as? [String: Any])
        let input = try #require(o["input"] as? [String: Any])
        #expect(input["recognisedKernelLines"] as? Int == 356)
        #expect(input["unrecognisedLines"] as? Int == 20)
        #expect(input["skippedLines"] as? Int == 0)
        let boots = try #require(o["boots"] as? [[String: Any]])
        #expect(boots.count == 1)
        #expect(boots.first?["kernelVersion"] as? String == "6.1.0-56-amd64")
    }
}
