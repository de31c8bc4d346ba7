import Foundation

/// One message QEMU sent on a monitor: the line as it came (events are saved verbatim) and
/// its parsed object.
public struct QMPMessage: @unchecked Sendable {
    public let line: [UInt8]
    public let object: [String: Any]
    public init(line: [UInt8], object: [String: Any]) { self.line = line; self.object = object }
    public var eventName: String? { object["event"] as? String }
    public var data: [String: Any] { object["data"] as? [String: Any] ?? [:] }
}

/// A connection to one QEMU's QMP monitor, past the greeting and capabilities negotiation.
///
/// The recorder and the tests talk to QEMU only through this, so a socket, libvirt's
/// passthrough or a scripted fake are interchangeable. What every implementation must do
/// (a fake that does not is not a monitor):
/// - `execute` sends one command and returns its `return` value. An `error` reply throws
///   `QMPError.commandFailed`, or `.commandNotFound` for `CommandNotFound`; no reply within
///   `timeout` throws `.timedOut`; the peer going away throws `.closed`.
/// - Events that arrive while `execute` waits are kept, in order, for `takeEvents`: none is
///   lost or reordered because a command was in flight.
/// - `takeEvents(waiting:)` returns the kept events and any that arrive within `waiting`
///   seconds (0: only what is already there); `.closed` once the peer is gone and none are left.
///   It returns after a bounded amount of work however fast the peer sends (the rest comes at
///   the next call), so a flooding VM cannot keep its caller from polling.
/// - `pollDescriptor` is readable whenever `takeEvents` would return without waiting (or -1
///   when the implementation has no descriptor; callers then poll with short waits).
/// - Nothing a peer sends can make it hold more than a bounded amount of memory.
public protocol QMPMonitor: AnyObject {
    /// `unix:/run/vm1.qmp`, `tcp:host:4444`, `libvirt:vm1`: how it is named in messages.
    var address: String { get }
    /// `7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)`, from the greeting.
    var qemuVersion: String { get }
    var pollDescriptor: Int32 { get }
    func execute(_ command: String, arguments: [String: Any]?, timeout: Double) throws -> Any
    func takeEvents(waiting seconds: Double) throws -> [QMPMessage]
    func close()
}

extension QMPMonitor {
    public func execute(_ command: String, _ arguments: [String: Any]? = nil) throws -> Any {
        try execute(command, arguments: arguments, timeout: 10)
    }

    /// An HMP command through `human-monitor-command`; returns what HMP printed.
    public func humanMonitorCommand(_ line: String) throws -> String {
        let r = try execute("human-monitor-command", ["command-line": line])
        guard let text = r as? String else { throw QMPError.badReply(command: "human-monitor-command", detail: "not a string") }
        return text
    }
}

/// The version line of a QMP greeting (`{"QMP": {"version": {"qemu": {...}, "package": ...}}}`).
func qemuVersion(fromGreeting object: [String: Any]) -> String? {
    guard let qmp = object["QMP"] as? [String: Any], let v = qmp["version"] as? [String: Any],
          let q = v["qemu"] as? [String: Any],
          let major = q["major"] as? Int, let minor = q["minor"] as? Int, let micro = q["micro"] as? Int
    else { return nil }
    let package = (v["package"] as? String).map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
    return "\(major).\(minor).\(micro)" + (package.isEmpty ? "" : " (\(package))")
}

/// A command's reply object decoded as QMP defines it (docs/interop/qmp-spec: `return`, or
/// `error` with `class` and `desc`), for every monitor implementation alike.
public func qmpReturnValue(_ reply: [String: Any], command: String, qemuVersion: String) throws -> Any {
    if let err = reply["error"] as? [String: Any] {
        let cls = err["class"] as? String ?? "GenericError"
        if cls == "CommandNotFound" { throw QMPError.commandNotFound(command: command, qemuVersion: qemuVersion) }
        throw QMPError.commandFailed(command: command, errorClass: cls, desc: err["desc"] as? String ?? "")
    }
    guard let r = reply["return"] else { throw QMPError.badReply(command: command, detail: "no 'return'") }
    return r
}
