import Foundation
import Testing
import KVMScopeTestSupport
import KVMScope

/// kvmscope's own rule sections through the binary: `blkdebug check` (QEMU refuses them,
/// --for-kvmscope accepts them), `kvmscope io --rules` with qemu-io commands, and `nbd serve
/// --rules` with the real qemu-io as the client.
@Suite struct FaultSectionsCheckCLITests {
    static let sections: [(name: String, body: String, note: String)] = [
        ("error-rate", "rate = \"10%\"\nseed = \"7\"\n", "each request fails with the given rate"),
        ("delay", "read = \"20ms\"\nflush = \"1s\"\n", "requests are answered late"),
        ("stall", "iotype = \"read\"\nrelease-file = \"/run/stall\"\n", "its reply held back"),
        ("bad-blocks", "sectors = \"2048 4096-4103\"\n", "reads of the listed sectors fail"),
        ("bit-flips", "mode = \"cosmic-rays\"\nprobability = \"1e-6\"\n", "bits flipped"),
        ("flakey", "up = \"30s\"\ndown = \"5s\"\n", "alternates between up and down"),
        ("rate", "rate = \"10M\"\n", "passes at that many bits per second"),
    ]

    @Test(arguments: sections.map(\.name))
    func qemuRefusesKvmscopeAccepts(name: String) throws {
        let section = try #require(Self.sections.first { $0.name == name })
        let dir = TempDir()
        let f = dir.file("r.cfg", "[\(name)]\n\(section.body)")
        let qemu = try CLIRunner.run(["blkdebug", "check", f])
        #expect(qemu.status == 1)
        #expect(qemu.stdout.contains("\(f):1: error: [\(name)] is a kvmscope section: QEMU's blkdebug refuses the file (\"There is no option group '\(name)'\"); kvmscope io and kvmscope nbd serve apply it\n    hint: check with --for-kvmscope"), "\(qemu.stdout)")
        #expect(qemu.stdout.hasSuffix("0 inject-error rules, 0 set-state rules: 1 error, 0 warnings, 0 notes\n"))
        let mine = try CLIRunner.run(["blkdebug", "check", "--for-kvmscope", f])
        #expect(mine.status == 0, "\(mine.stdout)")
        #expect(mine.stdout.contains("\(f):1: note: [\(name)] is a kvmscope section (QEMU's blkdebug would refuse the file): "))
        #expect(mine.stdout.contains(section.note))
        #expect(mine.stdout.hasSuffix("0 errors, 0 warnings, 1 note\n"))
    }

    @Test func mistakesInSectionsAreErrorsWithHints() throws {
        let dir = TempDir()
        let f = dir.file("bad.cfg", """
        [error-rate]
        errno = "EIO"
        [stall]
        iotype = "read"
        [bad-blocks]
        sectors = "10-5"
        [flakey]
        up = "1"
        down = "1"
        mode = "drop-writes"
        [bit-flips]
        probabilty = "0.1"

        """)
        let r = try CLIRunner.run(["blkdebug", "check", "--for-kvmscope", f])
        #expect(r.status == 1)
        #expect(r.stdout.contains("\(f):1: error: [error-rate] has no rate: like nbdkit's error filter without error-rate, it would do nothing"))
        #expect(r.stdout.contains("\(f):3: error: [stall] has neither release-file nor timeout: a stalled request would never be answered"))
        #expect(r.stdout.contains("\(f):6: error: range '10-5' ends before it starts"))
        #expect(r.stdout.contains("\(f):10: error: mode drop-writes acknowledges writes and throws them away: the data is lost without an error\n    hint: if that is what you want, add drop-writes = \"yes-i-understand\" to the section"))
        #expect(r.stdout.contains("\(f):12: error: [bit-flips] has no key 'probabilty'\n    hint: did you mean 'probability'?"))
    }

