import Foundation
import Testing
import KVMScopeTestSupport
@testable import KVMScopeWatch

/// Real Unix sockets, misbehaving peers: each fault costs only its own VM, is counted, and the
/// healthy VM beside it keeps being polled and served.
@Suite(.serialized) struct WatchFaultTests {
    let F = WatchMetricFamilies.self

    func watcher(_ dir: TempDir, _ patterns: [String], log: WatchEventCollector? = nil) throws -> Watcher {
        Watcher(discoveries: [try QMPSocketDiscovery(patterns: patterns, greetingTimeoutSeconds: 0.5)], settings: .fast, events: log)
    }

    func text(_ w: Watcher) -> String { String(decoding: w.metrics.render(), as: UTF8.self) }

    @Test func garbageAndStallingPeersAreCountedAndTheHealthyVMIsServed() throws {
        let dir = TempDir()
        let good = try FakeQMPServer(path: dir.path + "/good.qmp", behaviour: .qemu, replies: FakeVM.replies(name: "web1"))
        let garbage = try FakeQMPServer(path: dir.path + "/console.qmp", behaviour: .garbage)
        let stall = try FakeQMPServer(path: dir.path + "/hung.qmp", behaviour: .stall)
        let stuck = try FakeQMPServer(path: dir.path + "/stuck.qmp", behaviour: .hung)
        defer { good.stop(); garbage.stop(); stall.stop(); stuck.stop() }
        let w = try watcher(dir, [dir.path + "/*.qmp"])
        w.start()
        defer { w.stop() }
        #expect(w.watched.count == 4)
        #expect(eventually {
            let t = text(w)
            return (Exposition.value(t, F.watchQMPErrors.name, [("domain", "console.qmp"), ("kind", "not-qmp")]) ?? 0) >= 2
                && (Exposition.value(t, F.watchQMPErrors.name, [("domain", "hung.qmp"), ("kind", "no-greeting")]) ?? 0) >= 2
                && (Exposition.value(t, F.watchQMPErrors.name, [("domain", "stuck.qmp"), ("kind", "timeout")]) ?? 0) >= 2
        })
        let t = text(w)
        #expect(Exposition.value(t, F.vmQMPUp.name, [("domain", "web1")]) == 1)
        #expect(Exposition.value(t, F.vmQMPUp.name, [("domain", "console.qmp")]) == 0)
        #expect(Exposition.value(t, F.vmQMPUp.name, [("domain", "hung.qmp")]) == 0)
        #expect(Exposition.value(t, F.vmQMPUp.name, [("domain", "stuck.qmp")]) == 0, "a QEMU that stops answering mid-session")
        #expect(Exposition.value(t, F.blockOperations.name, [("domain", "web1"), ("device", "drive0"), ("operation", "read")]) == 120)
        #expect(Exposition.value(t, F.vmRunning.name, [("domain", "console.qmp")]) == nil, "no state is made up for a VM never reached")
        // The healthy VM went on being polled while the others failed: its counters follow QEMU's.
        good.setReply("query-blockstats", FakeVM.replies(name: "web1", readOps: 500)["query-blockstats"]!)
        #expect(eventually { Exposition.value(text(w), F.blockOperations.name, [("domain", "web1"), ("device", "drive0"), ("operation", "read")]) == 500 })
        #expect(good.connections == 1, "one connection kept, not one per poll")
    }

    @Test func aVMThatShutsDownIsNotCountedAsAMonitorFault() throws {
        let dir = TempDir()
        let log = WatchEventCollector()
        let vm = try FakeQMPServer(path: dir.path + "/vm1.qmp", behaviour: .qemu, replies: FakeVM.replies(name: "vm1"))
        let other = try FakeQMPServer(path: dir.path + "/vm2.qmp", behaviour: .qemu, replies: FakeVM.replies(name: "vm2"))
        defer { other.stop() }
        let w = try watcher(dir, [dir.path + "/vm1.qmp", dir.path + "/vm2.qmp"], log: log)
        w.start()
        defer { w.stop() }
        #expect(eventually { Exposition.value(text(w), F.vmQMPUp.name, [("domain", "vm1")]) == 1 })
        vm.shutDownVM()                       // SHUTDOWN, monitor closed, socket removed, as QEMU does
        #expect(eventually { (Exposition.value(text(w), F.watchQMPErrors.name, [("domain", "vm1"), ("kind", "connect")]) ?? 0) >= 1 })
        let t = text(w)
        #expect(log.records.contains { $0.event == "SHUTDOWN" && $0.domain == "vm1" && $0.reason == "guest-shutdown" })
        #expect(Exposition.value(t, F.watchQMPErrors.name, [("domain", "vm1"), ("kind", "closed")]) == nil,
                "QEMU closing its monitor after SHUTDOWN is the VM ending, not a monitor fault")
        #expect(Exposition.value(t, F.vmQMPUp.name, [("domain", "vm1")]) == 0)
        #expect(Exposition.value(t, F.vmQMPUp.name, [("domain", "vm2")]) == 1)
    }

    @Test func aSocketThatDisappearsAndComesBackIsReconnectedAndCounted() throws {
        let dir = TempDir()
        let path = dir.path + "/vm1.qmp"
        var vm = try FakeQMPServer(path: path, behaviour: .qemu, replies: FakeVM.replies(name: "vm1"))
        let other = try FakeQMPServer(path: dir.path + "/vm2.qmp", behaviour: .qemu, replies: FakeVM.replies(name: "vm2"))
        defer { other.stop() }
        let w = try watcher(dir, [path, dir.path + "/vm2.qmp"])   // named paths: watched while the socket is gone
        w.start()
        defer { w.stop() }
        #expect(eventually { Exposition.value(text(w), F.vmQMPUp.name, [("domain", "vm1")]) == 1 })
        vm.stop()                             // closed without SHUTDOWN (QEMU killed), socket removed
        #expect(eventually {
            let t = text(w)
            return Exposition.value(t, F.vmQMPUp.name, [("domain", "vm1")]) == 0
                && (Exposition.value(t, F.watchQMPErrors.name, [("domain", "vm1"), ("kind", "connect")]) ?? 0) >= 1
        })
        #expect(Exposition.value(text(w), F.watchQMPErrors.name, [("domain", "vm1"), ("kind", "closed")]) == 1)
        #expect(Exposition.value(text(w), F.vmRunning.name, [("domain", "vm1")]) == nil, "state unknown while it is gone")
        #expect(Exposition.value(text(w), F.vmQMPUp.name, [("domain", "vm2")]) == 1)
        vm = try FakeQMPServer(path: path, behaviour: .qemu, replies: FakeVM.replies(name: "vm1", readOps: 7))
        defer { vm.stop() }
        #expect(eventually { Exposition.value(text(w), F.vmQMPUp.name, [("domain", "vm1")]) == 1 })
        let t = text(w)
        #expect(Exposition.value(t, F.watchQMPReconnects.name, [("domain", "vm1")]) == 1)
        #expect(Exposition.value(t, F.blockOperations.name, [("domain", "vm1"), ("device", "drive0"), ("operation", "read")]) == 7,
                "the new QEMU's counters, as they are (a reset for rate())")
    }

    @Test func globsAreRescannedForNewSockets() throws {
        let dir = TempDir()
        let w = try watcher(dir, [dir.path + "/*.qmp"])
        w.start()
        defer { w.stop() }
        #expect(w.watched.isEmpty)
        let vm = try FakeQMPServer(path: dir.path + "/late.qmp", behaviour: .qemu, replies: FakeVM.replies(name: "late"))
        defer { vm.stop() }
        #expect(eventually { Exposition.value(text(w), F.vmQMPUp.name, [("domain", "late")]) == 1 })
        #expect(Exposition.value(text(w), F.watchVMs.name) == 1)
        vm.stop()                             // its socket is gone: a glob's VM is no longer watched
        #expect(eventually { w.watched.isEmpty && !text(w).contains(#"domain="late""#) })
        #expect(Exposition.value(text(w), F.watchVMs.name) == 0)
    }
}
