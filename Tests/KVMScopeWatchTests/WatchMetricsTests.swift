import Foundation
import Testing
@testable import KVMScopeWatch
import KVMScopeTestSupport

/// The series store: QEMU's cumulative counters mirrored as they are, resets, renames, limits,
/// and an exposition promtool accepts.
@Suite struct WatchMetricsTests {
    let F = WatchMetricFamilies.self

    @Test func countersFollowQEMUsValuesAndItsResets() throws {
        let m = WatchMetrics()
        m.addVM(1, domain: "vm1")
        let ops: [(String, String)] = [("domain", "vm1"), ("device", "drive0"), ("operation", "read")]
        #expect(m.setCounter(F.blockOperations, vm: 1, ["drive0", "read"], to: 100))
        #expect(Exposition.value(String(decoding: m.render(), as: UTF8.self), F.blockOperations.name, ops) == 100)
        #expect(m.setCounter(F.blockOperations, vm: 1, ["drive0", "read"], to: 150))
        #expect(Exposition.value(String(decoding: m.render(), as: UTF8.self), F.blockOperations.name, ops) == 150)
        // The VM restarted: QEMU counts from 0 again; exported as it is (rate() sees a reset), not 150 + 30.
        #expect(m.setCounter(F.blockOperations, vm: 1, ["drive0", "read"], to: 30))
        #expect(Exposition.value(String(decoding: m.render(), as: UTF8.self), F.blockOperations.name, ops) == 30)
        // Nanoseconds are exported as seconds.
        #expect(m.setCounter(F.blockOperationSeconds, vm: 1, ["drive0", "read"], to: 2_500_000_000, scale: 1e-9))
        #expect(m.setCounter(F.blockOperationSeconds, vm: 1, ["drive0", "read"], to: 3_000_000_000, scale: 1e-9))
        let secs = try #require(Exposition.value(String(decoding: m.render(), as: UTF8.self), F.blockOperationSeconds.name, ops))
        #expect(abs(secs - 3.0) < 1e-9)
        // Many small steps do not drift away from QEMU's total (each step is taken from it, not summed).
        for ns in stride(from: 3_000_000_001, through: 3_000_100_000, by: 7) {
            _ = m.setCounter(F.blockOperationSeconds, vm: 1, ["drive0", "read"], to: Int64(ns), scale: 1e-9)
        }
        let after = try #require(Exposition.value(String(decoding: m.render(), as: UTF8.self), F.blockOperationSeconds.name, ops))
        #expect(abs(after - 3.000099996) < 1e-12, "\(after)")
    }

    @Test func renameKeepsCountsAndRemoveDropsEverySeries() {
        let m = WatchMetrics()
        m.addVM(7, domain: "vm1.qmp")
        m.increment(F.watchQMPErrors, vm: 7, ["connect"])
        m.increment(F.watchQMPErrors, vm: 7, ["connect"])
        m.setGauge(F.vmQMPUp, vm: 7, [], to: 1)
        m.renameVM(7, to: "web1")
        var text = String(decoding: m.render(), as: UTF8.self)
        #expect(Exposition.value(text, F.watchQMPErrors.name, [("domain", "web1"), ("kind", "connect")]) == 2)
        #expect(Exposition.value(text, F.watchQMPErrors.name, [("domain", "vm1.qmp"), ("kind", "connect")]) == nil)
        #expect(Exposition.value(text, F.watchVMs.name) == 1)
        m.removeVM(7)
        m.increment(F.watchQMPErrors, vm: 7, ["connect"])      // a worker finishing after its VM left: ignored
        text = String(decoding: m.render(), as: UTF8.self)
        #expect(!text.contains("web1"))
        #expect(Exposition.value(text, F.watchVMs.name) == 0)
    }

    @Test func aMonitorInventingDeviceNamesIsBounded() {
        let m = WatchMetrics()
        m.addVM(1, domain: "vm1")
        for i in 0..<WatchMetrics.maxSeriesPerMetricPerVM {
            #expect(m.setCounter(F.blockBytes, vm: 1, ["d\(i)", "read"], to: 1))
        }
        #expect(!m.setCounter(F.blockBytes, vm: 1, ["one-too-many", "read"], to: 1))
        #expect(m.setCounter(F.blockBytes, vm: 1, ["d0", "read"], to: 2), "existing series still update")
    }

    @Test func pausedIsAStateSet() {
        let m = WatchMetrics()
        m.addVM(1, domain: "vm1")
        m.setState(F.vmPaused, vm: 1, ["io-error"])
        m.setState(F.vmPaused, vm: 1, ["paused"])
        var text = String(decoding: m.render(), as: UTF8.self)
        #expect(Exposition.value(text, F.vmPaused.name, [("domain", "vm1"), ("reason", "io-error")]) == 0)
        #expect(Exposition.value(text, F.vmPaused.name, [("domain", "vm1"), ("reason", "paused")]) == 1)
        m.setAll(F.vmPaused, vm: 1, to: 0)
        text = String(decoding: m.render(), as: UTF8.self)
        #expect(Exposition.value(text, F.vmPaused.name, [("domain", "vm1"), ("reason", "paused")]) == 0)
    }
}

/// The event log never blocks a VM's worker on its reader.
@Suite struct WatchEventLogTests {
    @Test(.timeLimit(.minutes(1))) func aReaderThatStopsReadingCostsDroppedLinesNotABlockedWorker() throws {
        // The writer stays blocked in write(2) until the read end closes, then gets EPIPE: as the
        // CLI does (main.swift), take that as an error return, not a process-killing SIGPIPE.
        signal(SIGPIPE, SIG_IGN)
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]) }
        let log = WatchEventLog(descriptor: fds[1], owned: true)
        var r = WatchEventRecord(type: .connection, time: 1, domain: "vm1", qmp: "unix:/run/vm1.qmp", event: "lost")
        r.message = String(repeating: "x", count: 1000)
        // A pipe holds 64 KiB; nobody reads it. Every write must still return.
        for _ in 0..<20_000 { log.write(r) }
        #expect(log.droppedLines > 0, "past the queue's bound lines are dropped and counted")
        log.close(waiting: 0.2)
    }

    @Test func linesArriveWholeAndInOrder() throws {
        let dir = TempDir()
        let log = try WatchEventLog(path: dir.path + "/e.jsonl")
        for i in 0..<1000 { log.write(WatchEventRecord(type: .event, time: Double(i), domain: "vm1", qmp: "q", event: "STOP")) }
        log.close()
        let lines = try String(contentsOfFile: dir.path + "/e.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 1000)
        let times = lines.compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }.compactMap { $0["time"] as? Double }
        #expect(times == (0..<1000).map(Double.init))
        #expect(log.droppedLines == 0)
    }
}

/// The metric contract is documented whole: every family watch can export has its row in
/// docs/watch.md (what it means, what to do) and in docs/watch-operations.md (the fleet view).
@Suite struct WatchMetricDocsTests {
    @Test func everyMetricIsDocumented() throws {
        for doc in ["docs/watch.md", "docs/watch-operations.md"] {
            let text = try String(contentsOf: LabFixtures.repoRoot.appendingPathComponent(doc), encoding: .utf8)
            for f in WatchMetricFamilies.all {
                #expect(text.contains("| `\(f.name)` |"), "\(doc) has no row for \(f.name)")
            }
        }
    }
}
