import Foundation

/// Live drops from the kernel's drop monitor (NET_DM generic netlink, CONFIG_NET_DROP_MONITOR):
/// what dropwatch uses. kvmscope prefers tracefs (it has reasons on every kernel that has them
/// and no global state), and uses NET_DM when tracefs cannot be used or when asked to — it is
/// also the only source of drops that network devices report themselves (hardware traps).
///
/// NET_DM is one global monitor: if someone else (dropwatch) already started it, kvmscope
/// listens to the same alerts and leaves it running; it only stops what it started.
public final class NetDropMonitorSource {
    public enum Availability: Equatable, Sendable {
        case available(GenericNetlinkController.Family)
        case absent(String)
    }

    let socket: NetlinkSocket
    public let family: GenericNetlinkController.Family
    public private(set) var startedByUs = false
    public private(set) var hardware = false
    /// Alerts whose bytes did not decode.
    public private(set) var malformedMessages = 0
    public var overruns: Int { socket.overruns }

    /// Asks the generic-netlink controller for the NET_DM family (CTRL_CMD_GETFAMILY over a raw
    /// NETLINK_GENERIC socket, as `genl ctrl get name NET_DM` does). Needs no privileges.
    public static func probe() -> Availability {
        do {
            let s = try NetlinkSocket()
            return try resolve(on: s)
        } catch let e as NetlinkSocket.SystemError {
            return .absent("cannot open a generic netlink socket (\(e.call): \(String(cString: strerror(e.code))))")
        } catch {
            return .absent("\(error)")
        }
    }

    static func resolve(on s: NetlinkSocket) throws -> Availability {
        let seq = s.nextSequence()
        try s.send(GenericNetlinkController.request(name: NetDropMonitor.familyName, sequence: seq))
        let deadline = DispatchTime.now().uptimeNanoseconds + 2_000_000_000
        while DispatchTime.now().uptimeNanoseconds < deadline {
            guard let datagram = try s.receive(timeoutMs: 200) else { continue }
            switch GenericNetlinkController.parseAnswer(datagram) {
            case let .family(f)?:
                return .available(f)
            case let .error(code)?:
                return .absent(Self.absentMessage(errno: code))
            case nil:
                continue
            }
        }
        return .absent("the generic netlink controller did not answer")
    }

    /// Why NET_DM cannot be used, in one line (dropwatch's "Unable to find NET_DM family").
    public static func absentMessage(errno code: Int32) -> String {
        if code == ENOENT {
            return "the kernel has no NET_DM drop-monitor family (CONFIG_NET_DROP_MONITOR is off, or the drop_monitor module is not loaded: modprobe drop_monitor)"
        }
        return "NET_DM family lookup failed: \(String(cString: strerror(code)))"
    }

    /// Opens a socket and resolves the family; throws the absent message when there is none.
    public init() throws {
        socket = try NetlinkSocket()
        switch try Self.resolve(on: socket) {
        case let .available(f): family = f
        case let .absent(why): throw DropsError.netDropMonitor(why)
        }
    }

    /// Per-packet mode (so reasons arrive), START software (and hardware when supported)
    /// monitoring, and join the alert group. Needs CAP_NET_ADMIN.
    public func start() throws {
        let configSeq = socket.nextSequence()
        let config = try socket.transact(NetDropMonitor.configPacketMode(family: family.id, sequence: configSeq), sequence: configSeq)
        // EBUSY: monitoring is on already (someone else's mode applies; both modes decode).
        // EOPNOTSUPP/EINVAL: kernels before 5.4 know only summary alerts.
        if config == EPERM || config == EACCES { throw Self.permissionError() }
        for hw in [true, false] {
            let seq = socket.nextSequence()
            let rc = try socket.transact(NetDropMonitor.control(.start, family: family.id, sequence: seq, hardware: hw), sequence: seq)
            if rc == 0 { startedByUs = true; hardware = hw; break }
            if rc == EPERM || rc == EACCES { throw Self.permissionError() }
            if rc == EBUSY || rc == EAGAIN { break }      // already monitoring: share it
        }
        guard let group = family.multicastGroups[NetDropMonitor.multicastGroup] else {
            throw DropsError.netDropMonitor("the NET_DM family has no '\(NetDropMonitor.multicastGroup)' multicast group")
        }
        do { try socket.join(group: group) } catch let e as NetlinkSocket.SystemError {
            throw DropsError.netDropMonitor("cannot join the NET_DM alert group: \(String(cString: strerror(e.code)))")
        }
    }

    static func permissionError() -> DropsError {
        .netDropMonitor("starting the NET_DM drop monitor needs CAP_NET_ADMIN: run as root")
    }

    /// Drops that arrive within `timeoutMs`.
    public func poll(timeoutMs: Int32) throws -> [DropEvent] {
        guard let datagram = try socket.receive(timeoutMs: timeoutMs) else { return [] }
        guard let messages = Netlink.messages(datagram) else { malformedMessages += 1; return [] }
        var events: [DropEvent] = []
        for m in messages where m.type == family.id {
            if let e = NetDropMonitor.decode(m, family: family.id) { events += e } else { malformedMessages += 1 }
        }
        return events
    }

    /// Stops monitoring if kvmscope started it.
    public func stop() {
        guard startedByUs else { return }
        let seq = socket.nextSequence()
        _ = try? socket.transact(NetDropMonitor.control(.stop, family: family.id, sequence: seq, hardware: hardware), sequence: seq)
        startedByUs = false
    }

    deinit { stop() }
}
