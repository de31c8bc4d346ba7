import Foundation
import KVMScopeCore

/// What can go wrong talking to a QEMU monitor, each said in one line with what to do.
public enum QMPError: KVMScopeFailure, Equatable {
    case badAddress(String, String)
    case cannotConnect(address: String, reason: String)
    /// The socket accepted but QEMU sent no greeting: QEMU serves one client per monitor
    /// (chardev/char-socket.c accepts the next client only when the current one leaves), so the
    /// connection waits in the listen backlog while another client holds it.
    case monitorTaken(address: String, waitedSeconds: Double)
    /// The peer spoke, but not QMP (an HMP monitor, a serial console, some other service).
    case notQMP(address: String, firstBytes: String)
    /// QEMU closed the monitor (it exited, or dropped this client).
    case closed(address: String)
    /// QEMU does not know the command: a build without it, or older than it.
    case commandNotFound(command: String, qemuVersion: String)
    /// QEMU answered the command with an error.
    case commandFailed(command: String, errorClass: String, desc: String)
    /// No answer in time (a hung QEMU main loop: the monitor runs in it).
    case timedOut(command: String, seconds: Double)
    /// A line longer than the bound: refused rather than held.
    case messageTooLarge(address: String, limit: Int)
    /// A reply that is not the JSON QMP promises.
    case badReply(command: String, detail: String)

    public var description: String {
        switch self {
        case let .badAddress(text, why): return "'\(text)': not a QMP address (\(why))"
        case let .cannotConnect(address, reason): return "cannot connect to the QMP monitor at \(address): \(reason)"
        case let .monitorTaken(address, waited):
            return "the QMP monitor at \(address) accepted the connection but sent no greeting in \(Self.seconds(waited)): "
                + "QEMU serves one client per monitor and another client (libvirt, a management agent) holds this one. "
                + "Give the VM a second monitor for kvmscope when it next starts (`-chardev socket,id=kvmscope,path=/run/vm1-kvmscope.qmp,server=on,wait=off -mon chardev=kvmscope,mode=control`; "
                + "a monitor cannot be added to a running QEMU), or for a libvirt VM use --domain"
        case let .notQMP(address, first):
            return "\(address) is not a QMP monitor (it sent \(first.debugDescription), not a {\"QMP\": …} greeting): an HMP monitor or another service? Give the socket of a `-qmp` or `-mon mode=control` monitor"
        case let .closed(address): return "QEMU closed the QMP monitor at \(address) (the VM exited, or QEMU dropped the client)"
        case let .commandNotFound(command, version):
            return "QEMU \(version) has no QMP command '\(command)' (too old, or built without it)"
        case let .commandFailed(command, errorClass, desc): return "QMP '\(command)' failed: \(desc) (\(errorClass))"
        case let .timedOut(command, secs):
            return "QEMU did not answer QMP '\(command)' in \(Self.seconds(secs)) (its main loop, which runs the monitor, is busy or hung)"
        case let .messageTooLarge(address, limit): return "a QMP message from \(address) exceeds \(limit) bytes: refused"
        case let .badReply(command, detail): return "QMP '\(command)': unexpected reply (\(detail))"
        }
    }

    public var isUsageError: Bool {
        switch self {
        case .badAddress, .notQMP: return true
        default: return false
        }
    }

    static func seconds(_ s: Double) -> String { s == s.rounded() ? "\(Int(s)) s" : String(format: "%.1f s", s) }
}
