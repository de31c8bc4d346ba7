import CLibvirt
import Foundation
import KVMScopeCore
import KVMScopeLive

/// `LibvirtHost` over the libvirt client library: one connection, subscribed once for every
/// domain's lifecycle events (virConnectDomainEventRegisterAny with no domain) and QMP events
/// (virConnectDomainQemuMonitorEventRegister with no domain and no event name: every event of
/// every domain, those started later included), statistics for all running domains in one
/// call. Subscribing to QMP events does not taint a domain (libvirt taints on passthrough
/// commands only: src/qemu/qemu_driver.c qemuDomainQemuMonitorCommandWithFiles); watch sends
/// none unless asked (`qemuMonitorCommand`, `--libvirt-passthrough`).
///
/// Callbacks run on `LibvirtEventLoop`'s thread (the one `record --domain` uses) and only queue;
/// the close callback (the daemon went away, or keepalive gave up) ends the queue.
public final class LibvirtHostConnection: LibvirtHost, @unchecked Sendable {
    public let uri: String
    public private(set) var qmpEvents: QMPEventSubscription = .unavailable("not subscribed")
    private var conn: OpaquePointer?
    private let queue: HostEventQueue
    private var lifecycleCallback: Int32 = -1
    private var monitorCallback: Int32 = -1
    private var closeRegistered = false
    private let lock = NSLock()
    private let worker = DispatchQueue(label: "kvmscope.libvirt.host")

    /// Most events held between two reads; past it they are counted and dropped.
    public static let maxQueuedEvents = 100_000

    /// Opens `uri` read-write, or with virConnectOpenReadOnly when `readOnly` (then there are
    /// no QMP events, only statistics and lifecycle events).
    public init(uri: String, readOnly: Bool = false) throws {
        LibvirtEventLoop.start()
        self.uri = uri
        queue = HostEventQueue(limit: Self.maxQueuedEvents)
        guard let c = readOnly ? virConnectOpenReadOnly(uri) : virConnectOpen(uri) else {
            throw LibvirtError.cannotConnect(uri: uri, message: LibvirtMonitor.lastError().message)
        }
        conn = c
        let opaque = { Unmanaged.passRetained(self.queue).toOpaque() }
        var o = opaque()
        if virConnectRegisterCloseCallback(c, hostConnectionClosed, o, releaseHostQueue) == 0 { closeRegistered = true }
        else { Unmanaged<HostEventQueue>.fromOpaque(o).release() }   // an in-process driver has none: nothing to close
        o = opaque()
        lifecycleCallback = virConnectDomainEventRegisterAny(c, nil, Int32(VIR_DOMAIN_EVENT_ID_LIFECYCLE.rawValue),
                                                             unsafeBitCast(hostLifecycleEvent, to: virConnectDomainEventGenericCallback.self),
                                                             o, releaseHostQueue)
        if lifecycleCallback < 0 {
            Unmanaged<HostEventQueue>.fromOpaque(o).release()
            let e = LibvirtMonitor.lastError()
            close()
            throw LibvirtError.failed(call: "virConnectDomainEventRegisterAny(LIFECYCLE)", code: e.code, message: e.message)
        }
        o = opaque()
        monitorCallback = virConnectDomainQemuMonitorEventRegister(c, nil, nil, hostMonitorEvent, o, releaseHostQueue, 0)
        if monitorCallback < 0 {
            Unmanaged<HostEventQueue>.fromOpaque(o).release()
            let e = LibvirtMonitor.lastError()
            switch e.code {
            case Int32(VIR_ERR_OPERATION_DENIED.rawValue):
                qmpEvents = .unavailable("libvirt refuses QMP events on a read-only connection (\(e.message))")
            case Int32(VIR_ERR_NO_SUPPORT.rawValue):
                qmpEvents = .unavailable("this libvirt driver has no QMP events (\(e.message))")
            case Int32(VIR_ERR_ACCESS_DENIED.rawValue):
                qmpEvents = .unavailable("libvirt's access control denies QMP events (\(e.message))")
            default:
                close()
                throw LibvirtError.failed(call: "virConnectDomainQemuMonitorEventRegister", code: e.code, message: e.message)
            }
        } else {
            qmpEvents = .subscribed
        }
        // Keepalive: a daemon that stops answering closes the connection instead of hanging it.
        _ = virConnectSetKeepAlive(c, 5, 3)
    }