    @Test func dropWritesConfirmedIsStillAWarning() throws {
        let dir = TempDir()
        let f = dir.file("drop.cfg", "[flakey]\nup = \"10\"\ndown = \"2\"\nmode = \"drop-writes\"\ndrop-writes = \"yes-i-understand\"\n")
        let r = try CLIRunner.run(["blkdebug", "check", "--for-kvmscope", "--json", f])
        #expect(r.status == 1)
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let codes = (obj["diagnostics"] as? [[String: Any]] ?? []).map { "\($0["severity"]!):\($0["code"]!)" }
        #expect(codes == ["warning:drop-writes", "note:kvmscope-section"])
        #expect(((obj["diagnostics"] as? [[String: Any]])?.first?["message"] as? String)?.contains("for 2 s of every 12 s writes are acknowledged and thrown away") == true)
    }

    /// `nbd serve --help` names every rule section a rules file may hold, and its example file is
    /// one that `blkdebug check --for-kvmscope` accepts.
    @Test func serveHelpNamesEverySectionWithAnExampleThatChecks() throws {
        let help = try CLIRunner.run(["nbd", "serve", "--help"], environment: ["COLUMNS": "100"])
        #expect(help.status == 0)
        for name in ["inject-error", "set-state"] + KvmscopeFaultSections.names {
            #expect(help.stdout.contains("[\(name)]"), "nbd serve --help does not name [\(name)]")
        }
        let lines = help.stdout.components(separatedBy: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        guard let cat = lines.firstIndex(where: { $0.hasPrefix("$ cat ") && $0.hasSuffix(".cfg") }) else {
            Issue.record("nbd serve --help shows no rules file (\"$ cat FILE.cfg\")")
            return
        }
        let body = lines[(cat + 1)...].prefix { !$0.hasPrefix("$ ") }.joined(separator: "\n") + "\n"
        let dir = TempDir()
        let check = try CLIRunner.run(["blkdebug", "check", "--for-kvmscope", dir.file("example.cfg", body)])
        #expect(check.status == 0 && check.stdout.contains(": 0 errors, 0 warnings"), "\(body)\n\(check.stdout)")
    }
}

@Suite struct FaultSectionsIoCLITests {
    func io(_ rules: String, _ commands: [String], image: String, log: String? = nil) throws -> ProcessResult {
        var args = ["io", "--rules", rules]
        if let log { args += ["--log", log] }
        args.append(image)
        for c in commands { args += ["-c", c] }
        return try CLIRunner.run(args)
    }

    func records(_ log: String) throws -> [[String: Any]] {
        let text = String(decoding: FileManager.default.contents(atPath: log) ?? Data(), as: UTF8.self)
        return try text.split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
    }

    @Test func errorRateAndTriggerFile() throws {
        let dir = TempDir()
        let img = dir.image("d.img", size: 1 << 20)
        let trigger = dir.path + "/inject"
        let rules = dir.file("r.cfg", "[error-rate]\nread-rate = \"100%\"\nerrno = \"ENOSPC\"\nfile = \"\(trigger)\"\n")
        let log = dir.path + "/f.jsonl"
        let absent = try io(rules, ["read -q 0 4k", "write -q 0 4k"], image: img)
        #expect(absent.stdout.isEmpty && absent.status == 0)
        FileManager.default.createFile(atPath: trigger, contents: nil)
        let present = try io(rules, ["read 0 4k", "write -q 0 4k"], image: img, log: log)
        #expect(present.stdout == "read failed: No space left on device\n")
        let r = try records(log)
        #expect(r.count == 1 && r[0]["kind"] as? String == "error-rate" && r[0]["effect"] as? String == "error")
        #expect(r[0]["rule"] as? String == "\(rules):1" && r[0]["errnoName"] as? String == "ENOSPC" && r[0]["event"] is NSNull)
    }

