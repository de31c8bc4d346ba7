import Foundation
import KVMScopeLive

/// Every running domain of one libvirt connection, as `watch --libvirt` reads them: one
/// connection for all domains, its statistics in one call, its events from one subscription.
/// `LibvirtHostConnection` is libvirt's; the tests give a fake, so what watch makes of the
/// data cannot tell where it came from.
public protocol LibvirtHost: AnyObject, Sendable {
    var uri: String { get }
    /// Whether QMP events are subscribed (virConnectDomainQemuMonitorEventRegister for every
    /// domain): not on a read-only connection, which libvirt refuses them
    /// (VIR_ERR_OPERATION_DENIED), nor with a driver without them (VIR_ERR_NO_SUPPORT).
    var qmpEvents: QMPEventSubscription { get }
    /// State and block counters of every running domain (virConnectGetAllDomainStats).
    func allDomainStats() throws -> [LibvirtDomainStats]
    /// The names QEMU knows a domain's disks by, from its live XML (virDomainGetXMLDesc).
    func diskNames(uuid: String) throws -> DomainDiskNames
    /// Lifecycle and QMP events in libvirt's delivery order, and what arrives within `seconds`
    /// if none is queued. Throws `LibvirtError.connectionLost` once the connection is gone.
    func takeEvents(waiting seconds: Double) throws -> [LibvirtHostEvent]
    /// The disks whose io-status is not `ok`, by target (`vda` → `failed` or `nospace`, QEMU's
    /// names), from virDomainGetDiskErrors: libvirt asks QEMU's query-block through its own
    /// monitor (no passthrough, no taint; a read-only connection may ask). A disk not in it is ok.
    func diskErrors(uuid: String) throws -> [String: String]
    /// A QMP command through libvirt's passthrough (virDomainQemuMonitorCommand): libvirt then
    /// marks the domain tainted (custom-monitor) until it shuts down.
    func qemuMonitorCommand(uuid: String, _ command: String, timeout: Double) throws -> Any
    func close()
}

/// Opens a `LibvirtHost` (again after the daemon restarted).
public protocol LibvirtHostConnector: Sendable {
    var uri: String { get }
    func open() throws -> any LibvirtHost
    /// A QMP monitor of the running domain `name` through libvirt's passthrough, and its QEMU's
    /// pid (`watch --auto-record` records it as `record --domain` does; the domain is then
    /// tainted custom-monitor). Its own connection: the watching one goes on meanwhile.
    func monitor(domain name: String) throws -> (monitor: any QMPMonitor, qemuPID: Int32?)
}

extension LibvirtHostConnector {
    public func monitor(domain name: String) throws -> (monitor: any QMPMonitor, qemuPID: Int32?) {
        let m = try LibvirtMonitor(try LibvirtAddress(domain: name, uri: uri))
        return (m, m.qemuPID > 0 ? m.qemuPID : nil)
    }
}

public enum QMPEventSubscription: Equatable, Sendable {
    case subscribed
    /// Why not, in one line.
    case unavailable(String)
}

/// A domain's `state.*` and `block.*` statistics (virConnectGetAllDomainStats with
/// VIR_DOMAIN_STATS_STATE | VIR_DOMAIN_STATS_BLOCK; the fields are listed in virsh(1) domstats).
public struct LibvirtDomainStats: Equatable, Sendable {
    public var uuid: String
    public var name: String
    /// `state.state` (virDomainState) and `state.reason` (its per-state reason enum).
    public var state: Int32
    public var reason: Int32
    /// nil when the record has no `block.count` (libvirt could not ask QEMU this time).
    public var disks: [LibvirtDiskStats]?

    public init(uuid: String, name: String, state: Int32, reason: Int32, disks: [LibvirtDiskStats]?) {
        self.uuid = uuid; self.name = name; self.state = state; self.reason = reason; self.disks = disks
    }
}

/// One `block.N.*` entry: `name` is the disk's target (`vda`); counters are nil when absent or
/// beyond Int64.max. libvirt has no failed or invalid counts (its `errors` is Xen's).
public struct LibvirtDiskStats: Equatable, Sendable {
    public var name: String
    public var readRequests: Int64?, readBytes: Int64?, readTimeNs: Int64?
    public var writeRequests: Int64?, writeBytes: Int64?, writeTimeNs: Int64?
    public var flushRequests: Int64?, flushTimeNs: Int64?

    public init(name: String) { self.name = name }
}

public enum LibvirtHostEvent: Equatable, Sendable {
    /// VIR_DOMAIN_EVENT_ID_LIFECYCLE: `event` is virDomainEventType (STARTED 2, STOPPED 5, …).
    case lifecycle(uuid: String, name: String, event: Int32, detail: Int32)
    /// A QMP event of the domain, as QEMU sent it (PassthroughJSON.event).
    case qmp(uuid: String, name: String, line: [UInt8])
    /// Events the bound could not hold (counted, dropped).
    case dropped(Int)

    public static let started: Int32 = 2, stopped: Int32 = 5
}

/// libvirt's domain state as the run-state names QEMU's query-status uses, so
/// `kvmscope_vm_paused{reason}` means the same for a libvirt domain as for a QMP one.
///
/// libvirt derives a paused domain's reason from QEMU's run state
/// (src/qemu/qemu_monitor.c qemuMonitorVMStatusToPausedReason: io-error → IOERROR, paused and
/// restore-vm → USER, save-vm → SAVE, shutdown → SHUTTING_DOWN, watchdog → WATCHDOG,
/// inmigrate/postmigrate/finish-migrate → MIGRATION); each maps back to the state it comes from,
/// the reasons libvirt sets itself to its own name.
public enum LibvirtDomainState {
    public static func runState(state: Int32, reason: Int32) -> (running: Bool, status: String) {
        switch state {
        case 1, 2: return (true, "running")            // VIR_DOMAIN_RUNNING, VIR_DOMAIN_BLOCKED
        case 4: return (true, "running")               // VIR_DOMAIN_SHUTDOWN: being shut down, still running
        case 3: return (false, pausedReasons[Int(reason)] ?? "unknown")
        case 5: return (false, "shutdown")             // VIR_DOMAIN_SHUTOFF
        case 6: return (false, "guest-panicked")       // VIR_DOMAIN_CRASHED
        case 7: return (false, "suspended")            // VIR_DOMAIN_PMSUSPENDED
        default: return (false, "unknown")             // VIR_DOMAIN_NOSTATE, or newer
        }
    }

    /// virDomainPausedReason → reason label.
    static let pausedReasons: [Int: String] = [
        0: "unknown", 1: "paused", 2: "migration", 3: "save-vm", 4: "dump", 5: "io-error", 6: "watchdog",
        7: "from-snapshot", 8: "shutdown", 9: "snapshot", 10: "guest-panicked", 11: "prelaunch",
        12: "postcopy", 13: "postcopy-failed", 14: "api-error",
    ]
}