    deinit { close() }

    public func close() {
        lock.lock(); defer { lock.unlock() }
        guard let c = conn else { return }
        if monitorCallback >= 0 { _ = virConnectDomainQemuMonitorEventDeregister(c, monitorCallback); monitorCallback = -1 }
        if lifecycleCallback >= 0 { _ = virConnectDomainEventDeregisterAny(c, lifecycleCallback); lifecycleCallback = -1 }
        if closeRegistered { _ = virConnectUnregisterCloseCallback(c, hostConnectionClosed); closeRegistered = false }
        virConnectClose(c)
        conn = nil
        queue.end("closed by kvmscope")
    }

    private func connection() throws -> OpaquePointer {
        guard let c = lock.withLock({ conn }) else { throw LibvirtError.connectionLost(uri: uri, reason: "closed") }
        if virConnectIsAlive(c) == 0 { throw LibvirtError.connectionLost(uri: uri, reason: queue.endReason ?? "the connection is not alive") }
        return c
    }

    /// A failed call: the connection's end when it is gone, else libvirt's error.
    private func failure(_ call: String) -> Error {
        let e = LibvirtMonitor.lastError()
        if let c = lock.withLock({ conn }), virConnectIsAlive(c) == 0 {
            return LibvirtError.connectionLost(uri: uri, reason: queue.endReason ?? e.message)
        }
        return LibvirtError.failed(call: call, code: e.code, message: e.message)
    }

    // MARK: - Statistics

    public func allDomainStats() throws -> [LibvirtDomainStats] {
        let c = try connection()
        var records: UnsafeMutablePointer<virDomainStatsRecordPtr?>?
        let stats = UInt32(VIR_DOMAIN_STATS_STATE.rawValue | VIR_DOMAIN_STATS_BLOCK.rawValue)
        // NOWAIT: a domain whose QEMU is busy (a job holds it) gives what libvirt knows without
        // asking it, instead of holding up every other domain's statistics.
        let flags = UInt32(VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE.rawValue) | UInt32(VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT.rawValue)
        let n = virConnectGetAllDomainStats(c, stats, &records, flags)
        guard n >= 0, let records else { throw failure("virConnectGetAllDomainStats") }
        defer { virDomainStatsRecordListFree(records) }
        var out: [LibvirtDomainStats] = []
        for i in 0..<Int(n) {
            guard let r = records[i], let dom = r.pointee.dom else { continue }
            let name = virDomainGetName(dom).map { String(cString: $0) } ?? "?"
            var buf = [CChar](repeating: 0, count: 64)
            guard virDomainGetUUIDString(dom, &buf) == 0 else { continue }
            let uuid = String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            out.append(Self.parse(params: r.pointee.params, count: r.pointee.nparams, uuid: uuid, name: name))
        }
        return out
    }

    /// Longest `block.count` taken (as BlockStatsParser.maxDisks: bounds labels and work).
    static let maxDisks = 256

    static func parse(params: UnsafeMutablePointer<virTypedParameter>?, count: Int32, uuid: String, name: String) -> LibvirtDomainStats {
        func int(_ key: String) -> Int32? { var v: Int32 = 0; return virTypedParamsGetInt(params, count, key, &v) == 1 ? v : nil }
        func uint(_ key: String) -> UInt32? { var v: UInt32 = 0; return virTypedParamsGetUInt(params, count, key, &v) == 1 ? v : nil }
        func counter(_ key: String) -> Int64? {
            var v: UInt64 = 0
            guard virTypedParamsGetULLong(params, count, key, &v) == 1, v <= UInt64(Int64.max) else { return nil }
            return Int64(v)
        }
        func string(_ key: String) -> String? {
            var v: UnsafePointer<CChar>?
            guard virTypedParamsGetString(params, count, key, &v) == 1, let v else { return nil }
            return String(cString: v)
        }
        var disks: [LibvirtDiskStats]?
        if let n = uint("block.count") {
            var list: [LibvirtDiskStats] = []
            for i in 0..<Int(min(n, UInt32(maxDisks))) {
                guard let target = string("block.\(i).name"), !target.isEmpty else { continue }
                var d = LibvirtDiskStats(name: target)
                d.readRequests = counter("block.\(i).rd.reqs"); d.readBytes = counter("block.\(i).rd.bytes")
                d.readTimeNs = counter("block.\(i).rd.times")
                d.writeRequests = counter("block.\(i).wr.reqs"); d.writeBytes = counter("block.\(i).wr.bytes")
                d.writeTimeNs = counter("block.\(i).wr.times")
                d.flushRequests = counter("block.\(i).fl.reqs"); d.flushTimeNs = counter("block.\(i).fl.times")
                list.append(d)
            }
            disks = list
        }
        return LibvirtDomainStats(uuid: uuid, name: name, state: int("state.state") ?? 0, reason: int("state.reason") ?? 0, disks: disks)
    }

