import Foundation
import Testing
import KVMScopeLibvirt
import KVMScopeTestSupport
@testable import KVMScopeWatch

/// `--libvirt` against a libvirt daemon in memory (FakeLibvirt.swift): what watch makes of
/// libvirt's statistics and events, the series it leaves absent, and libvirtd restarting.
@Suite(.serialized) struct WatchLibvirtTests {
    let F = WatchMetricFamilies.self
    let uuid1 = "6f9619ff-8b86-d011-b42d-00c04fc964ff"
    let uuid2 = "0b2e7f4c-1111-4c1e-9c55-5f2a2d7e0a01"

    final class Notices: @unchecked Sendable {
        private let lock = NSLock()
        private var lines: [String] = []
        func add(_ s: String) { lock.withLock { lines.append(s) } }
        var all: [String] { lock.withLock { lines } }
    }

    func watcher(_ daemon: FakeLibvirtDaemon, qmp: [any VMSource] = [], passthrough: Bool = false, settings: WatchSettings = .fast,
                 log: WatchEventCollector? = nil, notices: Notices? = nil) -> Watcher {
        Watcher(discoveries: [FixedDiscovery(sources: qmp)], libvirt: [FakeLibvirtConnector(daemon: daemon)], libvirtPassthrough: passthrough,
                settings: settings, events: log, notice: { notices?.add($0) })
    }

    func text(_ w: Watcher) -> String { String(decoding: w.metrics.render(), as: UTF8.self) }
    func vda(_ op: String, _ domain: String = "web1") -> [(String, String)] { [("domain", domain), ("device", "vda"), ("operation", op)] }

    @Test func domainsAreListedAndTheirCountersMirroredUnderTheirTargetNames() throws {
        let daemon = FakeLibvirtDaemon()
        daemon.start(FakeDomain.stats("web1", uuid: uuid1), names: DomainDiskNames(domainXML: FakeDomain.xml), announce: false)
        let w = watcher(daemon)
        w.start()
        defer { w.stop() }
        #expect(eventually { Exposition.value(text(w), F.blockOperations.name, vda("read")) == 100 })
        let t = text(w)
        #expect(w.watched == ["libvirt:web1": "web1"])
        #expect(Exposition.value(t, F.blockBytes.name, vda("read")) == 409_600)
        #expect(abs((Exposition.value(t, F.blockOperationSeconds.name, vda("read")) ?? 0) - 0.1) < 1e-9, "100 reads of 1 ms")
        #expect(Exposition.value(t, F.blockOperations.name, vda("write")) == 10)
        #expect(Exposition.value(t, F.blockOperations.name, vda("flush")) == 2)
        #expect(Exposition.value(t, F.blockBytes.name, vda("flush")) == nil, "libvirt has no flush bytes")
        #expect(Exposition.value(t, F.vmRunning.name, [("domain", "web1")]) == 1)
        #expect(Exposition.value(t, F.vmQMPUp.name, [("domain", "web1")]) == 1)
        // libvirt has no failed/invalid counts: absent, never a made-up 0.
        #expect(!t.contains(F.blockFailedOperations.name + "{"))
        #expect(!t.contains(F.blockInvalidOperations.name + "{"))
        // virDomainGetDiskErrors listed no disk: vda is ok.
        #expect(Exposition.value(t, F.blockIOStatus.name, [("domain", "web1"), ("device", "vda"), ("status", "ok")]) == 1)
        #expect(Exposition.value(t, F.libvirtUp.name, [("uri", "qemu:///system")]) == 1)
        #expect(Exposition.value(t, F.libvirtQMPEvents.name, [("uri", "qemu:///system")]) == 1)
        #expect(daemon.passthroughCalls == 0, "no monitor command without --libvirt-passthrough: the domain is not tainted")
        // The counters follow libvirt's.
        daemon.update(uuid1) { $0 = FakeDomain.stats("web1", uuid: uuid1, reads: 250) }
        #expect(eventually { Exposition.value(text(w), F.blockOperations.name, vda("read")) == 250 })
        #expect(try Exposition.promtoolProblems(text(w)) == nil)
    }