    @Test func badBlocksFailReadsUntilWritten() throws {
        let dir = TempDir()
        let img = dir.image("d.img", size: 1 << 20)
        let rules = dir.file("r.cfg", "[bad-blocks]\nsectors = \"8-15\"\n")
        let log = dir.path + "/f.jsonl"
        let r = try io(rules, ["read -q 0 4k", "read -q 4k 512", "write -q 4608 512", "read -q 4k 1k", "write -q 4k 4k",
                               "read -q 4k 4k", "write -q 8k 100"], image: img, log: log)
        // 0-4k is clean; sector 8 is bad; writing sector 9 remaps only it; the 4 KiB write remaps 8-15.
        #expect(r.stdout == "read failed: Input/output error\nread failed: Input/output error\n", "\(r.stdout)")
        #expect(try records(log).map { $0["kind"] as? String } == ["bad-blocks", "bad-blocks"])
        let partial = dir.file("p.cfg", "[bad-blocks]\nsectors = \"8\"\n")
        let p = try io(partial, ["write -q 4097 100", "write -q 4k 512", "read -q 4k 512"], image: img)
        #expect(p.stdout == "write failed: Input/output error\n")   // a partial write cannot remap a sector
    }

    @Test func bitFlipsCorruptReadsNotTheImage() throws {
        let dir = TempDir()
        let img = dir.image("d.img", size: 1 << 20)
        let rules = dir.file("r.cfg", "[bit-flips]\nmode = \"cosmic-rays\"\nprobability = \"1\"\n")
        let log = dir.path + "/f.jsonl"
        let r = try io(rules, ["write -q -P 0x55 0 4k", "read -q -P 0xaa 0 4k", "read -q -P 0x55 0 4k"], image: img, log: log)
        // Every bit flips: 0x55 reads as 0xaa; the image still holds 0x55.
        #expect(r.stdout == "Pattern verification failed at offset 0, 4096 bytes\n", "\(r.stdout)")
        let recs = try records(log)
        #expect(recs.count == 2 && recs.allSatisfy { $0["bitsFlipped"] as? Int == 4096 * 8 && $0["effect"] as? String == "bit-flips" })
        let bytes = try #require(FileManager.default.contents(atPath: img))
        #expect(bytes.prefix(4096).allSatisfy { $0 == 0x55 })
    }

    @Test func flakeyDownFailsAndDropWritesDrops() throws {
        let dir = TempDir()
        let img = dir.image("d.img", size: 1 << 20)
        // up 1 ns, down 1 h: down from the first request on.
        let err = dir.file("e.cfg", "[flakey]\nup = \"1ns\"\ndown = \"3600s\"\nmode = \"error-writes\"\n")
        let r = try io(err, ["read -q 0 4k", "write -q 0 4k"], image: img)
        #expect(r.stdout == "write failed: Input/output error\n")
        let drop = dir.file("d.cfg", "[flakey]\nup = \"1ns\"\ndown = \"3600s\"\nmode = \"drop-writes\"\ndrop-writes = \"yes-i-understand\"\n")
        let log = dir.path + "/f.jsonl"
        let d = try io(drop, ["write -q -P 0x77 0 4k", "read -q -P 0x77 0 4k"], image: img, log: log)
        #expect(d.stdout == "Pattern verification failed at offset 0, 4096 bytes\n")   // acknowledged, never written
        #expect(d.stderr.contains("warning: mode drop-writes"))
        #expect(try records(log).first?["effect"] as? String == "drop-write")
    }

    @Test func rateDelaysRepliesByTheirShareOfThePipe() throws {
        let dir = TempDir()
        let img = dir.image("d.img", size: 1 << 20)
        // 1M = 2^20 bits/s: 4 KiB (32768 bits) takes 31.25 ms; the second waits for the first.
        let rules = dir.file("r.cfg", "[rate]\nrate = \"1M\"\n")
        let log = dir.path + "/f.jsonl"
        let r = try io(rules, ["read -q 0 4k", "write -q 0 4k"], image: img, log: log)
        #expect(r.status == 0 && r.stdout.isEmpty)
        let recs = try records(log)
        #expect(recs.map { "\($0["kind"]!):\($0["command"]!)" } == ["rate:read", "rate:write"])
        let first = try #require(recs[0]["delayMs"] as? Double), second = try #require(recs[1]["delayMs"] as? Double)
        #expect(abs(first - 31.25) < 0.001 && second <= 31.25 + 0.001 && second > 0)
        let bad = dir.file("bad.cfg", "[rate]\nrate = \"fast\"\n")
        let c = try CLIRunner.run(["blkdebug", "check", "--for-kvmscope", bad])
        #expect(c.status == 1 && c.stdout.contains("\(bad):2: error: 'rate' must be bits per second above 0"))
    }

