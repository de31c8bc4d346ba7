import Foundation
import Testing
@testable import KVMScopeWatch

/// Fake VMs through the whole watcher: polls become series, events become counters and JSON
/// Lines, and the exposition passes promtool.
@Suite struct WatcherRenderingTests {
    let F = WatchMetricFamilies.self
    static let blockIOError = ##"{"timestamp": {"seconds": 1796143391, "microseconds": 271589}, "event": "BLOCK_IO_ERROR", "data": {"device": "drive0", "nospace": false, "node-name": "#block123", "reason": "Input/output error", "operation": "write", "action": "stop"}}"##
    static let stop = #"{"timestamp": {"seconds": 1796143391, "microseconds": 271700}, "event": "STOP"}"#

    @Test func aPausedVMOnAnIOErrorIsExportedAndLogged() throws {
        let vm = ScriptedMonitor(address: "unix:/run/vm1.qmp", replies: FakeVM.replies(name: "vm1", failedWrites: 0))
        let other = ScriptedMonitor(address: "unix:/run/db.qmp", replies: FakeVM.replies(name: nil))
        let log = WatchEventCollector()
        let watcher = Watcher(discoveries: [FixedDiscovery(sources: [
            ScriptedSource(key: "unix:/run/vm1.qmp", fallbackName: "vm1.qmp", monitor: vm),
            ScriptedSource(key: "unix:/run/db.qmp", fallbackName: "db.qmp", monitor: other),
        ])], settings: .fast, events: log)
        watcher.start()
        defer { watcher.stop() }
        let text = { String(decoding: watcher.metrics.render(), as: UTF8.self) }
        #expect(eventually { Exposition.value(text(), F.vmQMPUp.name, [("domain", "vm1")]) == 1 })
        #expect(eventually { Exposition.value(text(), F.vmQMPUp.name, [("domain", "db.qmp")]) == 1 }, "no -name: the socket's file name")
        #expect(Exposition.value(text(), F.vmRunning.name, [("domain", "vm1")]) == 1)

        // The guest's write fails, werror=stop pauses the VM.
        vm.setReply("query-status", #"{"running": false, "singlestep": false, "status": "io-error"}"#)
        vm.setReply("query-block", ##"[{"device": "drive0", "io-status": "failed", "inserted": {"node-name": "#block123"}}]"##)
        vm.setReply("query-blockstats", FakeVM.replies(name: "vm1", failedWrites: 1)["query-blockstats"]!)
        vm.push(Self.blockIOError)
        vm.push(Self.stop)
        let errLabels = [("domain", "vm1"), ("device", "drive0"), ("node", "#block123"), ("operation", "write"), ("action", "stop"), ("errno", "EIO")]
        #expect(eventually { Exposition.value(text(), F.vmPaused.name, [("domain", "vm1"), ("reason", "io-error")]) == 1 })
        let t = text()
        #expect(Exposition.value(t, F.blockIOErrors.name, errLabels) == 1)
        #expect(Exposition.value(t, F.vmRunning.name, [("domain", "vm1")]) == 0)
        #expect(Exposition.value(t, F.blockIOStatus.name, [("domain", "vm1"), ("device", "drive0"), ("status", "failed")]) == 1)
        #expect(Exposition.value(t, F.blockIOStatus.name, [("domain", "vm1"), ("device", "drive0"), ("status", "ok")]) == 0)
        #expect(Exposition.value(t, F.blockFailedOperations.name, [("domain", "vm1"), ("device", "drive0"), ("operation", "write")]) == 1)
        #expect(Exposition.value(t, F.blockOperations.name, [("domain", "vm1"), ("device", "drive0"), ("operation", "read")]) == 120)
        #expect(Exposition.value(t, F.blockBytes.name, [("domain", "vm1"), ("device", "drive0"), ("operation", "read")]) == 491520)
        #expect(Exposition.value(t, F.blockOperationSeconds.name, [("domain", "vm1"), ("device", "drive0"), ("operation", "read")]) == 2.5)
        #expect(Exposition.value(t, F.vmRunning.name, [("domain", "db.qmp")]) == 1, "the other VM is untouched")
        #expect(Exposition.value(t, F.blockOperations.name, [("domain", "vm1"), ("device", "drive0"), ("operation", "zone_append")]) == 0,
                "QEMU reports zone_append: exported, at 0")
        if let problems = try Exposition.promtoolProblems(t) { Issue.record("promtool check metrics: \(problems)\n\(t)") }

        let ioErrors = log.records.filter { $0.event == "BLOCK_IO_ERROR" }
        let r = try #require(ioErrors.first)
        #expect(r.domain == "vm1" && r.device == "drive0" && r.errno == "EIO" && r.errnoNumber == 5 && r.action == "stop")
        #expect(r.time == 1796143391.271589)
        let why = try #require(r.explanation)
        #expect(why.contains("EIO") && why.contains("paused the VM") && why.contains("not known"))
        #expect(log.records.contains { $0.event == "STOP" && $0.domain == "vm1" })
        #expect(log.records.contains { $0.type == .connection && $0.event == "connected" && $0.qemuVersion == "7.2.22" })
    }

    /// A guest retrying a failing disk: every BLOCK_IO_ERROR is counted and logged, but the state
    /// refresh they ask for is taken at most once a second, not once per event.
    @Test func anErrorStormCostsOneRefreshASecondNotOnePerEvent() throws {
        let vm = ScriptedMonitor(address: "unix:/run/vm1.qmp", replies: FakeVM.replies(name: "vm1"))
        vm.oneAtATime = true
        var settings = WatchSettings.fast
        settings.intervalSeconds = 3600
        let watcher = Watcher(discoveries: [FixedDiscovery(sources: [ScriptedSource(key: "k", fallbackName: "vm1.qmp", monitor: vm)])],
                              settings: settings)
        watcher.start()
        defer { watcher.stop() }
        let text = { String(decoding: watcher.metrics.render(), as: UTF8.self) }
        #expect(eventually { Exposition.value(text(), F.vmQMPUp.name, [("domain", "vm1")]) == 1 })
        let report = Self.blockIOError.replacingOccurrences(of: #""action": "stop""#, with: #""action": "report""#)
        for _ in 0..<500 { vm.push(report) }
        let labels = [("domain", "vm1"), ("device", "drive0"), ("node", "#block123"), ("operation", "write"), ("action", "report"), ("errno", "EIO")]
        #expect(eventually { Exposition.value(text(), F.blockIOErrors.name, labels) == 500 })
        #expect(vm.count("query-status") < 20, "\(vm.count("query-status")) polls for 500 events")
    }

    @Test func errnoFromQEMUsReasonText() {
        func errno(_ data: String) -> String? {
            let m = QMPMessage(line: Array(#"{"event": "BLOCK_IO_ERROR", "data": \#(data)}"#.utf8), object: [:])
            return VMWorker.event(from: m)?.blockIOError.flatMap { BlockIOErrorExplanation.errno(of: $0)?.name }
        }
        #expect(errno(#"{"device": "d", "operation": "write", "action": "report", "nospace": true, "reason": "No space left on device"}"#) == "ENOSPC")
        #expect(errno(#"{"device": "d", "operation": "write", "action": "report", "nospace": true}"#) == "ENOSPC", "nospace is QEMU's own ENOSPC test")
        #expect(errno(#"{"device": "d", "operation": "read", "action": "report", "nospace": false}"#) == nil, "no reason: unknown")
        #expect(errno(#"{"device": "d", "operation": "read", "action": "report", "nospace": false, "reason": "Permission denied"}"#) == "EACCES")
    }

    @Test func watchEventRecordsHaveEveryKey() throws {
        let r = WatchEventRecord(type: .connection, time: 1, domain: "vm1", qmp: "unix:/x", event: "lost")
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(r.jsonLine().utf8)) as? [String: Any])
        #expect(obj.count == 23, "every key present, null when it does not apply: \(obj.keys.sorted())")
        #expect(obj["schemaVersion"] as? Int == 2)
        #expect(obj["explanation"] is NSNull)
        #expect(obj["capture"] is NSNull, "capture: only on capture records")
    }
}
