import Foundation
import Testing
import KVMScopeTestSupport

/// The conventions every command that reads input shares (issue 12, "same conventions
/// everywhere"): compressed inputs read as what they hold, `-` is standard input, an empty
/// input is a usage error, and an input given for a role in which nothing of that role is
/// recognised is refused. Compressed copies are made at run time with the real gzip, xz and
/// zstd from lab captures, so what is tested is what those tools write.
@Suite struct InputConventionsTests {
    static let kvmscope = CLIRunner.binary.path
    static let scenario = "write-eio"
    static var console: String { LabFixtures.path(scenario, "console.log") }
    static var trace: String { LabFixtures.path(scenario, "trace.log") }
    static var qmp: String { LabFixtures.path(scenario, "qmp.jsonl") }
    static var rules: String { LabFixtures.path(scenario, "rules.cfg") }
    static var drops: String { DropFixtures.path("perf-script-6.18.txt") }

    /// A shell pipeline, with `$K` the kvmscope binary under test.
    static func sh(_ script: String, cwd: String? = nil) throws -> ProcessResult {
        try runProcess("/bin/sh", ["-c", script], environment: ["K": kvmscope], timeout: 120, cwd: cwd)
    }

    static func q(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }

    /// The compressor's command line for a format, or a recorded failure when it is missing
    /// (CI installs xz-utils and zstd).
    static func compressor(_ format: String) -> String? {
        let tool = ["gzip": "gzip", "xz": "xz", "zstd": "zstd"][format]!
        guard QemuTools.path(tool) != nil else {
            Issue.record("\(tool) not found in PATH: apt-get install -y \(format == "xz" ? "xz-utils" : tool)")
            return nil
        }
        return format == "zstd" ? "zstd -q -c" : "\(tool) -c"
    }

    static let suffix = ["gzip": "gz", "xz": "xz", "zstd": "zst"]

    /// `path` compressed into `dir`, named like the original plus the format's suffix.
    static func compressed(_ path: String, _ format: String, into dir: TempDir) throws -> String? {
        guard let c = compressor(format) else { return nil }
        let out = dir.path + "/" + (path as NSString).lastPathComponent + "." + suffix[format]!
        let r = try sh("\(c) \(q(path)) > \(q(out))")
        #expect(r.status == 0, "\(c) failed: \(r.stderr)")
        return out
    }

    // MARK: compressed inputs