    @Test func connectionRateIsTheSessionsOwnPipe() throws {
        let dir = TempDir()
        let img = dir.image("d.img", size: 1 << 20)
        // An io session is one connection: 4 KiB at 1M takes 31.25 ms through its own pipe.
        let rules = dir.file("r.cfg", "[rate]\nconnection-rate = \"1M\"\n")
        let log = dir.path + "/f.jsonl"
        let r = try io(rules, ["read -q 0 4k"], image: img, log: log)
        #expect(r.status == 0 && r.stdout.isEmpty, "\(r.stderr)")
        let recs = try records(log)
        #expect(recs.map { "\($0["kind"]!):\($0["command"]!)" } == ["rate:read"])
        #expect(abs((recs.first?["delayMs"] as? Double ?? 0) - 31.25) < 0.001)
        let none = dir.file("none.cfg", "[rate]\n")
        let c = try CLIRunner.run(["blkdebug", "check", "--for-kvmscope", none])
        #expect(c.status == 1 && c.stdout.contains("[rate] has no 'rate' or 'connection-rate'"), "\(c.stdout)")
        let bad = dir.file("bad.cfg", "[rate]\nconnection-rate = \"0\"\n")
        let b = try CLIRunner.run(["blkdebug", "check", "--for-kvmscope", bad])
        #expect(b.status == 1 && b.stdout.contains("'connection-rate' must be bits per second above 0"), "\(b.stdout)")
    }

