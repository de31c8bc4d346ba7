import Foundation
import Testing
import KVMScopeTestSupport
@testable import KVMScopeWatch

/// `--auto-record`: a VM's first BLOCK_IO_ERROR starts a capture over watch's own connection,
/// bounded in number, disk and time, stopped (and so restored) when watch stops. The capture
/// here is a fake that uses its monitor as `record` does (a query, then events until told to
/// stop) and writes bytes into its directory; lab/watch-auto-record runs the real one on QEMU.
@Suite(.serialized) struct AutoRecordTests {
    let F = WatchMetricFamilies.self

    final class FakeCapture: @unchecked Sendable {
        let lock = NSLock()
        var directories: [String] = []
        var statuses: [String] = []
        var events: [String] = []
        var bytes = 4096
        /// Ends the running captures as a flight recorder's end would (the next failure seen).
        var endNow = false
        func record(_ o: RecordOptions, _ m: any QMPMonitor, _ p: QEMUProcess,
                    _ shouldStop: () -> (reason: String, detail: String)?) throws -> CaptureManifest {
            try FileManager.default.createDirectory(atPath: o.outputDirectory, withIntermediateDirectories: true)
            FileManager.default.createFile(atPath: o.outputDirectory + "/trace.log", contents: Data(count: lock.withLock { bytes }))
            lock.withLock { directories.append(o.outputDirectory) }
            if let s = (try? m.execute("query-status", arguments: nil, timeout: 2)) as? [String: Any], let st = s["status"] as? String {
                lock.withLock { statuses.append(st) }
            }
            while true {
                let ending: (reason: String, detail: String)? = lock.withLock { endNow } ? ("flight-recorder", "a failure was seen") : shouldStop()
                if let (reason, detail) = ending {
                    return CaptureManifest(kvmscopeVersion: "test", qmp: m.address, qemuVersion: m.qemuVersion, qemuPid: p.pid,
                                           startTime: 0, endTime: 1, stopReason: reason, stopDetail: detail,
                                           files: .init(trace: ["trace.log"], qmpEvents: "qmp.jsonl", hostKernelLog: nil, blockStats: "b",
                                                        queryBlock: "q", qemuCommandLine: nil),
                                           traceEvents: .init(turnedOn: [], alreadyOn: [], notInThisQEMU: []), traceTimestamps: "qemu",
                                           arrivalResolutionSeconds: 0, counts: .init(), missing: [], restored: true)
                }
                let got = (try? m.takeEvents(waiting: 0.05)) ?? []
                lock.withLock { events += got.compactMap(\.eventName) }
            }
        }
        var count: Int { lock.withLock { directories.count } }
    }

    func text(_ m: WatchMetrics) -> String { String(decoding: m.render(), as: UTF8.self) }
    func captures(_ m: WatchMetrics, _ result: String) -> Double? { Exposition.value(text(m), F.watchCaptures.name, [("result", result)]) }

    static let ioError = ##"{"device": "drive0", "node-name": "#block123", "operation": "write", "action": "report", "nospace": false, "reason": "Input/output error"}"##

