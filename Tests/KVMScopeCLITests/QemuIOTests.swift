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
        /// Files written into the test's directory first; `{dir}` in a command is that directory.
        var files: [String: String] = [:]
        /// The images' parent directory, when the file system matters (tmpfs: /dev/shm).
        var under: String? = nil
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
            // -C: bytes,ops,time,bytes/sec,ops/sec; the last three are measured.
            let fields = line.split(separator: ",")
            if fields.count == 5, Int(fields[0]) != nil, Int(fields[1]) != nil, fields[2].contains(":") {
                return "\(fields[0]),\(fields[1]),<measured>"
            }
            return String(line)
        }.joined(separator: "\n")
    }

    static var allCases: [Case] { cases + enotsupCases + commandCases }

    @Test(arguments: allCases.map(\.name))
    func sameOutputAsQemuIO(name: String) throws {
        guard let qemuIO = QemuTools.require("qemu-io") else { return }
        let c = Self.allCases.first { $0.name == name }!
        let dir = TempDir(under: c.under)
        let rules = dir.file("rules.cfg", c.rules.isEmpty ? "# no rules\n" : c.rules)
        let a = dir.image("qemu.img", size: 64 << 20), b = dir.image("kvmscope.img", size: 64 << 20)
        for (name, text) in c.files { _ = dir.file(name, text) }
        let cmdArgs = c.commands.flatMap { ["-c", $0.replacingOccurrences(of: "{dir}", with: dir.path)] }
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
        // qemu-io prompts before every line it reads, piped or not, and not after quit.
        #expect(r.stdout == "qemu-io> qemu-io> write failed: No space left on device\nqemu-io> ")
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
        // tmpfs has no FALLOC_FL_ZERO_RANGE: QEMU punches a hole and re-allocates it, so `-n`
        // (no slow fallback) still succeeds and `map` shows the range allocated.
        Case(name: "tmpfs-write-zeroes-no-fallback", rules: "",
             commands: ["write -P 0x55 0 64k", "write -z -n 0 4k", "write -z -u -n 8k 4k", "write -z 16k 4k",
                        "read -P 0 0 4k", "read -P 0x55 4k 4k", "read -P 0 8k 4k", "read -P 0 16k 4k", "map"],
             cache: "writeback", under: "/dev/shm"),
    ]
}

