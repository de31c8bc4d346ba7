import Foundation
import KVMScopeLibvirt
@testable import KVMScopeWatch

/// A libvirt daemon in memory, behind the same `LibvirtHost` protocol as libvirt's client
/// library: its domains, the events it delivers to every open connection, and restarts (every
/// connection open then is lost, opens fail until it is up again).
final class FakeLibvirtDaemon: @unchecked Sendable {
    let uri: String
    private let lock = NSLock()
    private var domains: [LibvirtDomainStats] = []
    private var names: [String: DomainDiskNames] = [:]
    private var hosts: [FakeLibvirtHost] = []
    private var up = true
    var readOnly = false
    private(set) var opens = 0
    private(set) var passthroughCalls = 0
    var blockstatsReply: String = "[]"
    /// What `monitor(domain:)` hands `--auto-record` (nil: libvirt refuses).
    var recordingMonitor: (any QMPMonitor, Int32?)?
    /// virDomainGetDiskErrors' answer per domain (target → io-status); nil: the call fails.
    var diskErrors: [String: [String: String]]? = [:]

    init(uri: String = "qemu:///system") { self.uri = uri }

    func start(_ d: LibvirtDomainStats, names n: DomainDiskNames = DomainDiskNames(), announce: Bool = true) {
        lock.withLock { domains.removeAll { $0.uuid == d.uuid }; domains.append(d); names[d.uuid] = n }
        if announce { deliver(.lifecycle(uuid: d.uuid, name: d.name, event: LibvirtHostEvent.started, detail: 0)) }
    }

    func update(_ uuid: String, _ change: (inout LibvirtDomainStats) -> Void) {
        lock.withLock { if let i = domains.firstIndex(where: { $0.uuid == uuid }) { change(&domains[i]) } }
    }

    func stop(_ uuid: String) {
        let name = lock.withLock { () -> String? in
            defer { domains.removeAll { $0.uuid == uuid } }
            return domains.first { $0.uuid == uuid }?.name
        }
        if let name { deliver(.lifecycle(uuid: uuid, name: name, event: LibvirtHostEvent.stopped, detail: 0)) }
    }

    /// A QMP event line of a domain, as libvirt's subscription delivers it.
    func qmp(_ uuid: String, _ name: String, _ line: String) { deliver(.qmp(uuid: uuid, name: name, line: Array(line.utf8))) }

    /// libvirtd stops: every connection is lost, opens fail until `comeBack`.
    func goDown() {
        let all = lock.withLock { () -> [FakeLibvirtHost] in up = false; defer { hosts = [] }; return hosts }
        for h in all { h.lose("libvirtd closed the connection") }
    }

    func comeBack() { lock.withLock { up = true } }

    fileprivate func open() throws -> FakeLibvirtHost {
        try lock.withLock {
            guard up else { throw LibvirtError.cannotConnect(uri: uri, message: "Failed to connect socket to '/run/libvirt/libvirt-sock': Connection refused") }
            opens += 1
            let h = FakeLibvirtHost(daemon: self, uri: uri,
                                    qmpEvents: readOnly ? .unavailable("libvirt refuses QMP events on a read-only connection") : .subscribed)
            hosts.append(h)
            return h
        }
    }

    fileprivate func stats() throws -> [LibvirtDomainStats] { lock.withLock { domains } }
    fileprivate func diskNames(_ uuid: String) -> DomainDiskNames { lock.withLock { names[uuid] ?? DomainDiskNames() } }
    fileprivate func errors(_ uuid: String) throws -> [String: String] {
        guard let all = lock.withLock({ diskErrors }) else {
            throw LibvirtError.failed(call: "virDomainGetDiskErrors", code: 55, message: "Requested operation is not valid: domain is not running")
        }
        return all[uuid] ?? [:]
    }
    fileprivate func passthrough() throws -> Any {
        let reply = lock.withLock { passthroughCalls += 1; return blockstatsReply }
        return try JSONSerialization.jsonObject(with: Data(reply.utf8))
    }

    private func deliver(_ e: LibvirtHostEvent) {
        let all = lock.withLock { hosts }   // a read-only connection's host drops QMP events itself
        for h in all { h.push(e) }
    }
}

final class FakeLibvirtHost: LibvirtHost, @unchecked Sendable {
    let uri: String
    let qmpEvents: QMPEventSubscription
    private weak var daemon: FakeLibvirtDaemon?
    private let cond = NSCondition()
    private var queued: [LibvirtHostEvent] = []
    private var lost: String?