    /// The worker and the capture share the VM's one connection: the capture's query is answered,
    /// the watch goes on polling, and an event after the capture began reaches both.
    @Test func aBlockIOErrorStartsACaptureOnTheSameConnection() throws {
        let dir = TempDir(), out = dir.path + "/captures"
        let vm = try FakeQMPServer(path: dir.path + "/vm1.qmp", behaviour: .qemu, replies: FakeVM.replies(name: "web1"))
        defer { vm.stop() }
        let fake = FakeCapture(), log = WatchEventCollector(), metrics = WatchMetrics()
        let settings = AutoRecordSettings(directory: out)
        try AutoRecorder.prepare(settings)
        let recorder = AutoRecorder(settings: settings, metrics: metrics, events: log, record: fake.record)
        let w = Watcher(discoveries: [try QMPSocketDiscovery(patterns: [vm.path])], settings: .fast, metrics: metrics,
                        events: log, autoRecorder: recorder)
        w.start()
        #expect(eventually { Exposition.value(text(metrics), F.vmQMPUp.name, [("domain", "web1")]) == 1 })
        #expect(fake.count == 0, "no capture before an error")
        vm.sendEvent("BLOCK_IO_ERROR", data: Self.ioError)
        #expect(eventually { fake.lock.withLock { !fake.statuses.isEmpty } })
        #expect(fake.statuses == ["running"], "the capture's query was answered over watch's connection")
        #expect(fake.directories.first?.hasPrefix(out + "/web1-") == true)
        #expect(Exposition.value(text(metrics), F.watchCapturesRunning.name) == 1)
        vm.sendEvent("BLOCK_IO_ERROR", data: Self.ioError)      // a second error: the same capture, not another
        vm.sendEvent("RESUME")
        #expect(eventually { fake.lock.withLock { fake.events.contains("RESUME") } })
        #expect(eventually { log.records.contains { $0.event == "RESUME" } }, "watch saw the event the capture saw")
        vm.setReply("query-blockstats", FakeVM.replies(name: "web1", readOps: 777)["query-blockstats"]!)
        #expect(eventually { Exposition.value(text(metrics), F.blockOperations.name, [("domain", "web1"), ("device", "drive0"), ("operation", "read")]) == 777 },
                "watch kept polling while the capture ran")
        #expect(vm.connections == 1, "one connection, shared")
        w.stop()
        #expect(fake.count == 1)
        #expect(captures(metrics, "recorded") == 1)
        #expect(Exposition.value(text(metrics), F.watchCapturesRunning.name) == 0)
        let records = log.records.filter { $0.type == .capture }
        #expect(records.map(\.event) == ["started", "ended"])
        #expect(records.last?.reason == "watch-stopped" && records.last?.capture == fake.directories.first)
        #expect((Exposition.value(text(metrics), F.watchCaptureBytes.name) ?? 0) >= 4096)
    }

    @Test func capturesAreBoundedInNumberDiskAndRepetition() throws {
        let dir = TempDir()
        var settings = AutoRecordSettings(directory: dir.path + "/c")
        settings.maxConcurrent = 1
        settings.maxDiskBytes = 1 << 20
        settings.cooldownSeconds = 3600
        settings.skipRepeatSeconds = 0
        try AutoRecorder.prepare(settings)
        let fake = FakeCapture(), log = WatchEventCollector(), metrics = WatchMetrics()
        let recorder = AutoRecorder(settings: settings, metrics: metrics, events: log, record: fake.record)
        let vm1 = ScriptedMonitor(address: "vm1", replies: FakeVM.replies(name: "vm1"))
        let vm2 = ScriptedMonitor(address: "vm2", replies: FakeVM.replies(name: "vm2"))
        let shared1 = SharedQMPMonitor(vm1), shared2 = SharedQMPMonitor(vm2)
        let pid = getpid()
        recorder.trigger(key: "vm1", domain: "vm1", address: "vm1") { (shared1.client(), pid) }
        #expect(eventually { fake.count == 1 })
        recorder.trigger(key: "vm2", domain: "vm2", address: "vm2") { (shared2.client(), pid) }
        #expect(captures(metrics, "skipped-busy") == 1, "one at a time (--auto-record-limit 1)")
        // The running capture grows past the disk bound: it stops with disk-limit.
        FileManager.default.createFile(atPath: fake.directories[0] + "/big", contents: Data(count: 2 << 20))
        #expect(eventually { recorder.capturesRunning == 0 })
        #expect(log.records.last { $0.type == .capture }?.reason == "disk-limit")
        // DIR is full: no new capture; and vm1 is in its cooldown anyway.
        recorder.trigger(key: "vm3", domain: "vm/3 ../x", address: "vm3") { (shared2.client(), pid) }
        #expect(captures(metrics, "skipped-disk-full") == 1)
        try FileManager.default.removeItem(atPath: fake.directories[0] + "/big")
        Thread.sleep(forTimeInterval: 1.1)     // DIR's size is measured at most once a second
        recorder.trigger(key: "vm1", domain: "vm1", address: "vm1") { (shared1.client(), pid) }
        // A monitor whose QEMU cannot be named (TCP): record could not restore its log.
        recorder.trigger(key: "vm2", domain: "vm2", address: "tcp:10.0.0.5:4444") { (shared2.client(), nil) }
        #expect(eventually { captures(metrics, "skipped-no-pid") == 1 })
        #expect(fake.count == 1, "vm1 was recorded an hour ago at most: not again; vm2 had no pid")
        // A monitor that cannot be reached is a failed capture, said in the log.
        recorder.trigger(key: "vm4", domain: "vm4", address: "vm4") { throw QMPError.closed(address: "vm4") }
        #expect(eventually { captures(metrics, "failed") == 1 })
        recorder.trigger(key: "vm3", domain: "vm/3 ../x", address: "vm3") { (shared2.client(), pid) }
        #expect(eventually { fake.count == 2 })
        #expect(fake.directories[1].hasPrefix(settings.directory + "/vm_3_.._x-"), "a domain is made a file name, never a path")
        recorder.stop(waiting: 5)
        #expect(recorder.capturesRunning == 0)
        #expect(captures(metrics, "recorded") == 2)
        #expect(captures(metrics, "failed") == 1)
        #expect(log.records.contains { $0.type == .capture && $0.event == "failed" && $0.domain == "vm4" })
    }

    /// A libvirt domain's BLOCK_IO_ERROR (libvirt's QMP event subscription) records it through
    /// libvirt's passthrough, on a connection of the capture's own; the start record says the taint.
    @Test func aLibvirtDomainIsRecordedThroughLibvirt() throws {
        let dir = TempDir()
        let daemon = FakeLibvirtDaemon()
        daemon.start(FakeDomain.stats("web1", uuid: "u-1"), announce: false)
        let domainMonitor = ScriptedMonitor(address: "libvirt:web1", replies: FakeVM.replies(name: nil))
        daemon.recordingMonitor = (domainMonitor, getpid())
        let fake = FakeCapture(), log = WatchEventCollector(), metrics = WatchMetrics()
        let settings = AutoRecordSettings(directory: dir.path + "/c")
        try AutoRecorder.prepare(settings)
        let recorder = AutoRecorder(settings: settings, metrics: metrics, events: log, record: fake.record)
        let w = Watcher(discoveries: [], libvirt: [FakeLibvirtConnector(daemon: daemon)], settings: .fast, metrics: metrics,
                        events: log, autoRecorder: recorder)
        w.start()
        #expect(eventually { Exposition.value(text(metrics), F.vmRunning.name, [("domain", "web1")]) == 1 })
        daemon.qmp("u-1", "web1", FakeDomain.blockIOError)
        #expect(eventually { fake.count == 1 })
        #expect(fake.statuses == ["running"], "the capture's queries go to the domain's monitor through libvirt")
        w.stop()
        let started = log.records.first { $0.type == .capture && $0.event == "started" }
        #expect(started?.domain == "web1" && started?.qmp == "libvirt:web1")
        #expect(started?.message?.contains("tainted") == true)
        #expect(captures(metrics, "recorded") == 1)
    }

    /// A storm of BLOCK_IO_ERRORs on a VM that gets no capture is said and counted once per
    /// skipRepeatSeconds, not once per error; the running capture's VM costs nothing more.
    @Test func anErrorStormIsSkippedOnceNotPerError() throws {
        let dir = TempDir()
        var settings = AutoRecordSettings(directory: dir.path + "/c")
        settings.maxConcurrent = 1
        try AutoRecorder.prepare(settings)
        let fake = FakeCapture(), log = WatchEventCollector(), metrics = WatchMetrics()
        let recorder = AutoRecorder(settings: settings, metrics: metrics, events: log, record: fake.record)
        let s1 = SharedQMPMonitor(ScriptedMonitor(address: "vm1", replies: FakeVM.replies(name: "vm1")))
        let s2 = SharedQMPMonitor(ScriptedMonitor(address: "vm2", replies: FakeVM.replies(name: "vm2")))
        let pid = getpid()
        recorder.trigger(key: "vm1", domain: "vm1", address: "vm1") { (s1.client(), pid) }
        #expect(eventually { fake.count == 1 })
        for _ in 0..<1000 {
            recorder.trigger(key: "vm1", domain: "vm1", address: "vm1") { (s1.client(), pid) }
            recorder.trigger(key: "vm2", domain: "vm2", address: "vm2") { (s2.client(), pid) }
        }
        #expect(captures(metrics, "skipped-busy") == 1)
        #expect(log.records.filter { $0.event == "skipped" }.count == 1)
        #expect(fake.count == 1)
        // vm1's capture ends: vm2, skipped a moment ago, is recorded at its next error.
        fake.lock.withLock { fake.endNow = true }
        #expect(eventually { recorder.capturesRunning == 0 })
        fake.lock.withLock { fake.endNow = false }
        recorder.trigger(key: "vm2", domain: "vm2", address: "vm2") { (s2.client(), pid) }
        #expect(eventually { fake.count == 2 })
        #expect(fake.directories.last?.contains("/vm2-") == true)
        recorder.stop(waiting: 5)
    }

    @Test func settingsAreCheckedAtStart() throws {
        #expect(throws: WatchError.badAutoRecordSetting("--auto-record-limit goes with --auto-record DIR")) {
            try WatchConfig(qmp: ["/x"], autoRecordLimit: 2).resolved()
        }
        #expect(throws: WatchError.badAutoRecordSetting("--auto-record-limit 0: want 1-64 captures at once")) {
            try WatchConfig(qmp: ["/x"], autoRecord: "/tmp/c", autoRecordLimit: 0).resolved()
        }
        let c = try WatchConfig.parse(#"qmp = "/x"\#nauto-record = "/var/lib/kvmscope/captures"\#nauto-record-limit = 3\#nauto-record-disk = "1G""#)
        let o = try c.resolved()
        #expect(o.autoRecord?.directory == "/var/lib/kvmscope/captures" && o.autoRecord?.maxConcurrent == 3 && o.autoRecord?.maxDiskBytes == 1 << 30)
        #expect(throws: WatchError.self) { try AutoRecorder.prepare(AutoRecordSettings(directory: "/proc/kvmscope-captures")) }
        // root's access(2) says yes to sysfs, where mkdir fails: tried, not asked.
        #expect(throws: WatchError.badAutoRecord(path: "/sys/kernel", reason: "Operation not permitted")) {
            try AutoRecorder.prepare(AutoRecordSettings(directory: "/sys/kernel"))
        }
        let nested = TempDir()
        try AutoRecorder.prepare(AutoRecordSettings(directory: nested.path + "/a/b"))
        #expect(FileManager.default.fileExists(atPath: nested.path + "/a/b"), "made with its parents")
        let relative = try WatchConfig(qmp: ["/x"], autoRecord: "caps").resolved()
        #expect(relative.autoRecord?.directory == FileManager.default.currentDirectoryPath + "/caps", "made absolute")
    }
}
