import Foundation
import Testing
import KVMScopeTestSupport
import KVMScope
@testable import KVMScopeFaults   // internals the CLI does not expose (see Package.swift)
import KVMScopeWatch

/// docs/json.md is the contract: every command's `--json` output on the lab captures and the
/// fixtures must use exactly the keys it lists, in camelCase, with `schemaVersion` on every
/// document and record, `type` on every JSON Lines record, and a unit on every duration.
@Suite struct JSONContractTests {
    /// One command run: its `--json` output is a document, or JSON Lines.
    struct Run { let args: [String]; let lines: Bool }

    static let fixtures = TestFixtures.dir.path

    /// The documented key paths of each command, from the ```keys NAME``` blocks of docs/json.md.
    static func documentedKeys() throws -> [String: [String]] {
        let text = try String(contentsOf: LabFixtures.repoRoot.appendingPathComponent("docs/json.md"), encoding: .utf8)
        var blocks: [String: [String]] = [:]
        var current: String?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if let name = current {
                if line.hasPrefix("```") { current = nil } else if !line.isEmpty { blocks[name, default: []].append(String(line)) }
            } else if line.hasPrefix("```keys ") {
                current = String(line.dropFirst("```keys ".count))
            }
        }
        return blocks
    }

    /// Paths as docs/json.md writes them: `a.b`, `a[].c`, and `m{}` for a map (not descended).
    static func paths(of value: Any, prefix: String, maps: Set<String>, into out: inout Set<String>) {
        if let dict = value as? [String: Any] {
            for (k, v) in dict {
                let p = prefix.isEmpty ? k : "\(prefix).\(k)"
                if maps.contains(p + "{}") { out.insert(p + "{}"); continue }
                out.insert(p)
                paths(of: v, prefix: p, maps: maps, into: &out)
            }
        } else if let list = value as? [Any] {
            for v in list { paths(of: v, prefix: prefix + "[]", maps: maps, into: &out) }
        }
    }

    /// Leaf keys with a number: those whose last word says "time or duration" must carry a unit.
    static func durationWithoutUnit(_ value: Any, prefix: String, maps: Set<String>, into out: inout [String]) {
        let timeWords: Set<String> = ["latency", "duration", "delay", "wait", "waited", "age", "elapsed", "since",
                                      "interval", "timeout", "uptime", "start", "end", "stamp", "timestamp", "span"]
        // Counts and sector numbers whose names end in such a word.
        let notDurations: Set<String> = ["sectorEnd", "inFlightAtEnd", "exitsWithoutEntryAtEnd"]
        if let dict = value as? [String: Any] {
            for (k, v) in dict {
                let p = prefix.isEmpty ? k : "\(prefix).\(k)"
                if maps.contains(p + "{}") { continue }
                if v is NSNumber, !(v is Bool) {
                    // The key's last camelCase word: `waitedSeconds` → "seconds", `sinceStart` → "start".
                    let last = k.reduce(into: [""]) { words, ch in
                        if ch.isUppercase { words.append(String(ch).lowercased()) } else { words[words.count - 1].append(ch) }
                    }.last ?? ""
                    if timeWords.contains(last) && !notDurations.contains(k) { out.append(p) }
                }
                durationWithoutUnit(v, prefix: p, maps: maps, into: &out)
            }
        } else if let list = value as? [Any] {
            for v in list { durationWithoutUnit(v, prefix: prefix + "[]", maps: maps, into: &out) }
        }
    }

    static func runs() throws -> [String: [Run]] {
        let scenarios = LabFixtures.scenarios(with: "console.log")
        let f = fixtures
        var r: [String: [Run]] = [:]
        r["explain"] = scenarios.map { Run(args: ["explain", "--json", LabFixtures.path($0, "")], lines: false) }
            + [Run(args: ["explain", "--json", "--example", "werror-stop"], lines: false)]
        // explain on the VM's host: the command line's raw image exists here, so hostImages[]
        // has an entry (its extents: FIEMAP on the checkout's filesystem, under .build).
        let imageDir = LabFixtures.repoRoot.appendingPathComponent(".build/json-contract-image").path
        try FileManager.default.createDirectory(atPath: imageDir, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: imageDir + "/disk.img", contents: Data(repeating: 7, count: 1 << 16))
        try "qemu-system-x86_64 -drive if=none,id=drive0,file=\(imageDir)/disk.img,format=raw,werror=report -device virtio-blk-pci,drive=drive0\n"
            .write(toFile: imageDir + "/cmdline.txt", atomically: true, encoding: .utf8)
        r["explain"]! += [Run(args: ["explain", "--json", LabFixtures.path("write-eio", "console.log"), LabFixtures.path("write-eio", "trace.log"),
                                     LabFixtures.path("write-eio", "qmp.jsonl"), "--qemu-cmdline", imageDir + "/cmdline.txt"], lines: false)]
        // werror-stop's console never got a kernel line (the VM paused first): `guest` refuses it.
        r["guest"] = scenarios.filter { $0 != "werror-stop" }.map { Run(args: ["guest", "--json", LabFixtures.path($0, "console.log")], lines: false) }
            + ["classic-report.log", "kernlog-5.x-critical-medium.log", "kmsg-4.13-scsi-ext4.log", "mixed-styles.log",
               "ubuntu-2.6.31-usb-ext4.log", "guest-internal-6.1.log", "empty-cdrom-6.1.log"].map { Run(args: ["guest", "--json", "\(f)/guest/\($0)"], lines: false) }
        r["host"] = LabFixtures.scenarios(with: "host-dmesg.log").map { Run(args: ["host", "--json", LabFixtures.path($0, "host-dmesg.log")], lines: false) }
            + [Run(args: ["host", "--json", "\(f)/host/host-kernel-6.1-kinds.log"], lines: false)]
        r["trace"] = LabFixtures.scenarios(with: "trace.log").map { Run(args: ["trace", "--json", LabFixtures.path($0, "trace.log")], lines: false) }
            + [Run(args: ["trace", "--json", "--events", "\(f)/trace/simpletrace-v4.trace-events", "\(f)/trace/simpletrace-v4.bin"], lines: false)]
        r["trace --events-only"] = [Run(args: ["trace", "--events-only", "--json", LabFixtures.path("write-eio", "trace.log")], lines: true)]
        r["blkdebug check"] = LabFixtures.scenarios(with: "rules.cfg").map { Run(args: ["blkdebug", "check", "--json", LabFixtures.path($0, "rules.cfg")], lines: false) }
        r["blkdebug events"] = [Run(args: ["blkdebug", "events", "--json"], lines: false)]
        r["errno"] = [Run(args: ["errno", "--json", "5"], lines: false)]
        r["drops"] = ["perf-script-6.18.txt", "ftrace-trace-6.18.txt", "trace-cmd-report-6.18.txt"].flatMap {
            [Run(args: ["drops", "--json", "\(f)/drops/\($0)"], lines: true),
             Run(args: ["drops", "--json", "--interval", "1", "\(f)/drops/\($0)"], lines: true)]
        }
        return r
    }

    /// A kvm_exit/kvm_entry trace made by the benchmark's generator (1 MB, deterministic).
    static func exitsInput(in dir: TempDir) throws -> String {
        let out = dir.path + "/exits.txt"
        let r = try runProcess("/bin/bash", [LabFixtures.repoRoot.appendingPathComponent("bench/make-exits.sh").path, out, "1"])
        #expect(r.status == 0, "make-exits.sh: \(r.stderr)")
        return out
    }

    static func documents(_ run: Run) throws -> [Any] {
        let r = try CLIRunner.run(run.args)
        #expect(r.status == 0 || r.status == 1, "\(run.args): exit \(r.status): \(r.stderr)")
        let texts = run.lines ? r.stdout.split(separator: "\n").map(String.init) : [r.stdout]
        return try texts.map { try JSONSerialization.jsonObject(with: Data($0.utf8)) }
    }

    /// Expands `a.<guest>` to the guest command's documented keys under `a.`.
    static func expanded(_ keys: [String], all: [String: [String]]) -> (keys: Set<String>, included: Set<String>) {
        var out = Set<String>(), included = Set<String>()
        for k in keys {
            if let open = k.firstIndex(of: "<"), k.hasSuffix(">") {
                let prefix = String(k[..<open])
                let name = String(k[k.index(after: open)..<k.index(before: k.endIndex)])
                let sub = Set((all[name] ?? []).map { prefix + $0 })
                out.formUnion(sub); included.formUnion(sub)
                out.insert(String(prefix.dropLast()))
            } else {
                out.insert(k)
            }
        }
        return (out, included)
    }

    static func check(_ name: String, documents: [Any], lines: Bool, documented all: [String: [String]]) {
        guard let listed = all[name] else { Issue.record("docs/json.md has no keys block for '\(name)'"); return }
        let (keys, included) = expanded(listed, all: all)
        let maps = Set(keys.filter { $0.hasSuffix("{}") })
        var seen = Set<String>()
        var unitless: [String] = []
        for doc in documents {
            guard let object = doc as? [String: Any] else { Issue.record("\(name): a document that is not an object"); continue }
            #expect(object["schemaVersion"] as? Int == JSONContract.schemaVersion, "\(name): schemaVersion missing")
            if lines { #expect(object["type"] is String, "\(name): a JSON Lines record without `type`") }
            paths(of: object, prefix: "", maps: maps, into: &seen)
            durationWithoutUnit(object, prefix: "", maps: maps, into: &unitless)
        }
        let undocumented = seen.subtracting(keys).sorted()
        let neverSeen = keys.subtracting(seen).subtracting(included).sorted()
        let notCamel = seen.filter { path in
            let last = path.split(separator: ".").last.map(String.init) ?? path
            let key = last.replacingOccurrences(of: "[]", with: "").replacingOccurrences(of: "{}", with: "")
            return key.range(of: "^[a-z][A-Za-z0-9]*$", options: .regularExpression) == nil
        }.sorted()
        #expect(undocumented.isEmpty, "\(name): keys not in docs/json.md: \(undocumented)")
        #expect(neverSeen.isEmpty, "\(name): documented keys no output had: \(neverSeen)")
        #expect(notCamel.isEmpty, "\(name): keys not camelCase: \(notCamel)")
        #expect(Set(unitless).isEmpty, "\(name): durations or times without a unit: \(Set(unitless).sorted())")
    }

    @Test func everyCommandsJSONFollowsTheContract() throws {
        let documented = try Self.documentedKeys()
        for (name, runs) in try Self.runs().sorted(by: { $0.key < $1.key }) {
            let docs = try runs.flatMap { try Self.documents($0) }
            Self.check(name, documents: docs, lines: runs[0].lines, documented: documented)
        }
        let dir = TempDir()
        let exits = try Self.documents(Run(args: ["exits", "--json", "--than", "100us", Self.exitsInput(in: dir)], lines: false))
        Self.check("exits", documents: exits, lines: false, documented: documented)
    }

    @Test func faultLogRecordsFollowTheContract() throws {
        let result = BlkdebugConfigReader().parse("[inject-error]\nevent = \"pwritev\"\nerrno = \"5\"\n", file: "rules.cfg")
        let rule = try #require(result.config.injectErrors.first)
        let fault = InjectedFault(rule: rule, ruleIndex: 0, operation: .write, offset: 4096, length: 512, errno: 5, delayNanoseconds: 0)
        let line = FaultLogRecord(fault: fault,
                                  client: "127.0.0.1:5000", command: "write", nbdError: "NBD_EIO").jsonLine()
        let doc = try JSONSerialization.jsonObject(with: Data(line.utf8))
        Self.check("nbd serve --log", documents: [doc], lines: true, documented: try Self.documentedKeys())
        let change = RulesChangeLogRecord(change: "removed rules.cfg:1", via: "control", released: 2, shortened: 1).jsonLine()
        Self.check("nbd serve --log rules-change", documents: [try JSONSerialization.jsonObject(with: Data(change.utf8))], lines: true,
                   documented: try Self.documentedKeys())
    }

    /// `record --json` (JSON Lines) and capture.json: failures and VM pauses from real lab traces
    /// through the same tracker record runs, QMP events from a real QMP log.
    @Test func recordFollowsTheContract() throws {
        let documented = try Self.documentedKeys()
        let catalog = try TraceEventCatalog.load(eventsFile: nil)
        var notices: [RecordNotice] = []
        for scenario in ["write-eio", "werror-stop"] {
            _ = try TraceSession.analyse(FileByteSource(path: LabFixtures.path(scenario, "trace.log")), catalog: catalog,
                                         onNotice: { notices.append(.failure($0)) })
        }
        for line in try String(contentsOfFile: LabFixtures.path("werror-stop", "qmp.jsonl"), encoding: .utf8).split(separator: "\n") {
            guard let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], obj["event"] != nil else { continue }
            notices.append(.qmpEvent(QMPMessage(line: Array(line.utf8), object: obj)))
        }
        notices.append(.attached(qemu: "7.2.22", pid: 4242, devices: ["drive0"], turnedOn: 25, alreadyOn: 1, timestamps: "qemu", missing: []))
        notices.append(.status(seconds: 1, traceLines: 10, failures: 1, blockIOErrors: 1))
        notices.append(.warning("QEMU did 50 disk requests but wrote no trace line"))
        let manifest = CaptureManifest(
            kvmscopeVersion: KVMScopeVersion.string, qmp: "unix:/run/vm1.qmp", qemuVersion: "7.2.22", qemuPid: nil,
            startTime: 1796143386.9, endTime: 1796143396.9, stopReason: "duration", stopDetail: "recorded for 10 s",
            files: .init(trace: ["trace.log"], qmpEvents: "qmp.jsonl", hostKernelLog: "host-dmesg.log", hostBlockErrors: "host-block-errors.log",
                         blockStats: "blockstats.jsonl", queryBlock: "query-block.jsonl", qemuCommandLine: nil),
            traceEvents: .init(turnedOn: ["virtio_blk_rw_complete"], alreadyOn: [], notInThisQEMU: []),
            traceTimestamps: "qemu", arrivalResolutionSeconds: 0, hostKernelClock: "calibrated",
            hostBlockTrace: .init(records: 2, lostRecords: 0, wallOffsetMicroseconds: 1_796_112_885_416_293, devices: ["7:0": "loop0"]),
            counts: .init(), missing: [], restored: true)
        notices.append(.stopped(manifest))
        #expect(Set(notices.compactMap { n -> String? in if case let .failure(f) = n { return "\(f)".components(separatedBy: "(").first }; return nil }).count >= 2,
                "failures and a VM pause from the lab traces")
        let docs = try notices.map { try JSONSerialization.jsonObject(with: Data(RecordRenderer.json($0).utf8)) }
        Self.check("record", documents: docs, lines: true, documented: documented)
        let encoded = try JSONEncoder().encode(manifest)
        Self.check("capture.json", documents: [try JSONSerialization.jsonObject(with: encoded)], lines: false, documented: documented)
    }

    /// `exits --live --json`: a frame with rows (from real-shaped kvm_exit/kvm_entry lines).
    @Test func exitsLiveFramesFollowTheContract() throws {
        let table = ExitLiveTable(grouping: .reason, sort: .count)
        for l in ["qemu-system-x86-100 [001] d.... 1.000000: kvm_exit: vcpu 0 reason HLT rip 0xffffffff8113b1f9 info1 0x0000000000000000 info2 0x0000000000000000 intr_info 0x00000000 error_code 0x00000000",
                  "qemu-system-x86-100 [001] d.... 1.000050: kvm_entry: vcpu 0, rip 0xffffffff8113b1f9"] {
            Array(l.utf8).withUnsafeBufferPointer { table.consume(LineBytes($0)) }
        }
        let frame = table.frame(elapsed: 1, interval: 1, lostEvents: 0, note: "n")
        #expect(frame.rows.count == 1)
        let doc = try JSONSerialization.jsonObject(with: Data(try JSONReport.encode(frame, pretty: false).utf8))
        Self.check("exitsFrame", documents: [doc], lines: true, documented: try Self.documentedKeys())
    }

    /// `watch --events`: the lab's werror-stop QMP events (BLOCK_IO_ERROR, STOP, …) and the
    /// connection records, as watch writes them.
    @Test func watchEventLogFollowsTheContract() throws {
        var docs: [Any] = []
        for line in try String(contentsOfFile: LabFixtures.path("werror-stop", "qmp.jsonl"), encoding: .utf8).split(separator: "\n") {
            guard let event = LiveQMPEvent.decode(Array(line.utf8)) else { continue }
            let record = WatchEventRecord(event: event, domain: "vm1", qmp: "unix:/run/vm1.qmp", device: "drive0")
            docs.append(try JSONSerialization.jsonObject(with: Data(record.jsonLine().utf8)))
        }
        var connected = WatchEventRecord(type: .connection, time: 1796143386.9, domain: "vm1", qmp: "unix:/run/vm1.qmp", event: "connected")
        connected.qemuVersion = "7.2.22"
        var lost = WatchEventRecord(type: .connection, time: 1796143396.9, domain: "vm1", qmp: "unix:/run/vm1.qmp", event: "lost")
        lost.message = "QEMU closed the QMP monitor at unix:/run/vm1.qmp"
        docs += try [connected, lost].map { try JSONSerialization.jsonObject(with: Data($0.jsonLine().utf8)) }
        #expect(docs.count > 3, "the lab capture's events")
        Self.check("watchEvent", documents: docs, lines: true, documented: try Self.documentedKeys())
    }

    /// The checker itself: a snake_case key, an undocumented key and a bare duration are caught.
    @Test func theCheckerCatchesBreaches() {
        var unitless: [String] = []
        Self.durationWithoutUnit(["sinceStart": 1.5, "latency": 3, "sectorEnd": 8, "waitedSeconds": 2] as [String: Any],
                                 prefix: "", maps: [], into: &unitless)
        #expect(Set(unitless) == ["sinceStart", "latency"])
        var seen = Set<String>()
        Self.paths(of: ["filtered_out": 1, "args": ["current_state": 1]] as [String: Any], prefix: "", maps: ["args{}"], into: &seen)
        #expect(seen == ["filtered_out", "args{}"])
    }
}