    @Test func aBlockIOErrorKeepsQEMUsErrnoAndIsCountedUnderTheDisksTarget() throws {
        let daemon = FakeLibvirtDaemon()
        let log = WatchEventCollector()
        daemon.start(FakeDomain.stats("web1", uuid: uuid1), names: DomainDiskNames(domainXML: FakeDomain.xml), announce: false)
        let w = watcher(daemon, log: log)
        w.start()
        defer { w.stop() }
        #expect(eventually { Exposition.value(text(w), F.vmRunning.name, [("domain", "web1")]) == 1 })
        // werror=stop: QEMU sends BLOCK_IO_ERROR (node-name libvirt-2-format, the -blockdev node
        // of the disk's image with index 2) and pauses; libvirt's state says paused, reason IOERROR.
        daemon.update(uuid1) { $0.state = 3; $0.reason = 5 }
        daemon.qmp(uuid1, "web1", FakeDomain.blockIOError)
        let errors: [(String, String)] = [("domain", "web1"), ("device", "vda"), ("node", "libvirt-2-format"), ("operation", "write"),
                                          ("action", "stop"), ("errno", "EIO")]
        #expect(eventually { Exposition.value(text(w), F.blockIOErrors.name, errors) == 1 })
        #expect(eventually { Exposition.value(text(w), F.vmPaused.name, [("domain", "web1"), ("reason", "io-error")]) == 1 })
        #expect(Exposition.value(text(w), F.vmRunning.name, [("domain", "web1")]) == 0)
        let e = try #require(log.records.first { $0.event == "BLOCK_IO_ERROR" })
        #expect(e.domain == "web1" && e.device == "vda" && e.errno == "EIO" && e.errnoNumber == 5 && e.qmp == "libvirt:web1")
        #expect(e.explanation?.hasPrefix("vda: QEMU's block layer got EIO (Input/output error)") == true)
    }

    @Test func aDomainStartedLaterIsFoundByItsLifecycleEventAndOneThatStopsEnds() throws {
        let daemon = FakeLibvirtDaemon()
        daemon.start(FakeDomain.stats("web1", uuid: uuid1), announce: false)
        var slow = WatchSettings.fast
        slow.intervalSeconds = 3600   // only the lifecycle events can make it look again
        let w = watcher(daemon, settings: slow)
        w.start()
        defer { w.stop() }
        #expect(eventually { w.watched["libvirt:web1"] != nil })
        daemon.start(FakeDomain.stats("db1", uuid: uuid2, reads: 7))
        #expect(eventually { Exposition.value(text(w), F.blockOperations.name, vda("read", "db1")) == 7 })
        #expect(Exposition.value(text(w), F.watchVMs.name) == 2)
        daemon.stop(uuid1)
        #expect(eventually { w.watched["libvirt:web1"] == nil })
        #expect(Exposition.value(text(w), F.blockOperations.name, vda("read")) == nil, "a domain that stopped: its series end")
        #expect(Exposition.value(text(w), F.watchVMs.name) == 1)
    }

    /// A reload's interval reaches the libvirt connections too (they kept the one at start).
    @Test func aReloadsIntervalReachesTheLibvirtDomains() throws {
        let daemon = FakeLibvirtDaemon()
        daemon.start(FakeDomain.stats("web1", uuid: uuid1), names: DomainDiskNames(domainXML: FakeDomain.xml), announce: false)
        var slow = WatchSettings.fast
        slow.intervalSeconds = 3600
        let w = watcher(daemon, settings: slow)
        w.start()
        defer { w.stop() }
        #expect(eventually { Exposition.value(text(w), F.blockOperations.name, vda("read")) == 100 })
        daemon.update(uuid1) { $0 = FakeDomain.stats("web1", uuid: uuid1, reads: 250) }
        w.reconfigure(discoveries: [FixedDiscovery(sources: [])], settings: .fast)
        #expect(eventually { Exposition.value(text(w), F.blockOperations.name, vda("read")) == 250 })
    }

