import CLibvirt
import Foundation
import KVMScopeCore
import KVMScopeLive

/// A libvirt domain's QEMU monitor, reached through libvirt itself: commands go through
/// virDomainQemuMonitorCommand (libvirt's QMP passthrough on the monitor it holds), events come
/// from virConnectDomainQemuMonitorEventRegister (every QMP event QEMU sends, as libvirt relays
/// it). libvirt keeps its monitor socket; kvmscope never touches it.
///
/// How it keeps the QMPMonitor contract:
/// - `execute` runs the call on a serial worker and waits at most `timeout` (libvirt's call has
///   no timeout of its own and waits as long as QEMU's main loop does); a call that times out is
///   left to finish on the worker, its answer discarded. A failure because the domain stopped or
///   the connection went away throws `QMPError.closed`.
/// - Events are delivered by libvirt's event loop (one thread, started once per process,
///   running virEventRunDefaultImpl) into a MonitorEventQueue, in libvirt's delivery order,
///   bounded at 64 MiB; its pipe is `pollDescriptor`.
///
/// libvirt marks a domain whose monitor got passthrough commands as tainted (custom-monitor,
/// src/qemu/qemu_driver.c qemuDomainQemuMonitorCommandWithFiles → qemuDomainObjTaint); the mark
/// stays until the domain is shut down. `taintMessages` reads what libvirt says about it.
public final class LibvirtMonitor: QMPMonitor, @unchecked Sendable {
    public let address: String
    public let target: LibvirtAddress
    public private(set) var qemuVersion = "?"
    /// The domain's UUID (virDomainGetUUIDString).
    public let uuid: String
    /// The domain's QEMU process on this host (DomainProcessLookup).
    public private(set) var qemuPID: Int32 = 0
    /// The driver's name (virConnectGetType: `QEMU`).
    public let driver: String

    public static let maxQueuedEventBytes = 64 << 20
    private var conn: OpaquePointer?
    private var domain: OpaquePointer?
    private let events: MonitorEventQueue
    private var monitorCallback: Int32 = -1
    private var lifecycleCallback: Int32 = -1
    private let worker = DispatchQueue(label: "kvmscope.libvirt.monitor")

    public var pollDescriptor: Int32 { events.pollDescriptor }

    /// Opens a read-write connection to `target.uri`, finds the running domain, subscribes to its
    /// QMP events, finds its QEMU process on this host, then asks `query-version` (the first
    /// monitor command).
    public convenience init(_ target: LibvirtAddress, procRoot: String = "/proc") throws {
        try self.init(target, readOnly: false, procRoot: procRoot)
    }

    /// `readOnly`: open with virConnectOpenReadOnly (the tests use it to prove the refusal; a
    /// read-only URI — the daemon's read-only socket — is refused the same way).
    init(_ target: LibvirtAddress, readOnly: Bool, procRoot: String = "/proc") throws {
        LibvirtEventLoop.start()
        self.target = target
        address = target.description
        events = try MonitorEventQueue(address: target.description, limitBytes: Self.maxQueuedEventBytes)
        guard let c = readOnly ? virConnectOpenReadOnly(target.uri) : virConnectOpen(target.uri) else {
            throw LibvirtError.cannotConnect(uri: target.uri, message: Self.lastError().message)
        }
        conn = c
        driver = virConnectGetType(c).map { String(cString: $0) } ?? "?"
        guard let d = virDomainLookupByName(c, target.domain) else {
            let e = Self.lastError()
            virConnectClose(c); conn = nil
            if e.code == Int32(VIR_ERR_NO_DOMAIN.rawValue) { throw LibvirtError.noSuchDomain(name: target.domain, uri: target.uri) }
            throw LibvirtError.failed(call: "virDomainLookupByName", code: e.code, message: e.message)
        }
        domain = d
        var buf = [CChar](repeating: 0, count: 64)
        uuid = virDomainGetUUIDString(d, &buf) == 0
            ? String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : "?"

        do {
            switch virDomainIsActive(d) {
            case 1: break
            case 0: throw LibvirtError.notRunning(name: target.domain)
            default: let e = Self.lastError(); throw LibvirtError.failed(call: "virDomainIsActive", code: e.code, message: e.message)
            }
            // In the order of their side effects, none until the last: subscribing to the QMP
            // events is refused on a read-only connection (VIR_ERR_OPERATION_DENIED, checked by
            // libvirt-qemu.c virConnectDomainQemuMonitorEventRegister, or by the daemon for a
            // client of its read-only socket) and by a driver without passthrough
            // (VIR_ERR_NO_SUPPORT); the QEMU process must be on this host (a remote URI's is
            // not); only then the first command, which makes libvirt taint the domain.
            try subscribe()
            guard uuid != "?" else { throw LibvirtError.failed(call: "virDomainGetUUIDString", code: -1, message: "no UUID") }
            switch DomainProcessLookup.find(uuid: uuid, pidFiles: DomainProcessLookup.pidFiles(name: target.domain), procRoot: procRoot) {
            case let .success(pid): qemuPID = pid
            case let .failure(f): throw LibvirtError.processNotFound(name: target.domain, uuid: uuid, detail: f.detail)
            }
            qemuVersion = PassthroughJSON.version(fromQueryVersion: try execute("query-version", arguments: nil, timeout: 30)) ?? "?"
        } catch {
            close()
            throw error
        }
    }