    @Test func delayAndStallAreLogged() throws {
        let dir = TempDir()
        let img = dir.image("d.img", size: 1 << 20)
        let rules = dir.file("r.cfg", "[delay]\nread = \"1ms\"\n[stall]\niotype = \"write\"\ntimeout = \"10ms\"\nonce = \"on\"\n")
        let log = dir.path + "/f.jsonl"
        let r = try io(rules, ["read -q 0 4k", "write -q 0 4k", "write -q 0 4k"], image: img, log: log)
        #expect(r.status == 0 && r.stdout.isEmpty)
        let recs = try records(log)
        #expect(recs.map { "\($0["kind"]!):\($0["command"]!)" } == ["delay:read", "stall:write"])
        #expect(recs[0]["delayMs"] as? Double == 1)
    }
}

/// `nbd serve --rules` with kvmscope sections and the real qemu-io as the client.
@Suite(.serialized) struct FaultSectionsNbdCLITests {
    @Test func errorRateBadBlocksAndBitFlipsOverNBD() throws {
        guard let qemuIO = QemuTools.require("qemu-io") else { return }
        let dir = TempDir()
        let img = dir.image("disk.img", size: 4 << 20)
        let rules = dir.file("rules.cfg", """
        [error-rate]
        trim-rate = "1"
        [bad-blocks]
        sectors = "2048"
        [bit-flips]
        mode = "stuck-bits"
        probability = "1"

        """)
        let log = dir.path + "/faults.jsonl"
        let p = Process()
        p.executableURL = CLIRunner.binary
        p.arguments = ["nbd", "serve", img, "--rules", rules, "--port", "0", "--log", log]
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        defer { if p.isRunning { p.terminate() }; p.waitUntilExit() }
        let watchdog = DispatchWorkItem { if p.isRunning { p.terminate() } }
        DispatchQueue.global().asyncAfter(deadline: .now() + 60, execute: watchdog)
        defer { watchdog.cancel() }
        let uri = out.fileHandleForReading.readNextLine().trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(uri.hasPrefix("nbd://127.0.0.1:"))
        // Every bit stuck (probability 1): a zeroed disk reads as the stuck pattern, not zeroes;
        // sector 2048 fails until a write remaps it; every trim fails.
        let r = try runProcess(qemuIO, ["-f", "raw", uri, "-c", "read -q -P 0 0 4k", "-c", "read -q 1M 512",
                                        "-c", "write -q 1M 512", "-c", "discard -q 0 4k"])
        #expect(r.stdout == "Pattern verification failed at offset 0, 4096 bytes\nread failed: Input/output error\ndiscard failed: Input/output error\n", "\(r.stdout)\(r.stderr)")
        let kinds = String(decoding: FileManager.default.contents(atPath: log) ?? Data(), as: UTF8.self)
            .split(separator: "\n").compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
            .map { "\($0["kind"]!):\($0["command"]!):\($0["nbdError"] ?? "-")" }
        #expect(kinds == ["bit-flips:read:<null>", "bad-blocks:read:EIO", "error-rate:trim:EIO"], "\(kinds)")
        // SIGHUP: the new sections replace the old ones (no more flips or trim errors; a new bad sector).
        try Data("[bad-blocks]\nsectors = \"0\"\n".utf8).write(to: URL(fileURLWithPath: rules))
        kill(p.processIdentifier, SIGHUP)
        Thread.sleep(forTimeInterval: 0.5)
        let after = try runProcess(qemuIO, ["-f", "raw", uri, "-c", "read -q 0 512", "-c", "read -q -P 0 4k 4k", "-c", "discard -q 8k 4k"])
        #expect(after.stdout == "read failed: Input/output error\n", "\(after.stdout)\(after.stderr)")
        p.terminate()
        p.waitUntilExit()
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(stderr.contains("\(rules):5 (bit-flips) flipped "))
        #expect(stderr.contains("SIGHUP: reloaded \(rules) (1 rule); kept no added rules: 1 rule in force"))
    }

    /// A stalled reply holds only its own request: another client on the same event loop is
    /// served meanwhile, and deleting the release file lets the stalled reply go.
    @Test func stallHoldsOneRequestNotTheServer() throws {
        guard let qemuIO = QemuTools.require("qemu-io") else { return }
        let dir = TempDir()
        let img = dir.image("disk.img", size: 4 << 20)
        let release = dir.path + "/stall"
        FileManager.default.createFile(atPath: release, contents: nil)
        let rules = dir.file("rules.cfg", "[stall]\niotype = \"write\"\nrelease-file = \"\(release)\"\n")
        let p = Process()
        p.executableURL = CLIRunner.binary
        // One event loop: both clients share it, so a stall that blocked the loop would hold the reader too.
        p.arguments = ["nbd", "serve", img, "--rules", rules, "--port", "0", "--quiet", "--threads", "1"]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        defer { if p.isRunning { p.terminate() }; p.waitUntilExit() }
        let uri = out.fileHandleForReading.readNextLine().trimmingCharacters(in: .whitespacesAndNewlines)
        let writer = Process()
        writer.executableURL = URL(fileURLWithPath: qemuIO)
        writer.arguments = ["-f", "raw", uri, "-c", "write -q -P 0x33 0 4k"]
        writer.standardOutput = Pipe()
        try writer.run()
        defer { if writer.isRunning { writer.terminate() } }
        Thread.sleep(forTimeInterval: 0.5)
        #expect(writer.isRunning)                                       // its reply is held back
        let reader = try runProcess(qemuIO, ["-f", "raw", "-r", uri, "-c", "read -q -P 0x33 0 4k"], timeout: 20)
        #expect(reader.status == 0 && reader.stdout.isEmpty)            // served meanwhile; the write was made
        try FileManager.default.removeItem(atPath: release)
        writer.waitUntilExit()
        #expect(writer.terminationStatus == 0)
    }
}