    /// werror=stop: the disk's io-status is `failed` while the domain is paused on it, `ok` again
    /// after it resumes; when libvirt cannot say, the series are absent and the failure counted.
    @Test func ioStatusComesFromLibvirtsDiskErrors() throws {
        let daemon = FakeLibvirtDaemon()
        daemon.start(FakeDomain.stats("web1", uuid: uuid1), names: DomainDiskNames(domainXML: FakeDomain.xml), announce: false)
        let w = watcher(daemon)
        w.start()
        defer { w.stop() }
        func status(_ s: String) -> Double? {
            Exposition.value(text(w), F.blockIOStatus.name, [("domain", "web1"), ("device", "vda"), ("status", s)])
        }
        #expect(eventually { status("ok") == 1 })
        daemon.update(uuid1) { $0.state = 3; $0.reason = 5 }
        daemon.diskErrors = [uuid1: ["vda": "failed"]]
        #expect(eventually { status("failed") == 1 && status("ok") == 0 })
        #expect(Exposition.value(text(w), F.vmPaused.name, [("domain", "web1"), ("reason", "io-error")]) == 1)
        daemon.diskErrors = nil
        #expect(eventually { status("failed") == nil && status("ok") == nil }, "libvirt could not say: absent, not a guess")
        #expect((Exposition.value(text(w), F.libvirtErrors.name, [("uri", "qemu:///system"), ("kind", "disk-errors")]) ?? 0) >= 1)
        daemon.update(uuid1) { $0.state = 1; $0.reason = 1 }
        daemon.diskErrors = [:]
        #expect(eventually { status("ok") == 1 && status("failed") == 0 })
    }