    deinit { close() }

    public func close() {
        guard let c = conn else { return }
        if monitorCallback >= 0 { _ = virConnectDomainQemuMonitorEventDeregister(c, monitorCallback); monitorCallback = -1 }
        if lifecycleCallback >= 0 { _ = virConnectDomainEventDeregisterAny(c, lifecycleCallback); lifecycleCallback = -1 }
        _ = virConnectUnregisterCloseCallback(c, libvirtConnectionClosed)
        if let d = domain { virDomainFree(d); domain = nil }
        virConnectClose(c)
        conn = nil
        events.end("closed by kvmscope")
    }

    // MARK: - Commands

    public func execute(_ command: String, arguments: [String: Any]?, timeout: Double) throws -> Any {
        guard let d = domain else { throw QMPError.closed(address: address) }
        let text = try PassthroughJSON.command(command, arguments: arguments)
        let call = PassthroughCall(domain: d, command: text)
        let done = DispatchSemaphore(value: 0)
        worker.async {
            call.run()
            done.signal()
        }
        guard done.wait(timeout: .now() + max(0, timeout)) == .success else {
            throw QMPError.timedOut(command: command, seconds: timeout)
        }
        if let reply = call.reply { return try PassthroughJSON.reply(reply, command: command, qemuVersion: qemuVersion) }
        throw failure(call.error ?? (code: -1, message: "no reply and no error"), command: command)
    }

    /// What a failed passthrough call means for the recorder.
    private func failure(_ e: (code: Int32, message: String), command: String, call: String? = nil) -> Error {
        switch e.code {
        case Int32(VIR_ERR_OPERATION_DENIED.rawValue): return LibvirtError.readOnly(uri: target.uri)
        case Int32(VIR_ERR_ACCESS_DENIED.rawValue): return LibvirtError.accessDenied(uri: target.uri, message: e.message)
        case Int32(VIR_ERR_NO_SUPPORT.rawValue): return LibvirtError.noPassthrough(uri: target.uri, driver: driver)
        default: break
        }
        // The domain stopped (or is stopping: its monitor hung up), or the connection to the
        // daemon is gone: the monitor is closed. A stopping domain's QEMU is given a few seconds
        // to exit, so the recorder's "is QEMU still running?" sees it gone, as it is a moment
        // later (libvirt's qemuProcessStop kills and reaps it).
        if let c = conn, virConnectIsAlive(c) == 0 { return QMPError.closed(address: address) }
        if let d = domain, virDomainIsActive(d) != 1 || events.hasEnded || !processAlive() {
            waitForExit(seconds: 10)
            return QMPError.closed(address: address)
        }
        return LibvirtError.failed(call: call ?? "virDomainQemuMonitorCommand(\(command))", code: e.code, message: e.message)
    }

    private func processAlive() -> Bool { qemuPID <= 0 || QEMUProcess.runs(pid: qemuPID) }

    private func waitForExit(seconds: Double) {
        guard qemuPID > 0 else { return }
        QEMUProcess.waitForExit(pid: qemuPID, seconds: seconds)
    }

    /// libvirt's messages about the domain's taint marks (virDomainGetMessages,
    /// VIR_DOMAIN_MESSAGE_TAINTING): after the first passthrough call,
    /// `tainted: custom monitor control commands issued`.
    public func taintMessages() -> [String] {
        guard let d = domain else { return [] }
        var msgs: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
        let n = virDomainGetMessages(d, &msgs, UInt32(VIR_DOMAIN_MESSAGE_TAINTING.rawValue))
        guard n > 0, let msgs else { return [] }
        var out: [String] = []
        for i in 0..<Int(n) { if let m = msgs[i] { out.append(String(cString: m)); free(m) } }
        free(msgs)
        return out
    }

    // MARK: - Events

    public func takeEvents(waiting seconds: Double) throws -> [QMPMessage] {
        try events.take(waiting: seconds)
    }

