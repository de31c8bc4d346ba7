import Foundation
import Testing
import KVMScopeTestSupport
import KVMScope

@Suite(.serialized) struct QemuIOSideBySideTests {
    struct Case {
        let name: String
        let rules: String
        let commands: [String]
        var cache: String = "writethrough"
    }

    static let cases: [Case] = [
        Case(name: "write-eio", rules: "[inject-error]\nevent = \"none\"\niotype = \"write\"\nsector = \"2048\"\nerrno = \"5\"\n",
             commands: ["write -P 0x11 0 4k", "write 1M 4k", "write 1020k 4k", "write 1028k 4k", "read -P 0 1M 4k", "read -P 0x11 0 4k"]),
        Case(name: "read-once", rules: "[inject-error]\nevent = \"read_aio\"\niotype = \"read\"\nsector = \"8200\"\nerrno = \"5\"\nonce = \"on\"\n",
             commands: ["read 4M 64k", "read 4M 64k", "read 4M 64k"]),
        Case(name: "enospc-flush-writethrough", rules: "[inject-error]\nevent = \"none\"\niotype = \"flush\"\nerrno = \"28\"\n",
             commands: ["flush", "write 0 4k", "read 0 4k"]),
        Case(name: "enospc-flush-writeback", rules: "[inject-error]\nevent = \"none\"\niotype = \"flush\"\nerrno = \"28\"\n",
             commands: ["write 0 4k", "read 0 4k"], cache: "writeback"),
        Case(name: "state-machine", rules: """
            [inject-error]
            event = "read_aio"
            state = "2"
            iotype = "read"
            errno = "5"
            [set-state]
            event = "write_aio"
            state = "1"
            new_state = "2"
            """, commands: ["read 0 4k", "write 8k 4k", "read 0 4k", "read 64k 4k"]),
        Case(name: "pwritev-events", rules: "[inject-error]\nevent = \"pwritev\"\niotype = \"write\"\nerrno = \"1\"\nonce = \"on\"\n",
             commands: ["read 0 512", "write 0 4k", "write 0 4k"]),
        Case(name: "pwritev-zero", rules: "[inject-error]\nevent = \"pwritev_zero\"\niotype = \"write-zeroes\"\nerrno = \"22\"\n",
             commands: ["write -z 0 4k", "write 0 4k", "write -z 0 4k"], cache: "writeback"),
        Case(name: "flush-to-os-arms", rules: "[inject-error]\nevent = \"flush_to_os\"\niotype = \"read\"\nerrno = \"5\"\n",
             commands: ["read 0 4k", "flush", "read 0 4k"], cache: "writeback"),
        Case(name: "arming-replaces", rules: "[inject-error]\nevent = \"none\"\niotype = \"write\"\nsector = \"2048\"\n[inject-error]\nevent = \"read_aio\"\niotype = \"read\"\nsector = \"8200\"\n",
             commands: ["write 1M 4k", "read 0 4k", "write 1M 4k", "read 4M 64k"], cache: "writeback"),
        Case(name: "errno-zero-shadows", rules: "[inject-error]\nevent = \"none\"\nerrno = \"0\"\niotype = \"read\"\n[inject-error]\nevent = \"none\"\n",
             commands: ["read 0 4k", "write 0 4k"], cache: "writeback"),
        Case(name: "discard-and-patterns", rules: "[inject-error]\nevent = \"none\"\niotype = \"discard\"\nsector = \"16\"\nerrno = \"95\"\n",
             commands: ["write -P 0x41 0 64k", "discard 0 4k", "discard 8k 4k", "read -v 0 32", "read -P 0x41 0 8k", "read -P 0x41 -s 4k -l 1k 0 8k"], cache: "writeback"),
        Case(name: "out-of-range-and-usage", rules: "",
             commands: ["read 63M 2M", "write 64M 1", "read -C -q 0 512", "info"], cache: "writeback"),
    ]