    @Test func libvirtdRestartingKeepsTheRestServedAndIsReconnectedAndCounted() throws {
        let daemon = FakeLibvirtDaemon()
        let notices = Notices()
        let log = WatchEventCollector()
        daemon.start(FakeDomain.stats("web1", uuid: uuid1), announce: false)
        let qmpVM = ScriptedMonitor(address: "unix:/run/vm9.qmp", replies: FakeVM.replies(name: "vm9"))
        let w = watcher(daemon, qmp: [ScriptedSource(key: "unix:/run/vm9.qmp", fallbackName: "vm9.qmp", monitor: qmpVM)],
                        log: log, notices: notices)
        w.start()
        defer { w.stop() }
        let uri = [("uri", "qemu:///system")]
        #expect(eventually { Exposition.value(text(w), F.vmRunning.name, [("domain", "web1")]) == 1 })
        daemon.goDown()
        #expect(eventually {
            let t = text(w)
            return Exposition.value(t, F.libvirtUp.name, uri) == 0
                && (Exposition.value(t, F.libvirtErrors.name, uri + [("kind", "closed")]) ?? 0) >= 1
                && (Exposition.value(t, F.libvirtErrors.name, uri + [("kind", "connect")]) ?? 0) >= 1
        })
        var t = text(w)
        #expect(Exposition.value(t, F.blockOperations.name, vda("read")) == 100, "known counters are kept while libvirt is away")
        #expect(Exposition.value(t, F.vmRunning.name, [("domain", "web1")]) == nil, "its state is unknown meanwhile")
        #expect(Exposition.value(t, F.vmQMPUp.name, [("domain", "web1")]) == 0)
        #expect(Exposition.value(t, F.vmQMPUp.name, [("domain", "vm9")]) == 1, "the QMP VM beside it is still polled")
        #expect(notices.all.contains { $0.contains("keep their counters meanwhile (reconnecting)") })
        // Back, with a domain started while it was away.
        daemon.start(FakeDomain.stats("db1", uuid: uuid2, reads: 3), announce: false)
        daemon.comeBack()
        #expect(eventually {
            let t = text(w)
            return Exposition.value(t, F.libvirtReconnects.name, uri) == 1 && Exposition.value(t, F.libvirtUp.name, uri) == 1
                && Exposition.value(t, F.vmRunning.name, [("domain", "web1")]) == 1
                && Exposition.value(t, F.blockOperations.name, vda("read", "db1")) == 3
        })
        t = text(w)
        #expect(daemon.opens >= 2)
        let links = log.records.filter { $0.type == .connection && $0.domain == "web1" }.map(\.event)
        #expect(links.prefix(3) == ["connected", "lost", "connected"], "the event log says the domain is watched again: \(links)")
        // Events are subscribed again: a BLOCK_IO_ERROR after the restart is counted.
        daemon.qmp(uuid1, "web1", FakeDomain.blockIOError)
        #expect(eventually { (Exposition.value(text(w), F.blockIOErrors.name, [("domain", "web1"), ("device", "libvirt-2-format"), ("node", "libvirt-2-format"), ("operation", "write"), ("action", "stop"), ("errno", "EIO")]) ?? 0) == 1 },
                "without XML names the node-name is the device label (as on the QMP path)")
        #expect(try Exposition.promtoolProblems(text(w)) == nil)
    }

    @Test func aReadOnlyConnectionWatchesStateAndCountersAndSaysWhatIsMissing() throws {
        let daemon = FakeLibvirtDaemon()
        daemon.readOnly = true
        let notices = Notices()
        daemon.start(FakeDomain.stats("web1", uuid: uuid1), names: DomainDiskNames(domainXML: FakeDomain.xml), announce: false)
        let w = watcher(daemon, notices: notices)
        w.start()
        defer { w.stop() }
        #expect(eventually { Exposition.value(text(w), F.blockOperations.name, vda("read")) == 100 })
        daemon.qmp(uuid1, "web1", FakeDomain.blockIOError)   // libvirt gives none on a read-only connection
        Thread.sleep(forTimeInterval: 0.3)
        let t = text(w)
        #expect(Exposition.value(t, F.libvirtQMPEvents.name, [("uri", "qemu:///system")]) == 0)
        #expect(Exposition.value(t, F.libvirtUp.name, [("uri", "qemu:///system")]) == 1)
        #expect(!t.contains(F.blockIOErrors.name + "{"))
        let said = notices.all.filter { $0.contains("state and counters only") }
        #expect(said.count == 1, "said once: \(notices.all)")
        #expect(said.first?.contains("kvmscope_block_io_errors_total is absent") == true)
    }

    @Test func passthroughAddsTheFailedCountsAndIsTheOnlyWayACommandIsSent() throws {
        let daemon = FakeLibvirtDaemon()
        // QEMU's query-blockstats of a libvirt domain: the -blockdev disk under its qdev id,
        // and one added through <qemu:commandline> (not in libvirt's XML) under its drive id.
        daemon.blockstatsReply = ##"[{"device": "", "qdev": "virtio-disk0", "node-name": "libvirt-2-format", "stats": {"rd_operations": 99, "failed_rd_operations": 0, "failed_wr_operations": 3, "invalid_wr_operations": 1, "wr_operations": 9}}, {"device": "drive0", "qdev": "/machine/peripheral-anon/device[0]/virtio-backend", "stats": {"wr_operations": 5, "failed_wr_operations": 2}}]"##
        daemon.start(FakeDomain.stats("web1", uuid: uuid1), names: DomainDiskNames(domainXML: FakeDomain.xml), announce: false)
        let w = watcher(daemon, passthrough: true)
        w.start()
        defer { w.stop() }
        // Both disks' series: a scrape may fall between the two disks' writes of one poll.
        let drive0: [(String, String)] = [("domain", "web1"), ("device", "drive0"), ("operation", "write")]
        #expect(eventually { Exposition.value(text(w), F.blockFailedOperations.name, vda("write")) == 3
            && Exposition.value(text(w), F.blockFailedOperations.name, drive0) == 2 })
        let t = text(w)
        #expect(Exposition.value(t, F.blockInvalidOperations.name, vda("write")) == 1)
        #expect(Exposition.value(t, F.blockOperations.name, vda("read")) == 100, "libvirt's own counters stay libvirt's")
        #expect(Exposition.value(t, F.blockFailedOperations.name, [("domain", "web1"), ("device", "drive0"), ("operation", "write")]) == 2)
        #expect(daemon.passthroughCalls >= 1)
    }
}

/// The `device` label of a BLOCK_IO_ERROR on each path: QEMU's BlockBackend name is the label on
/// the QMP path, even when a device's qdev id equals another drive's name; libvirt's -drive-era
/// `drive-ALIAS` is the disk's target.
@Suite struct BlockIOErrorDeviceLabelTests {
    let F = WatchMetricFamilies.self
    static func event(device: String, node: String) -> String {
        #"{"timestamp": {"seconds": 1796156375, "microseconds": 1}, "event": "BLOCK_IO_ERROR", "data": {"device": "\#(device)", "node-name": "\#(node)", "operation": "read", "action": "report", "nospace": false, "reason": "Input/output error"}}"#
    }