    private func subscribe() throws {
        guard let c = conn, let d = domain else { throw QMPError.closed(address: address) }
        // Each registration holds its own reference to the queue, released by libvirt's free
        // callback when the registration goes (virConnect…Deregister, or the connection's end).
        let opaque = { Unmanaged.passRetained(self.events).toOpaque() }
        var o = opaque()
        monitorCallback = virConnectDomainQemuMonitorEventRegister(c, d, nil, libvirtMonitorEvent, o, releaseQueue, 0)
        if monitorCallback < 0 {
            Unmanaged<MonitorEventQueue>.fromOpaque(o).release()
            let e = Self.lastError()
            throw failure((e.code, e.message), command: "(events)", call: "virConnectDomainQemuMonitorEventRegister")
        }
        o = opaque()
        lifecycleCallback = virConnectDomainEventRegisterAny(c, d, Int32(VIR_DOMAIN_EVENT_ID_LIFECYCLE.rawValue),
                                                             unsafeBitCast(libvirtLifecycleEvent, to: virConnectDomainEventGenericCallback.self),
                                                             o, releaseQueue)
        // Without lifecycle events a stop is still seen: the next command fails as closed.
        if lifecycleCallback < 0 { Unmanaged<MonitorEventQueue>.fromOpaque(o).release() }
        o = opaque()
        if virConnectRegisterCloseCallback(c, libvirtConnectionClosed, o, releaseQueue) < 0 {
            Unmanaged<MonitorEventQueue>.fromOpaque(o).release()   // a driver without one (in-process): nothing to close
        }
        // Keepalive: a daemon that stops answering closes the connection instead of hanging it
        // (only remote connections have it; others return 1 and that is fine).
        _ = virConnectSetKeepAlive(c, 5, 3)
    }

    // MARK: - Errors

    /// libvirt's last error on this thread (virGetLastError is per thread).
    static func lastError() -> (code: Int32, message: String) {
        guard let e = virGetLastError() else { return (-1, "unknown libvirt error") }
        let message = e.pointee.message.map { String(cString: $0) } ?? "libvirt error \(e.pointee.code)"
        return (e.pointee.code, message)
    }
}

/// One passthrough call, run on the monitor's worker thread; its result read after it signals.
final class PassthroughCall: @unchecked Sendable {
    let domain: OpaquePointer
    let command: String
    var reply: String?
    var error: (code: Int32, message: String)?
    /// Holds its own reference to the domain (virDomainRef), so a call still running after its
    /// caller timed out never uses a domain the monitor has freed on close.
    init(domain: OpaquePointer, command: String) {
        virDomainRef(domain)
        self.domain = domain; self.command = command
    }
    deinit { virDomainFree(domain) }
    func run() {
        var result: UnsafeMutablePointer<CChar>?
        if virDomainQemuMonitorCommand(domain, command, &result, 0) == 0, let r = result {
            reply = String(cString: r)
            free(r)
        } else {
            error = LibvirtMonitor.lastError()
        }
    }
}

/// libvirt's default event loop, run by one thread for the life of the process: the remote
/// driver needs a registered loop for events and keepalive (virEventRegisterDefaultImpl must come
/// before the connection is opened, libvirt-event.c).
enum LibvirtEventLoop {
    private static let started: Bool = {
        // libvirt prints every error to stderr by default; kvmscope reports them itself.
        virSetErrorFunc(nil, { _, _ in })
        guard virEventRegisterDefaultImpl() == 0 else { return false }
        let t = Thread {
            while true { if virEventRunDefaultImpl() < 0 { usleep(100_000) } }
        }
        t.name = "libvirt-events"
        t.start()
        return true
    }()

    static func start() { _ = started }
}

private func queue(_ opaque: UnsafeMutableRawPointer?) -> MonitorEventQueue? {
    opaque.map { Unmanaged<MonitorEventQueue>.fromOpaque($0).takeUnretainedValue() }
}

private let releaseQueue: virFreeCallback = { opaque in
    if let opaque { Unmanaged<MonitorEventQueue>.fromOpaque(opaque).release() }
}

private let libvirtMonitorEvent: virConnectDomainQemuMonitorEventCallback = { _, _, name, seconds, micros, details, opaque in
    guard let q = queue(opaque), let name else { return }
    var s = seconds, us = micros
    if s < 0 {   // libvirt: -1 when QEMU's timestamp was not available; then the arrival time
        var ts = timespec(); clock_gettime(CLOCK_REALTIME, &ts)
        s = Int64(ts.tv_sec); us = UInt32(ts.tv_nsec / 1000)
    }
    if let m = PassthroughJSON.event(name: String(cString: name), seconds: s, microseconds: us,
                                     details: details.map { String(cString: $0) }) {
        q.push(m)
    }
}

private let libvirtLifecycleEvent: @convention(c) (OpaquePointer?, OpaquePointer?, Int32, Int32, UnsafeMutableRawPointer?) -> Int32 = {
    _, _, event, _, opaque in
    if event == Int32(VIR_DOMAIN_EVENT_STOPPED.rawValue) { queue(opaque)?.end("the domain stopped") }
    return 0
}

private let libvirtConnectionClosed: virConnectCloseFunc = { _, _, opaque in
    queue(opaque)?.end("the connection to libvirt closed")
}