    @Test(arguments: ["gzip", "xz", "zstd"])
    func compressedCapturesGiveIdenticalReports(format: String) throws {
        let dir = TempDir()
        for (command, file) in [("guest", Self.console), ("trace", Self.trace)] {
            let plainCopy = dir.path + "/" + (file as NSString).lastPathComponent
            try FileManager.default.copyItem(atPath: file, toPath: plainCopy)
            guard let packed = try Self.compressed(plainCopy, format, into: dir) else { return }
            for json in [false, true] {
                let args = [command] + (json ? ["--json"] : [])
                let plain = try CLIRunner.run(args + [plainCopy])
                let fromFile = try CLIRunner.run(args + [packed])
                #expect(fromFile.status == plain.status, "\(command) \(format): \(fromFile.stderr)")
                #expect(fromFile.stdout.replacingOccurrences(of: packed, with: plainCopy) == plain.stdout,
                        "\(command) on a \(format) copy differs from the plain capture")
                #expect(!plain.stdout.isEmpty)
            }
        }
        // explain on the three compressed captures: the same verdict, matches and evidence.
        var packed: [String] = []
        for f in [Self.console, Self.trace, Self.qmp] {
            guard let p = try Self.compressed(f, format, into: dir) else { return }
            packed.append(p)
        }
        let plain = try CLIRunner.run(["explain", "--json", Self.console, Self.trace, Self.qmp])
        let fromPacked = try CLIRunner.run(["explain", "--json"] + packed)
        #expect(fromPacked.status == plain.status && plain.status == 1, "\(fromPacked.stderr)")
        for key in ["verdict", "matches", "evidence", "unmatched", "nextSteps"] {
            #expect(try Self.jsonValue(fromPacked.stdout, key) == Self.jsonValue(plain.stdout, key), "explain \(format): \(key)")
        }
        let understood = try Self.jsonObject(fromPacked.stdout)["inputs"] as? [String: Any]
        let compressions = (understood?["understood"] as? [[String: Any]])?.compactMap { $0["compression"] as? String }
        #expect(compressions == [format, format, format])
    }

    /// logrotate's `compress` makes `kern.log.2.gz`; a file that was appended to after being
    /// compressed once (or `cat`ed rotations) holds several gzip members, and gzip -d reads
    /// them all. The report must be the plain log's.
    @Test func rotatedKernLogWithConcatenatedGzipMembers() throws {
        let dir = TempDir()
        guard Self.compressor("gzip") != nil else { return }
        // kern.log as rsyslog writes it: `MMM DD HH:MM:SS HOST kernel: [uptime] message`.
        // Split at every newline Character: the console's "\r\n" is one Character to Swift.
        let lines = try String(contentsOfFile: Self.console, encoding: .utf8).split(omittingEmptySubsequences: false, whereSeparator: \.isNewline)
        let kern = lines.filter { $0.hasPrefix("[") }.map { "Nov 22 16:06:27 vm1 kernel: \($0)" }.joined(separator: "\n") + "\n"
        let plain = dir.file("kern.log.2", kern)
        let half = kern.count / 2
        let cut = kern.index(kern.startIndex, offsetBy: half)
        let firstHalf = dir.file("a", String(kern[..<cut])), secondHalf = dir.file("b", String(kern[cut...]))
        let rotated = dir.path + "/kern.log.2.gz"
        let r = try Self.sh("gzip -c \(Self.q(firstHalf)) > \(Self.q(rotated)) && gzip -c \(Self.q(secondHalf)) >> \(Self.q(rotated))")
        #expect(r.status == 0)
        let expected = try CLIRunner.run(["guest", plain])
        let got = try CLIRunner.run(["guest", rotated])
        #expect(expected.status == 1 && expected.stdout.contains("vda"), "\(expected.stdout.prefix(300)) \(expected.stderr)")
        #expect(got.status == expected.status, "\(got.stderr)")
        #expect(got.stdout.replacingOccurrences(of: rotated, with: plain) == expected.stdout)
        // And through a pipe, as `cat kern.log.2.gz | kvmscope guest -`.
        let piped = try Self.sh("cat \(Self.q(rotated)) | $K guest -")
        #expect(piped.stdout.replacingOccurrences(of: "<stdin>", with: plain) == expected.stdout)
    }

    @Test func truncatedGzipIsOneClearErrorNamingTheFile() throws {
        let dir = TempDir()
        guard let packed = try Self.compressed(Self.console, "gzip", into: dir) else { return }
        let bytes = try Data(contentsOf: URL(fileURLWithPath: packed))
        // Cut inside the header, inside the deflate data, and inside the 8-byte trailer.
        for keep in [5, 11, bytes.count / 3, bytes.count / 2, bytes.count - 4, bytes.count - 1] {
            let cut = dir.path + "/cut-\(keep).gz"
            try bytes.prefix(keep).write(to: URL(fileURLWithPath: cut))
            for command in [["guest"], ["trace"], ["explain", "--guest"], ["exits"], ["drops"]] {
                let r = try CLIRunner.run(command + [cut])
                #expect(r.status == 1, "\(command) on \(keep) bytes: \(r.stderr)")
                #expect(r.stdout.isEmpty)
                #expect(r.stderr == "kvmscope: '\(cut)': gzip: truncated: the input ends inside a compressed stream (was the file cut short?)\n",
                        "\(command) on \(keep) bytes")
            }
        }
    }

    @Test func garbageAfterTheGzipMagicIsRefused() throws {
        let dir = TempDir()
        let garbage = dir.path + "/garbage.gz"
        try Data([0x1F, 0x8B] + Array("this is not deflate data at all\n".utf8)).write(to: URL(fileURLWithPath: garbage))
        let r = try CLIRunner.run(["guest", garbage])
        #expect(r.status == 1)
        #expect(r.stderr.hasPrefix("kvmscope: '\(garbage)': gzip: corrupt data ("), "\(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1)
        // A complete member followed by bytes that start no member: not silently dropped.
        guard let packed = try Self.compressed(Self.console, "gzip", into: dir) else { return }
        var trailing = try Data(contentsOf: URL(fileURLWithPath: packed))
        trailing.append(contentsOf: Array("trailing junk\n".utf8))
        let withTrailing = dir.path + "/trailing.gz"
        try trailing.write(to: URL(fileURLWithPath: withTrailing))
        let t = try CLIRunner.run(["guest", withTrailing])
        #expect(t.status == 1)
        #expect(t.stderr == "kvmscope: '\(withTrailing)': gzip: garbage after the last compressed stream\n")
    }

    /// A decompression bomb's memory is the decoder's window, which a hostile header may ask to
    /// be huge: xz with a 1 GiB dictionary and zstd with a 2 GiB window are refused, not allocated.
    @Test func decodersWithHugeWindowsAreRefused() throws {
        let dir = TempDir()
        let small = dir.file("small.log", try String(contentsOfFile: Self.console, encoding: .utf8))
        if Self.compressor("xz") != nil {
            let r = try Self.sh("xz -c --lzma2=dict=1GiB \(Self.q(small)) > big-dict.xz && $K guest big-dict.xz", cwd: dir.path)
            #expect(r.status == 1)
            #expect(r.stderr.hasPrefix("kvmscope: 'big-dict.xz': xz: needs more memory to decompress than kvmscope allows"), "\(r.stderr)")
        }
        if Self.compressor("zstd") != nil {
            // Through a pipe: zstd shrinks the window of a file whose size it knows.
            let r = try Self.sh("cat \(Self.q(small)) | zstd -q -c --zstd=wlog=31 > long.zst && $K guest long.zst", cwd: dir.path)
            #expect(r.status == 1)
            #expect(r.stderr.hasPrefix("kvmscope: 'long.zst': zstd: needs more memory to decompress than kvmscope allows"), "\(r.stderr)")
        }
    }

    // MARK: `-` and empty input on every command

    /// Every command that reads an input reads `-` as standard input, compressed or not, and
    /// reports exactly what it reports on the file.
    @Test func dashIsStandardInputOnEveryCommand() throws {
        let dir = TempDir()
        let exits = dir.file("exits.txt", ExitsCommandTests.small)
        let cases: [(args: [String], file: String)] = [
            (["guest"], Self.console), (["trace"], Self.trace), (["explain", "--guest"], Self.console),
            (["explain", "--trace"], Self.trace), (["explain", "--qmp"], Self.qmp), (["explain"], Self.console),
            (["exits"], exits), (["drops"], Self.drops), (["blkdebug", "check"], Self.rules),
            (["drops", "--kallsyms", "-", Self.drops], DropFixtures.path("kallsyms-excerpt-6.18.txt")),
        ]
        for (args, file) in cases {
            let withFile = args.contains("-") ? args : args + [file]
            let withDash = args.contains("-") ? args : args + ["-"]
            let expected = try CLIRunner.run(args.contains("-") ? args.map { $0 == "-" ? file : $0 } : withFile)
            let quoted = withDash.map(Self.q).joined(separator: " ")
            for (label, feed) in [("plain", "cat"), ("gzip", "gzip -c")] {
                let r = try Self.sh("\(feed) \(Self.q(file)) | $K \(quoted)")
                #expect(r.status == expected.status, "\(args) \(label): \(r.stderr)")
                // explain names the compression it read through, on its `read` lines.
                let out = r.stdout.replacingOccurrences(of: "<stdin>", with: file).replacingOccurrences(of: " (gzip):", with: ":")
                #expect(out == expected.stdout, "\(args) from \(label) stdin")
            }
        }
    }

    @Test func emptyInputIsAUsageErrorOnEveryCommand() throws {
        let dir = TempDir()
        let empty = dir.file("empty.log", "")
        let commands: [[String]] = [
            ["guest"], ["trace"], ["explain"], ["explain", "--guest"], ["explain", "--trace"], ["explain", "--qmp"],
            ["exits"], ["drops"], ["blkdebug", "check"], ["trace", "--events-only"],
        ]
        for c in commands {
            let r = try CLIRunner.run(c + [empty])
            #expect(r.status == 2, "\(c) on an empty file: \(r.stderr)")
            #expect(r.stderr == "kvmscope: '\(empty)' is empty\n", "\(c)")
            let s = try Self.sh(": | $K \(c.joined(separator: " ")) -")
            #expect(s.status == 2, "\(c) on empty stdin: \(s.stderr)")
            #expect(s.stderr == "kvmscope: standard input is empty\n", "\(c)")
        }
        // Options that name inputs too.
        let kallsyms = try CLIRunner.run(["drops", "--kallsyms", empty, Self.drops])
        #expect(kallsyms.status == 2 && kallsyms.stderr == "kvmscope: '\(empty)' is empty\n")
        let events = try CLIRunner.run(["trace", "--events", empty, Self.trace])
        #expect(events.status == 2 && events.stderr == "kvmscope: '\(empty)' is empty\n")
        // A compressed empty file is empty too.
        if Self.compressor("gzip") != nil {
            let z = try Self.sh("gzip -c < /dev/null > e.gz && $K guest e.gz", cwd: dir.path)
            #expect(z.status == 2 && z.stderr == "kvmscope: 'e.gz' is empty (a gzip-compressed empty file)\n")
        }
    }

    /// A console log whose lines end in a lone `\r` reads as the `\n` original does (it was one
    /// overlong line, skipped, and the report had no disk error).
    @Test func carriageReturnLineEndsReadAsLines() throws {
        let dir = TempDir()
        let original = try String(contentsOfFile: Self.console, encoding: .utf8)
        let cr = dir.file("cr.log", original.replacingOccurrences(of: "\n", with: "\r"))
        let a = try CLIRunner.run(["guest", "--json", Self.console])
        let b = try CLIRunner.run(["guest", "--json", cr])
        #expect(b.status == 1 && a.status == 1)
        func failures(_ json: String) throws -> [Any]? {
            let o = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
            return (o?["devices"] as? [[String: Any]])?.first?["blockErrors"] as? [Any]
        }
        #expect(try failures(b.stdout)?.count == failures(a.stdout)?.count)
        #expect(try failures(b.stdout)?.isEmpty == false)
    }

    /// `--top -1` once said "Missing value for '--top <top>'" (ArgumentParser reads -1 as an
    /// option): the command's own check must say what is wrong, on every command. A flag followed
    /// by a negative number keeps the parser's message; `--opt=-1` was always fine.
    @Test func aNegativeNumberReachesTheOptionsOwnCheck() throws {
        let guest = LabFixtures.path("write-eio", "console.log")
        let cases: [([String], String)] = [
            (["guest", "--detail-limit", "-1", guest], "Error: --detail-limit must be 0 or more\n"),
            (["guest", "--top", "-3", guest], "Error: --top must be 0 or more\n"),
            (["host", "--top", "-3", guest], "Error: --top must be 0 or more\n"),
            (["explain", "--detail-limit", "-1", "--example", "write-eio"], "Error: --detail-limit must be at least 1\n"),
            (["drops", "--top", "-2", Self.drops], "Error: --top must be 1...100000\n"),
            (["guest", "--top=-3", guest], "Error: --top must be 0 or more\n"),
        ]
        for (args, first) in cases {
            let r = try CLIRunner.run(args)
            #expect(r.status == 2, "\(args)")
            #expect(r.stdout.isEmpty)
            #expect(r.stderr.hasPrefix(first), "\(args): \(r.stderr)")
        }
        let flag = try CLIRunner.run(["guest", "--json", "-28", guest])
        #expect(flag.status == 2)
        #expect(flag.stderr.hasPrefix("Error: Unknown option '-28'"), "\(flag.stderr)")
        let errno = try CLIRunner.run(["errno", "--json", "-28"])
        #expect(errno.status == 0 && errno.stdout.contains("ENOSPC"))
    }

    // MARK: recognise or refuse

    @Test func aFileWithNoTraceLineIsRefusedAsATrace() throws {
        for file in [Self.console, Self.qmp, "/etc/passwd"] {
            for args in [["trace"], ["trace", "--events-only"], ["explain", "--trace"]] {
                let r = try CLIRunner.run(args + [file])
                #expect(r.status == 2, "\(args) \(file): \(r.stderr)")
                #expect(r.stderr.hasPrefix("kvmscope: no QEMU trace events found in \(file): not a QEMU trace?"), "\(args) \(file): \(r.stderr)")
                #expect(r.stdout.isEmpty)
            }
        }
    }

    @Test func aFileWithNoQMPMessageIsRefusedAsQMP() throws {
        for file in [Self.console, Self.trace, "/etc/passwd"] {
            let r = try CLIRunner.run(["explain", "--qmp", file])
            #expect(r.status == 2, "\(file): \(r.stderr)")
            #expect(r.stderr.hasPrefix("kvmscope: no QMP messages found in \(file): not a QMP stream?"), "\(r.stderr)")
        }
    }

    /// The report says how much of each input was understood: trace's JSON stats and
    /// explain's `inputs.understood[]`, text and JSON.
    @Test func reportsSayHowMuchOfEachInputWasUnderstood() throws {
        let dir = TempDir()
        // The real trace with QEMU's own warnings mixed in, as its stderr holds them.
        let traceText = try String(contentsOfFile: Self.trace, encoding: .utf8)
        let noisy = dir.file("trace.log", "qemu-system-x86_64: warning: host doesn't support requested feature\n\n" + traceText
                             + "qemu-system-x86_64: terminating on signal 15 from pid 1234\n")
        let traceLines = traceText.split(separator: "\n").count
        let t = try CLIRunner.run(["trace", "--json", noisy])
        let stats = (try Self.jsonObject(t.stdout)["input"] as? [String: Any])?["stats"] as? [String: Any]
        #expect(stats?["linesRecognised"] as? Int == traceLines)
        #expect(stats?["linesSkipped"] as? Int == 2)

        let e = try CLIRunner.run(["explain", "--json", Self.console, noisy, Self.qmp])
        let understood = (try Self.jsonObject(e.stdout)["inputs"] as? [String: Any])?["understood"] as? [[String: Any]] ?? []
        #expect(understood.map { $0["role"] as? String } == ["guest-log", "qemu-trace", "qmp-events"])
        try #require(understood.count == 3)
        #expect(understood[1]["linesRecognised"] as? Int == traceLines)
        #expect(understood[1]["linesSkipped"] as? Int == 2)
        let qmpLines = try String(contentsOfFile: Self.qmp, encoding: .utf8).split(separator: "\n").count
        #expect(understood[2]["linesRecognised"] as? Int == qmpLines)
        #expect(understood[2]["linesSkipped"] as? Int == 0)
        #expect((understood[0]["linesRecognised"] as? Int ?? 0) > 300)
        let text = try CLIRunner.run(["explain", Self.console, noisy, Self.qmp])
        #expect(text.stdout.contains("  read QEMU trace \(noisy): \(traceLines + 3) lines, \(traceLines) recognised, 2 skipped\n"), "\(text.stdout)")
    }

    // MARK: mixed standard input

    /// `cat console.log trace.log qmp.jsonl | kvmscope explain -`, in every order (and every
    /// pair), gives the verdict, matches and evidence of the three files named separately.
    @Test func mixedStdinIsSplitByContentInEveryOrder() throws {
        let files = ["guest": Self.console, "trace": Self.trace, "qmp": Self.qmp]
        let orders: [[String]] = [
            ["guest", "trace", "qmp"], ["guest", "qmp", "trace"], ["trace", "guest", "qmp"],
            ["trace", "qmp", "guest"], ["qmp", "guest", "trace"], ["qmp", "trace", "guest"],
            ["guest", "trace"], ["trace", "guest"], ["guest", "qmp"], ["qmp", "trace"],
        ]
        for order in orders {
            let named = order.flatMap { ["--\($0)", files[$0]!] }
            let expected = try CLIRunner.run(["explain", "--json"] + named)
            let mixed = try Self.sh("cat \(order.map { Self.q(files[$0]!) }.joined(separator: " ")) | $K explain --json -")
            #expect(mixed.status == expected.status, "\(order): \(mixed.stderr)")
            for key in ["verdict", "matches", "unmatched"] {
                #expect(try Self.jsonValue(mixed.stdout, key) == Self.jsonValue(expected.stdout, key), "\(order): \(key)")
            }
            // Line numbers are the mixed input's: the file's own, plus the lines before it.
            var offset = 0
            for role in order.prefix(while: { $0 != "guest" }) {
                offset += try String(contentsOfFile: files[role]!, encoding: .utf8).components(separatedBy: "\n").count - 1
            }
            let mixedErrors = try Self.jsonObject(mixed.stdout)["guestBlockErrors"] as? [[String: Any]] ?? []
            let namedErrors = try Self.jsonObject(expected.stdout)["guestBlockErrors"] as? [[String: Any]] ?? []
            #expect(mixedErrors.count == namedErrors.count, "\(order)")
            for (m, n) in zip(mixedErrors, namedErrors) {
                #expect(m["line"] as? Int == (n["line"] as? Int).map { $0 + offset }, "\(order)")
                #expect(m["sector"] as? Int == n["sector"] as? Int && m["device"] as? String == n["device"] as? String)
            }
            func withoutLineNumbers(_ text: String) throws -> String {
                try Self.jsonValue(text, "evidence").replacingOccurrences(of: #"line [0-9]+"#, with: "line N", options: .regularExpression)
            }
            #expect(try withoutLineNumbers(mixed.stdout) == withoutLineNumbers(expected.stdout), "\(order): evidence")
            let understood = (try Self.jsonObject(mixed.stdout)["inputs"] as? [String: Any])?["understood"] as? [[String: Any]] ?? []
            let roles = Set(understood.compactMap { $0["role"] as? String })
            let wanted = Set(order.map { ["guest": "guest-log", "trace": "qemu-trace", "qmp": "qmp-events"][$0]! })
            #expect(roles == wanted, "\(order)")
            #expect(understood.allSatisfy { $0["splitFrom"] as? String == "<stdin>" }, "\(order)")
            // Every trace and QMP line landed in its role.
            for u in understood where u["role"] as? String != "guest-log" {
                let role = u["role"] as! String
                let file = role == "qemu-trace" ? Self.trace : Self.qmp
                let n = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n").count
                #expect(u["linesRecognised"] as? Int == n, "\(order): \(role)")
            }
        }
        // The text report names the parts.
        let text = try Self.sh("cat \(Self.q(Self.trace)) \(Self.q(Self.console)) | $K explain -")
        #expect(text.stdout.hasPrefix("kvmscope explain: guest log <stdin> (guest kernel log lines), QEMU trace <stdin> (QEMU trace lines)\n"))
    }

    /// A regular file that is two captures concatenated is split the same way.
    @Test func aConcatenatedFileIsSplitToo() throws {
        let dir = TempDir()
        let both = dir.path + "/both.log"
        #expect(try Self.sh("cat \(Self.q(Self.console)) \(Self.q(Self.trace)) > \(Self.q(both))").status == 0)
        let expected = try CLIRunner.run(["explain", "--json", Self.console, Self.trace])
        let got = try CLIRunner.run(["explain", "--json", both])
        #expect(got.status == expected.status)
        #expect(try Self.jsonValue(got.stdout, "verdict") == Self.jsonValue(expected.stdout, "verdict"))
        #expect(try Self.jsonValue(got.stdout, "matches") == Self.jsonValue(expected.stdout, "matches"))
    }

    // MARK: errno

    @Test func kernelInternalErrnosAreKnown() throws {
        let r = try CLIRunner.run(["errno", "-517", "512", "ENOTSUPP", "erecallconflict", "531"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == """
        EPROBE_DEFER 517 Driver requests probe retry (kernel-internal, never returned to user space)
        ERESTARTSYS 512 To be restarted if SA_RESTART is set (kernel-internal, never returned to user space)
        ENOTSUPP 524 Operation is not supported (kernel-internal, never returned to user space)
        ERECALLCONFLICT 530 Conflict with recalled state (kernel-internal, never returned to user space)
        ENOGRACE 531 NFS file lock reclaim refused (kernel-internal, never returned to user space)

        """)
        let json = try CLIRunner.run(["errno", "--json", "517", "5"])
        let errnos = try Self.jsonObject(json.stdout)["errnos"] as? [[String: Any]] ?? []
        #expect(errnos.map { $0["kernelInternal"] as? Bool } == [true, false])
        #expect(try CLIRunner.run(["errno", "520"]).status == 1)   // unused in include/linux/errno.h
    }

    // MARK: JSON helpers

    static func jsonObject(_ text: String) throws -> [String: Any] {
        (try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]) ?? [:]
    }

    /// One key's value re-serialised with sorted keys, for comparing reports.
    static func jsonValue(_ text: String, _ key: String) throws -> String {
        let v = try jsonObject(text)[key] ?? NSNull()
        let data = try JSONSerialization.data(withJSONObject: ["v": v], options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }
}