    @Test func onTheQMPPathTheDriveNameIsTheLabelWhateverTheQdevIds() throws {
        let metrics = WatchMetrics()
        let w = VMSeriesWriter(id: 1, domain: "vm1", address: "unix:/run/vm1.qmp", metrics: metrics, events: nil)
        metrics.addVM(1, domain: "vm1")
        // -drive id=a -device …,drive=a,id=b  and  -drive id=b -device …,drive=b,id=a
        w.aliases = BlockStatsParser.parseBlock(try JSONSerialization.jsonObject(with: Data(
            #"[{"device": "a", "qdev": "b", "inserted": {"node-name": "na"}}, {"device": "b", "qdev": "a", "inserted": {"node-name": "nb"}}]"#.utf8))).aliases
        let line = Self.event(device: "a", node: "na")
        _ = w.handle(QMPMessage(line: Array(line.utf8), object: [:]))
        let t = String(decoding: metrics.render(), as: UTF8.self)
        #expect(Exposition.value(t, F.blockIOErrors.name, [("domain", "vm1"), ("device", "a"), ("node", "na"), ("operation", "read"), ("action", "report"), ("errno", "EIO")]) == 1, "\(t)")
    }

    @Test func throughLibvirtTheDriveEraNameIsTheTarget() throws {
        let metrics = WatchMetrics()
        let w = VMSeriesWriter(id: 1, domain: "web1", address: "libvirt:web1", metrics: metrics, events: nil)
        metrics.addVM(1, domain: "web1")
        let names = DomainDiskNames(domainXML: FakeDomain.xml)
        w.aliases = names.aliases; w.deviceAliases = names.aliases
        let line = Self.event(device: "drive-virtio-disk0", node: "#block142")
        _ = w.handle(QMPMessage(line: Array(line.utf8), object: [:]))
        let t = String(decoding: metrics.render(), as: UTF8.self)
        #expect(Exposition.value(t, F.blockIOErrors.name, [("domain", "web1"), ("device", "vda"), ("node", "#block142"), ("operation", "read"), ("action", "report"), ("errno", "EIO")]) == 1, "\(t)")
    }
}

/// libvirt's data as watch's model, with no watcher running.
@Suite struct LibvirtModelTests {
    @Test func domainXMLNamesEveryQEMUNameOfADisk() {
        let n = DomainDiskNames(domainXML: FakeDomain.xml)
        #expect(n.targets == ["vda", "sda"])
        for name in ["virtio-disk0", "drive-virtio-disk0", "/machine/peripheral/virtio-disk0/virtio-backend",
                     "libvirt-2-format", "libvirt-2-storage", "libvirt-3-format", "libvirt-3-storage"] {
            #expect(n.aliases[name] == "vda", "\(name)")
        }
        #expect(n.aliases["sata0-0-0"] == "sda")
        #expect(DomainDiskNames(domainXML: "<domain><disk type='file'><source index='1'/></disk></domain>") == DomainDiskNames(),
                "a disk without a target is left out")
        #expect(DomainDiskNames(domainXML: "<disk type='file'><target dev='vd&apos;b'/>").targets.isEmpty, "an unterminated disk")
        #expect(DomainDiskNames(domainXML: "<disk type='file'><target dev='v&amp;b'/><alias name='a'/></disk>").aliases["a"] == "v&b")
    }

    @Test func libvirtStatesAreQEMUsRunStateNames() {
        #expect(LibvirtDomainState.runState(state: 1, reason: 1) == (true, "running"))
        #expect(LibvirtDomainState.runState(state: 3, reason: 5) == (false, "io-error"))
        #expect(LibvirtDomainState.runState(state: 3, reason: 1) == (false, "paused"))
        #expect(LibvirtDomainState.runState(state: 3, reason: 99) == (false, "unknown"))
        #expect(LibvirtDomainState.runState(state: 6, reason: 0) == (false, "guest-panicked"))
        #expect(LibvirtDomainState.runState(state: 7, reason: 0) == (false, "suspended"))
    }

    @Test func statsWithoutBlockCountKeepTheDisksAsTheyWere() {
        let before = [LibvirtPollResult.disk(FakeDomain.stats("x", uuid: "u").disks![0])]
        let r = LibvirtPollResult.make(LibvirtDomainStats(uuid: "u", name: "x", state: 1, reason: 0, disks: nil), previousDisks: before)
        #expect(r.disks == before)
        #expect(r.disks[0].operations[.read]?.failed == nil, "no failed count is made up")
    }
}