    fileprivate init(daemon: FakeLibvirtDaemon, uri: String, qmpEvents: QMPEventSubscription) {
        self.daemon = daemon; self.uri = uri; self.qmpEvents = qmpEvents
    }

    fileprivate func push(_ e: LibvirtHostEvent) {
        cond.withLock { if case .qmp = e, qmpEvents != .subscribed { return }; queued.append(e); cond.signal() }
    }

    fileprivate func lose(_ why: String) { cond.withLock { lost = why; cond.broadcast() } }

    private func alive() throws -> FakeLibvirtDaemon {
        guard let d = daemon, cond.withLock({ lost == nil }) else { throw LibvirtError.connectionLost(uri: uri, reason: "libvirtd closed the connection") }
        return d
    }

    func allDomainStats() throws -> [LibvirtDomainStats] { try alive().stats() }
    func diskNames(uuid: String) throws -> DomainDiskNames { try alive().diskNames(uuid) }
    func diskErrors(uuid: String) throws -> [String: String] { try alive().errors(uuid) }
    func qemuMonitorCommand(uuid: String, _ command: String, timeout: Double) throws -> Any { try alive().passthrough() }

    func takeEvents(waiting seconds: Double) throws -> [LibvirtHostEvent] {
        cond.lock(); defer { cond.unlock() }
        if queued.isEmpty, lost == nil { _ = cond.wait(until: Date().addingTimeInterval(min(seconds, 0.05))) }
        if queued.isEmpty, let lost { throw LibvirtError.connectionLost(uri: uri, reason: lost) }
        defer { queued = [] }
        return queued
    }

    func close() { lose("closed by kvmscope") }
}

struct FakeLibvirtConnector: LibvirtHostConnector {
    let daemon: FakeLibvirtDaemon
    var uri: String { daemon.uri }
    func open() throws -> any LibvirtHost { try daemon.open() }
    func monitor(domain name: String) throws -> (monitor: any QMPMonitor, qemuPID: Int32?) {
        guard let (m, pid) = daemon.recordingMonitor else { throw LibvirtError.notRunning(name: name) }
        return (m, pid)
    }
}

enum FakeDomain {
    /// A running domain with one disk `vda`: `reads` read requests of 4 KiB, 1 ms each.
    static func stats(_ name: String, uuid: String, state: Int32 = 1, reason: Int32 = 1, reads: Int64 = 100, writes: Int64 = 10) -> LibvirtDomainStats {
        var vda = LibvirtDiskStats(name: "vda")
        vda.readRequests = reads; vda.readBytes = reads * 4096; vda.readTimeNs = reads * 1_000_000
        vda.writeRequests = writes; vda.writeBytes = writes * 4096; vda.writeTimeNs = writes * 2_000_000
        vda.flushRequests = 2; vda.flushTimeNs = 500
        return LibvirtDomainStats(uuid: uuid, name: name, state: state, reason: reason, disks: [vda])
    }

    /// The live XML of a -blockdev disk as libvirt 9 writes it (virsh dumpxml), cut to the disk.
    static let xml = """
    <domain type='kvm' id='3'>
      <name>web1</name>
      <devices>
        <disk type='file' device='disk'>
          <driver name='qemu' type='qcow2' error_policy='stop'/>
          <source file='/var/lib/libvirt/images/web1.qcow2' index='2'/>
          <backingStore type='file' index='3'>
            <format type='raw'/>
            <source file='/var/lib/libvirt/images/base.img'/>
            <backingStore/>
          </backingStore>
          <target dev='vda' bus='virtio'/>
          <alias name='virtio-disk0'/>
          <address type='pci' domain='0x0000' bus='0x04' slot='0x00' function='0x0'/>
        </disk>
        <disk type='file' device='cdrom'>
          <driver name='qemu' type='raw'/>
          <target dev='sda' bus='sata'/>
          <readonly/>
          <alias name='sata0-0-0'/>
        </disk>
      </devices>
    </domain>
    """

    static let blockIOError = #"{"timestamp": {"seconds": 1796156375, "microseconds": 381944}, "event": "BLOCK_IO_ERROR", "data": {"device":"","node-name":"libvirt-2-format","operation":"write","action":"stop","nospace":false,"reason":"Input/output error"}}"#
}