    // MARK: - Domain XML, passthrough

    private func lookup(_ uuid: String) throws -> OpaquePointer {
        let c = try connection()
        guard let d = virDomainLookupByUUIDString(c, uuid) else { throw failure("virDomainLookupByUUIDString") }
        return d
    }

    public func diskNames(uuid: String) throws -> DomainDiskNames {
        let d = try lookup(uuid)
        defer { virDomainFree(d) }
        guard let xml = virDomainGetXMLDesc(d, 0) else { throw failure("virDomainGetXMLDesc") }
        defer { free(xml) }
        return DomainDiskNames(domainXML: String(cString: xml))
    }

    public func diskErrors(uuid: String) throws -> [String: String] {
        let d = try lookup(uuid)
        defer { virDomainFree(d) }
        // With no array libvirt says how many entries to give it (the domain's disk count).
        let size = virDomainGetDiskErrors(d, nil, 0, 0)
        guard size >= 0 else { throw failure("virDomainGetDiskErrors") }
        guard size > 0 else { return [:] }
        var errors = [virDomainDiskError](repeating: virDomainDiskError(disk: nil, error: 0), count: min(Int(size), Self.maxDisks))
        let n = virDomainGetDiskErrors(d, &errors, UInt32(errors.count), 0)
        guard n >= 0 else { throw failure("virDomainGetDiskErrors") }
        var out: [String: String] = [:]
        for e in errors.prefix(Int(n)) {
            guard let disk = e.disk else { continue }
            defer { free(disk) }
            if let status = Self.ioStatus(code: e.error) { out[String(cString: disk)] = status }
        }
        return out
    }

    /// virDomainDiskErrorCode → QEMU's io-status name (qemuMonitorJSONGetBlockInfo maps
    /// `failed` to UNSPEC and `nospace` to NO_SPACE); nil for a code this libvirt does not have.
    static func ioStatus(code: Int32) -> String? {
        switch code {
        case Int32(VIR_DOMAIN_DISK_ERROR_NONE.rawValue): return "ok"
        case Int32(VIR_DOMAIN_DISK_ERROR_UNSPEC.rawValue): return "failed"
        case Int32(VIR_DOMAIN_DISK_ERROR_NO_SPACE.rawValue): return "nospace"
        default: return nil
        }
    }

    public func qemuMonitorCommand(uuid: String, _ command: String, timeout: Double) throws -> Any {
        let d = try lookup(uuid)
        defer { virDomainFree(d) }
        let call = PassthroughCall(domain: d, command: try PassthroughJSON.command(command, arguments: nil))
        let done = DispatchSemaphore(value: 0)
        worker.async { call.run(); done.signal() }
        guard done.wait(timeout: .now() + max(0, timeout)) == .success else { throw QMPError.timedOut(command: command, seconds: timeout) }
        if let reply = call.reply { return try PassthroughJSON.reply(reply, command: command, qemuVersion: "?") }
        let e = call.error ?? (code: -1, message: "no reply and no error")
        if let c = lock.withLock({ conn }), virConnectIsAlive(c) == 0 { throw LibvirtError.connectionLost(uri: uri, reason: e.message) }
        if e.code == Int32(VIR_ERR_OPERATION_DENIED.rawValue) { throw LibvirtError.readOnly(uri: uri) }
        throw LibvirtError.failed(call: "virDomainQemuMonitorCommand(\(command))", code: e.code, message: e.message)
    }

    // MARK: - Events

    public func takeEvents(waiting seconds: Double) throws -> [LibvirtHostEvent] {
        try queue.take(waiting: seconds, uri: uri)
    }
}

/// Events from libvirt's thread for the watch thread: bounded in count, in delivery order.
final class HostEventQueue: @unchecked Sendable {
    private let limit: Int
    private let cond = NSCondition()
    private var events: [LibvirtHostEvent] = []
    private var dropped = 0
    private var ended: String?

