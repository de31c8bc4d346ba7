import Foundation
import Testing
import KVMScopeTestSupport
import KVMScope

@Suite struct BlkdebugCheckCLITests {
    @Test func reportsWithFileAndLineAndExitsOne() throws {
        let dir = TempDir()
        let f = dir.file("rules.cfg", "[inject-error]\nevent = \"l1_grow.alloc_table\"\n[inject-error]\nevent = \"read_aio\"\nstate = \"2\"\n")
        let r = try CLIRunner.run(["blkdebug", "check", f])
        #expect(r.status == 1)
        #expect(r.stdout.contains("\(f):2: error: 'l1_grow.alloc_table' is the old dotted event name, which today's QEMU rejects\n    hint: use event = \"l1_grow_alloc_table\"\n"))
        #expect(r.stdout.contains("\(f):3: warning: this rule waits for state 2, which no [set-state] ever reaches"))
        #expect(r.stdout.hasSuffix("\(f): 1 inject-error rule, 0 set-state rules: 1 error, 1 warning, 0 notes\n"))
    }

    @Test func cleanFileExitsZeroAndPrintsBlockdev() throws {
        let dir = TempDir()
        let f = dir.file("ok.cfg", "[inject-error]\nevent = \"none\"\niotype = \"write\"\nsector = \"2048\"\n")
        let img = dir.image("disk.img", size: 64 << 20)
        let r = try CLIRunner.run(["blkdebug", "check", "--image", img, "--blockdev", f])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        #expect(r.stdout.contains("-blockdev driver=file,node-name=file0,filename=\(img) \\\n  -blockdev driver=blkdebug,node-name=blkdebug0,image=file0,inject-error.0.event=none,inject-error.0.iotype=write,inject-error.0.errno=5,inject-error.0.sector=2048 \\\n  -blockdev driver=raw,node-name=disk0,file=blkdebug0\n"))
    }

    @Test func jsonKeys() throws {
        let dir = TempDir()
        let f = dir.file("r.cfg", "[inject-error]\nevent = \"l2_load\"\n")
        let img = dir.image("disk.img", size: 1 << 20)
        let r = try CLIRunner.run(["blkdebug", "check", "--json", "--image", img, f])
        #expect(r.status == 1)
        let obj = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        #expect(Set(obj.keys) == ["file", "injectErrorRules", "setStateRules", "errors", "warnings", "notes", "diagnostics", "blockdev", "schemaVersion"])
        let d = (obj["diagnostics"] as! [[String: Any]])[0]
        #expect(d["code"] as? String == "format-event-on-raw" && d["severity"] as? String == "warning" && d["line"] as? Int == 1)
        #expect(Set(d.keys) == ["severity", "code", "file", "line", "message", "hint"])
    }

    @Test func eventsListHas48Names() throws {
        let r = try CLIRunner.run(["blkdebug", "events", "--json"])
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let rows = try #require(doc["events"] as? [[String: Any]])
        #expect(rows.count == 48 && rows.first?["name"] as? String == "l1_update" && rows.last?["name"] as? String == "none")
        #expect(rows.filter { $0["kvmscope"] as? Bool == true }.map { $0["name"] as! String }
                == ["read_aio", "write_aio", "flush_to_os", "flush_to_disk", "pwritev", "pwritev_zero", "pwritev_done", "none"])
    }
}

/// `kvmscope nbd serve` as a process: URI on stdout, JSON fault log, SIGHUP re-reads the rules.
@Suite(.serialized) struct NbdServeCLITests {
    @Test func logsFaultsAndReloadsRulesOnSIGHUP() throws {
        guard let qemuIO = QemuTools.require("qemu-io") else { return }
        let dir = TempDir()
        let img = dir.image("disk.img", size: 4 << 20)
        let rules = dir.file("rules.cfg", "[inject-error]\nevent = \"none\"\niotype = \"write\"\nsector = \"0\"\nerrno = \"27\"\n")
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
        // The first stdout line is the URI with the real port.
        let uri = out.fileHandleForReading.readNextLine().trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(uri.hasPrefix("nbd://127.0.0.1:"))

        let first = try runProcess(qemuIO, ["-f", "raw", uri, "-c", "write 0 4k"])
        #expect(first.stdout == "write failed: No space left on device\n")   // EFBIG → NBD ENOSPC
        let record = try JSONSerialization.jsonObject(with: FileManager.default.contents(atPath: log) ?? Data()) as? [String: Any]
        #expect(record?["errnoName"] as? String == "EFBIG" && record?["nbdError"] as? String == "ENOSPC")
        #expect(record?["command"] as? String == "write" && record?["offset"] as? Int == 0 && record?["length"] as? Int == 4096)
        #expect((record?["client"] as? String)?.hasPrefix("127.0.0.1:") == true && record?["rule"] as? String == "\(rules):1")
        #expect(Set(record?.keys.map { $0 } ?? []) == ["type", "time", "client", "command", "offset", "length", "rule", "kind", "effect", "event", "errno", "errnoName", "nbdError", "delayMs", "bitsFlipped", "schemaVersion"])

        // New rules: reads at sector 0 fail instead; writes work again.
        try Data("[inject-error]\nevent = \"none\"\niotype = \"read\"\nsector = \"0\"\n".utf8).write(to: URL(fileURLWithPath: rules))
        kill(p.processIdentifier, SIGHUP)
        Thread.sleep(forTimeInterval: 0.5)
        let second = try runProcess(qemuIO, ["-f", "raw", uri, "-c", "write -q 0 4k", "-c", "read -q 0 4k"])
        #expect(second.stdout == "read failed: Input/output error\n")
        p.terminate()
        p.waitUntilExit()
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(stderr.contains("has no NBD error value; clients get ENOSPC"))
        #expect(stderr.contains("SIGHUP: reloaded \(rules) (1 rule); kept no added rules: 1 rule in force, state machine back to state 1"))
        #expect(stderr.contains("stopped; 2 faults injected"))
        #expect(p.terminationStatus == 0)
    }

    @Test func refusesBadRulesAndWarnsAboutNonLoopback() throws {
        let dir = TempDir()
        let img = dir.image("disk.img", size: 1 << 20)
        let rules = dir.file("bad.cfg", "[inject-error]\nevent = \"refblock_load\"\n")
        let r = try runProcess(CLIRunner.binary.path, ["nbd", "serve", img, "--rules", rules, "--port", "0"], timeout: 20)
        #expect(r.status == 1 && r.stderr.contains("bad.cfg:1: error: event refblock_load never fires in kvmscope"))
        let usage = try runProcess(CLIRunner.binary.path, ["nbd", "serve", img, "--port", "70000"], timeout: 20)
        #expect(usage.status == 2)
    }
}
