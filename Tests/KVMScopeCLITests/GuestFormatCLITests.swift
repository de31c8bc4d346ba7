import Foundation
import Testing
import KVMScopeTestSupport

/// `kvmscope guest` end to end on real captures re-emitted as admins have them
/// (lab/transform-guest-log → Tests/Fixtures/guest/transformed). Each used to print
/// "No disk errors" and exit 0, or lose what the console showed (issue 12).
@Suite struct GuestFormatCLITests {
    static func fixture(_ name: String) -> String { TestFixtures.path("guest/transformed/\(name)") }

    @Test(arguments: ["json", "json-pretty", "json-seq", "export", "short-full", "with-unit", "short-unix",
                      "rsyslog-rfc5424", "ansi"])
    func journalAndSyslogFormatsFindTheWriteError(_ format: String) throws {
        let path = Self.fixture("write-eio.\(format).log")
        let r = try CLIRunner.run(["guest", path])
        #expect(r.status == 1)
        #expect(r.stdout.hasPrefix("Disk errors in \(path): vda"))
        #expect(r.stdout.contains("1 failed request: all write; all \"I/O\" errors (errno EIO)"))
        #expect(r.stdout.contains("2048  1× write"))
    }

    /// dmesg -d, -T -d and -e: the same error as the console's, and the time each keeps
    /// (-e's stamps none: a delta is not an uptime).
    @Test(arguments: [("dmesg-delta", "2.329791 s, line "), ("dmesg-T-delta", "2026-11-22T16:06:29, line "),
                      ("dmesg-reltime", "at line ")])
    func dmesgTimeFormatsFindTheWriteError(_ format: String, _ place: String) throws {
        let path = Self.fixture("write-eio.\(format).log")
        let r = try CLIRunner.run(["guest", path])
        #expect(r.status == 1)
        #expect(r.stdout.hasPrefix("Disk errors in \(path): vda"))
        #expect(r.stdout.contains("1 failed request: all write; all \"I/O\" errors (errno EIO)"))
        #expect(r.stdout.contains("2048  1× write"))
        #expect(r.stdout.contains(place), "\(r.stdout)")
        #expect(r.stdout.contains("kernel messages by stamp: \(format) "))
        let ro = try CLIRunner.run(["guest", Self.fixture("ext4-readonly.\(format).log")])
        #expect(ro.status == 1)
        #expect(ro.stdout.contains("read-only"))
    }

    /// A serial console where the kernel's line follows user-space output on the same line:
    /// only the console part (the capture's own dmesg, after it, would repeat the line).
    @Test func kernelLineAfterUserSpaceOutputIsRead() throws {
        let text = try String(contentsOfFile: Self.fixture("write-eio.glued.log"), encoding: .utf8)
        let console = try #require(text.components(separatedBy: "kvmscope-lab: dmesg begin").first)
        #expect(console.contains("'oflag=direct'[    2.329791] I/O error, dev vda, sector 2048"))
        let r = try CLIRunner.run(["guest", "-"], stdin: console)
        #expect(r.status == 1)
        #expect(r.stdout.contains("1 failed request: all write"))
    }

    /// pty captures end lines with "\r\r\n": JBD2's "Aborting journal" line counted as binary.
    @Test func ptyLineEndsAreText() throws {
        let r = try CLIRunner.run(["guest", "--json", Self.fixture("ext4-readonly.crlf.log")])
        #expect(r.status == 1)
        let o = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let input = try #require(o["input"] as? [String: Any])
        #expect(input["binaryLines"] as? Int == 0)
        let devices = try #require(o["devices"] as? [[String: Any]])
        let fs = try #require((devices.first?["filesystems"] as? [[String: Any]])?.first)
        #expect(fs["journalAborted"] as? Bool == true)
        #expect(fs["readOnly"] as? Bool == true)
    }

    /// Wall-clock stamps stay wall clock, with how precise they are; no uptime is invented.
    @Test func wallClockStampsKeepTheirClockAndPrecision() throws {
        let r = try CLIRunner.run(["guest", "--json", Self.fixture("write-eio.short.log")])
        let o = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let e = try #require(((o["devices"] as? [[String: Any]])?.first?["blockErrors"] as? [[String: Any]])?.first)
        #expect(e["uptimeSeconds"] is NSNull)
        #expect(e["wallClock"] as? String == "Nov 22 16:06:29")
        #expect(e["stampPrecisionMicroseconds"] as? Int == 1_000_000)
        #expect(e["boot"] as? Int == 1)
        let text = try CLIRunner.run(["guest", Self.fixture("write-eio.short.log")])
        #expect(text.stdout.contains("at Nov 22 16:06:29, line "))
    }

    @Test func twoBootsInOneKernLogAreListed() throws {
        let r = try CLIRunner.run(["guest", Self.fixture("two-boot.kern.log")])
        #expect(r.status == 1)
        #expect(r.stdout.contains("2 boots in this log (uptime stamps restart with each):"))
        #expect(r.stdout.contains("boot 2: lines "))
        #expect(r.stdout.contains("(after the kernel's reboot message)"))
        #expect(r.stdout.contains("in boots 1, 2"))
    }
}