    static func normalize(_ s: String) -> String {
        s.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            if line.contains(" ops; ") && line.contains("/sec and ") { return "<rate line>" }
            return String(line)
        }.joined(separator: "\n")
    }

    @Test(arguments: (cases + enotsupCases).map(\.name))
    func sameOutputAsQemuIO(name: String) throws {
        guard let qemuIO = QemuTools.require("qemu-io") else { return }
        let c = (Self.cases + Self.enotsupCases).first { $0.name == name }!
        let dir = TempDir()
        let rules = dir.file("rules.cfg", c.rules.isEmpty ? "# no rules\n" : c.rules)
        let a = dir.image("qemu.img", size: 64 << 20), b = dir.image("kvmscope.img", size: 64 << 20)
        let cmdArgs = c.commands.flatMap { ["-c", $0] }
        let qemu = try runProcess(qemuIO, ["-f", "raw", "-t", c.cache] + cmdArgs + ["blkdebug:\(rules):\(a)"])
        let mine = try runProcess(CLIRunner.binary.path, ["io", "-t", c.cache, "--rules", rules, b] + cmdArgs)
        #expect(Self.normalize(mine.stdout) == Self.normalize(qemu.stdout), "stdout differs for \(name)")
        #expect(mine.status == qemu.status, "exit status \(mine.status) vs qemu-io \(qemu.status)\n\(mine.stderr)")
        let da = FileManager.default.contents(atPath: a), db = FileManager.default.contents(atPath: b)
        #expect(da == db, "images differ after \(name)")
    }
}

@Suite struct IoCommandTests {
    @Test func refusesQcow2MetadataEventsWithAReason() throws {
        let dir = TempDir()
        let rules = dir.file("r.cfg", "[inject-error]\nevent = \"l2_load\"\n")
        let img = dir.image("d.img", size: 1 << 20)
        let r = try CLIRunner.run(["io", "--rules", rules, img, "-c", "read 0 4k"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("r.cfg:1: error: event l2_load never fires in kvmscope: it is emitted by QEMU's qcow2 driver"))
        #expect(r.stdout.isEmpty)
    }

    @Test func interactiveFromStdinAndFaultLog() throws {
        let dir = TempDir()
        let rules = dir.file("r.cfg", "[inject-error]\nevent = \"none\"\niotype = \"write\"\nsector = \"8\"\nerrno = \"28\"\n")
        let img = dir.image("d.img", size: 1 << 20)
        let log = dir.path + "/faults.jsonl"
        let r = try CLIRunner.run(["io", "--rules", rules, "--log", log, img], stdin: "write -q 0 4k\nwrite -q 4k 4k\nquit\nread 0 1\n")
        #expect(r.stdout == "write failed: No space left on device\n")
        #expect(r.status == 1)
        let line = String(decoding: FileManager.default.contents(atPath: log) ?? Data(), as: UTF8.self)
        let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        #expect(obj?["command"] as? String == "write" && obj?["offset"] as? Int == 4096 && obj?["errnoName"] as? String == "ENOSPC")
        #expect(obj?["rule"] as? String == "\(rules):1" && obj?["event"] as? String == "none")
    }

    @Test func badArgumentsAreUsageErrors() throws {
        let r = try CLIRunner.run(["io", "-f", "qcow2", "/dev/null"])
        #expect(r.status == 2)
        let missing = try CLIRunner.run(["io", "/nonexistent.img", "-c", "read 0 1"])
        #expect(missing.status == 1 && missing.stderr.hasPrefix("kvmscope: cannot open '/nonexistent.img'"))
    }
}

extension QemuIOSideBySideTests {
    static let enotsupCases: [Case] = [
        Case(name: "enotsup-write-zeroes-falls-back", rules: "[inject-error]\nevent = \"none\"\niotype = \"write-zeroes\"\nerrno = \"95\"\n[inject-error]\nevent = \"none\"\niotype = \"write\"\nsector = \"8\"\nerrno = \"5\"\n",
             commands: ["write -P 0x55 0 16k", "write -z 0 4k", "write -z 4k 4k", "read -P 0 0 4k", "read -P 0x55 4k 4k"], cache: "writeback"),
    ]
}