/// The commands beyond read/write/flush/discard (issue 16): vectored and background requests,
/// blkdebug's breakpoints, the size and allocation queries, truncate and sleep, and their
/// argument errors, each against qemu-io 7.2 on a blkdebug image. Scripts whose background
/// requests could complete in either order (two in flight at once) are left out: qemu-io's
/// own order varies there.
extension QemuIOSideBySideTests {
    static let commandCases: [Case] = [
        Case(name: "vectored-requests", rules: "[inject-error]\nevent = \"none\"\niotype = \"read\"\nsector = \"100\"\nerrno = \"5\"\n",
             commands: ["writev -P 0x22 4k 1k 512", "readv -P 0x22 4k 512 1k", "readv -P 0x23 4k 1536", "readv -C 4k 1536",
                        "readv -v 4k 16 16", "readv -q 4k 512", "writev -f -P 0x24 8k 512 512", "readv 50k 1k", "writev 0 3G",
                        "writev -P 300 0 1", "readv 0 x", "writev 0 1G 1G 1G"]),
        Case(name: "background-requests", rules: "[inject-error]\nevent = \"none\"\niotype = \"write\"\nsector = \"2048\"\nerrno = \"28\"\n",
             commands: ["aio_write -P 0x33 0 4k", "aio_flush", "aio_read -P 0x33 0 2k 2k", "aio_flush", "aio_read -P 0x34 0 4k", "aio_flush",
                        "aio_write 1M 4k", "aio_flush", "aio_write -z 8k 4k", "aio_flush", "aio_read -v 8k 32", "aio_flush",
                        "aio_read -i 0 1", "aio_write -i 0 1", "aio_write -z 0 4k 4k", "aio_write -u 0 4k", "aio_read -q 0 4k",
                        "aio_flush", "aio_write -C -P 0x35 12k 4k", "aio_flush", "read -P 0x35 12k 4k"]),
        Case(name: "breakpoints", rules: "",
             commands: ["break write_aio A", "aio_write -P 0x11 0 4k", "wait_break A", "resume A", "aio_flush", "resume B",
                        "remove_break Z", "break write_aio C", "remove_break C", "break bogus D", "break read_aio E",
                        "aio_read -P 0x11 0 4k", "wait_break E", "remove_break E", "aio_flush", "break pwritev_done F",
                        "aio_write -P 0x44 8k 4k", "wait_break F", "resume F", "aio_flush", "read -P 0x44 8k 4k"]),
        Case(name: "size-allocation-truncate-sleep", rules: "",
             commands: ["length", "map", "alloc 0", "alloc 1", "alloc 1k 3k", "alloc 63M 4M", "alloc 65M", "alloc 0 5T", "alloc x",
                        "truncate 96M", "length", "map", "truncate -m falloc 100M", "truncate -m full 101M", "length",
                        "truncate -m falloc 1M", "truncate -m bogus 1M", "truncate x", "truncate 70M", "length",
                        "sleep 20", "sleep abc", "sleep -5", "sleep 0x10", "l", "a 4k"], cache: "writeback"),
        Case(name: "quit-with-arguments-and-vmstate-reads", rules: "",
             commands: ["write -q -P 0xab 0 512", "read -b -P 0xab 0 512", "truncate 70M 2M", "length", "quit x", "write 0 4k"],
             cache: "writeback"),
        Case(name: "help-and-argument-errors", rules: "",
             commands: ["help map", "help f", "help length", "help zz", "length x", "sleep", "map x", "break A",
                        "read 0 0x100000000000000000", "read 0 99999999999999999999", "wait_break"], cache: "writeback"),
        // qemuio_command_usage's line after an option or operand error carries qemu-io's own
        // option letters; `help CMD` is qemu-io's extended help word for word.
        Case(name: "usage-lines-and-extended-help", rules: "",
             commands: ["read -Z 0 0", "read -r 0 4k", "read -a 0 4k", "read 0", "write -Z 0 0", "write 0 1 2", "readv -Z 0 0",
                        "writev -Z 0 0", "aio_read -Z 0 0", "aio_write -Z 0 0", "discard -Z 0 0", "discard 0 1 2", "truncate -Z 0"]
                 // Not bare `help`: it lists only the commands kvmscope has (no open, close, abort...).
                 + QemuIOSideBySideTests.everyCommand.map { "help \($0)" }, cache: "writeback"),
        // write -n (no fallback: an ENOTSUP write-zeroes fails instead of writing zeroes; no
        // length limit), -s (a file's bytes, repeated), -c (compressed: ENOTSUP on raw, after
        // the range check), -b, and write_f's checks in their order.
        // flush_to_disk fires from the raw format node's flush, which after a first FUA write
        // (writethrough, write -f) finds nothing written yet: the event lags one write behind.
        Case(name: "flush-to-disk-after-the-first-writethrough-write", rules: "[inject-error]\nevent = \"flush_to_disk\"\nerrno = \"5\"\n",
             commands: ["write -P 0x11 0 4k", "write -P 0x12 4k 4k", "write 8k 4k", "read 0 4k"]),
        Case(name: "flush-to-disk-first-write-then-flush", rules: "[inject-error]\nevent = \"flush_to_disk\"\nerrno = \"5\"\n",
             commands: ["write -z 0 4k", "flush", "aio_write 8k 4k", "aio_flush", "read 0 4k"]),
        Case(name: "flush-to-disk-fua-writes-writeback", rules: "[inject-error]\nevent = \"flush_to_disk\"\nerrno = \"5\"\n",
             commands: ["write -f -P 0x21 0 4k", "write -P 0x22 4k 4k", "flush", "read 0 4k"], cache: "writeback"),
        Case(name: "flush-rule-checked-on-the-first-writethrough-write", rules: "[inject-error]\nevent = \"none\"\niotype = \"flush\"\nerrno = \"28\"\n",
             commands: ["write 0 4k", "discard 0 4k", "write 4k 4k", "read 0 4k"]),
        // A background write stopped past the end that a truncate set: once it completes, the
        // size QEMU holds is its end again (length, map, and reads there succeed).
        Case(name: "truncate-under-a-stopped-write", rules: "",
             commands: ["break pwritev A", "aio_write -P 0x11 63M 64k", "wait_break A", "truncate 32M", "length", "read 62M 4k",
                        "resume A", "aio_flush", "length", "map", "read -P 0x11 63M 64k", "read -P 0 62M 4k", "read 64M 512",
                        "break pwritev_zero B", "aio_write -z 63M 64k", "wait_break B", "truncate 100k", "resume B", "aio_flush",
                        "length", "alloc 63M 1M", "write -P 0x12 63M 512", "read -P 0x12 63M 512"], cache: "writeback"),
        Case(name: "write-no-fallback-source-file-compressed",
             rules: "[inject-error]\nevent = \"none\"\niotype = \"write-zeroes\"\nsector = \"8\"\nerrno = \"95\"\n",
             commands: ["write -P 0x55 0 16k", "write -n -z 4k 4k", "read -P 0x55 4k 4k", "write -z 4k 4k", "read -P 0 4k 4k",
                        "write -nz -u 0 4k", "read -P 0 0 4k", "write -n 0 4k", "write -n -z 0 3G", "write -z 0 3G", "write -n -z 8k 0",
                        "write -s {dir}/src.bin 8k 30", "read -v 8k 32", "write -s {dir}/src.bin -q 100 5", "read -v 96 16",
                        "write -s {dir}/missing 0 12", "write -s {dir} 0 12", "write -s {dir}/src.bin 0 0", "write -s {dir}/empty 0 4",
                        "write -s {dir}/src.bin -P 1 0 12", "write -z -s {dir}/src.bin 0 12", "write -P 1 -z 0 12",
                        "write -c 0 4k", "write -c 0 0", "write -c 1 512", "write -c 512 511", "write -c 64M 4k", "write -c -z 12k 4k",
                        "read -P 0 12k 4k", "write -c -f 0 4k", "write -b 0 512", "write -b -z 0 512", "write -b -c 0 512",
                        "write -p -P 0x66 16k 512", "read -P 0x66 16k 512", "write -c 0 3G"],
             cache: "writeback", files: ["src.bin": "hello world!", "empty": ""]),
    ]

    /// Every command kvmscope io implements.
    static let everyCommand = ["aio_flush", "aio_read", "aio_write", "alloc", "break", "discard", "flush", "help", "info", "length",
                               "map", "quit", "read", "readv", "remove_break", "resume", "sleep", "truncate", "wait_break",
                               "write", "writev"]
}