    init(limit: Int) { self.limit = limit }

    func push(_ e: LibvirtHostEvent) {
        cond.lock(); defer { cond.unlock() }
        guard ended == nil else { return }
        if events.count >= limit { dropped += 1 } else { events.append(e) }
        cond.signal()
    }

    func end(_ reason: String) {
        cond.lock(); defer { cond.unlock() }
        if ended == nil { ended = reason }
        cond.broadcast()
    }

    var endReason: String? { cond.lock(); defer { cond.unlock() }; return ended }

    /// What is queued (a `.dropped` first when some were lost), or what comes within `seconds`;
    /// once the queue has ended and is empty, throws `connectionLost`.
    func take(waiting seconds: Double, uri: String) throws -> [LibvirtHostEvent] {
        cond.lock(); defer { cond.unlock() }
        if events.isEmpty, dropped == 0, ended == nil, seconds > 0 {
            _ = cond.wait(until: Date().addingTimeInterval(min(seconds, 3600)))
        }
        if events.isEmpty, dropped == 0, let ended { throw LibvirtError.connectionLost(uri: uri, reason: ended) }
        var out = events
        if dropped > 0 { out.insert(.dropped(dropped), at: 0) }
        events = []; dropped = 0
        return out
    }
}

private func hostQueue(_ opaque: UnsafeMutableRawPointer?) -> HostEventQueue? {
    opaque.map { Unmanaged<HostEventQueue>.fromOpaque($0).takeUnretainedValue() }
}

private let releaseHostQueue: virFreeCallback = { opaque in
    if let opaque { Unmanaged<HostEventQueue>.fromOpaque(opaque).release() }
}

/// The domain's UUID and name, valid only during the callback (libvirt frees the handle after).
private func identify(_ dom: OpaquePointer?) -> (uuid: String, name: String)? {
    guard let dom else { return nil }
    var buf = [CChar](repeating: 0, count: 64)
    guard virDomainGetUUIDString(dom, &buf) == 0 else { return nil }
    let uuid = String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    return (uuid, virDomainGetName(dom).map { String(cString: $0) } ?? "?")
}

private let hostMonitorEvent: virConnectDomainQemuMonitorEventCallback = { _, dom, name, seconds, micros, details, opaque in
    guard let q = hostQueue(opaque), let name, let id = identify(dom) else { return }
    var s = seconds, us = micros
    if s < 0 {   // libvirt: -1 when QEMU's timestamp was not available; then the arrival time
        var ts = timespec(); clock_gettime(CLOCK_REALTIME, &ts)
        s = Int64(ts.tv_sec); us = UInt32(ts.tv_nsec / 1000)
    }
    if let m = PassthroughJSON.event(name: String(cString: name), seconds: s, microseconds: us,
                                     details: details.map { String(cString: $0) }) {
        q.push(.qmp(uuid: id.uuid, name: id.name, line: m.line))
    }
}

private let hostLifecycleEvent: @convention(c) (OpaquePointer?, OpaquePointer?, Int32, Int32, UnsafeMutableRawPointer?) -> Int32 = {
    _, dom, event, detail, opaque in
    if let q = hostQueue(opaque), let id = identify(dom) { q.push(.lifecycle(uuid: id.uuid, name: id.name, event: event, detail: detail)) }
    return 0
}

private let hostConnectionClosed: virConnectCloseFunc = { _, reason, opaque in
    // virConnectCloseReason: 0 error, 1 end of file, 2 keepalive, 3 client.
    let why = ["an error on the connection", "libvirtd closed the connection", "libvirtd stopped answering keepalives", "closed by the client"]
    hostQueue(opaque)?.end(reason >= 0 && Int(reason) < why.count ? why[Int(reason)] : "the connection closed")
}

/// Opens `LibvirtHostConnection`s to one URI (again after each loss).
public struct LibvirtURIConnector: LibvirtHostConnector {
    public let uri: String
    public let readOnly: Bool
    public init(uri: String, readOnly: Bool = false) throws {
        guard !uri.isEmpty, uri.utf8.count <= 4096 else { throw LibvirtError.badAddress(uri, "a connection URI must be 1-4096 bytes") }
        self.uri = uri
        self.readOnly = readOnly
    }
    public func open() throws -> any LibvirtHost { try LibvirtHostConnection(uri: uri, readOnly: readOnly) }
}
