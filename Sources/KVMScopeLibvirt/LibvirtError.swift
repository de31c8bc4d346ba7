import Foundation
import KVMScopeCore

/// What goes wrong reaching a domain through libvirt, each in one line with what to do.
/// libvirt's own text (virGetLastError) is kept in each, as libvirt said it.
public enum LibvirtError: KVMScopeFailure, Equatable {
    case badAddress(String, String)
    /// virConnectOpen failed.
    case cannotConnect(uri: String, message: String)
    /// virDomainLookupByName: no such domain on that connection.
    case noSuchDomain(name: String, uri: String)
    /// The domain is defined but not running: there is no QEMU to record.
    case notRunning(name: String)
    /// The connection is read-only (virConnectOpenReadOnly, or the daemon's read-only socket):
    /// libvirt refuses QMP passthrough and monitor events on it (VIR_ERR_OPERATION_DENIED).
    case readOnly(uri: String)
    /// The daemon's access control (polkit ACLs) denies this user the call (VIR_ERR_ACCESS_DENIED).
    case accessDenied(uri: String, message: String)
    /// The connection's driver has no QEMU monitor passthrough (VIR_ERR_NO_SUPPORT): not the QEMU driver.
    case noPassthrough(uri: String, driver: String)
    /// The domain's QEMU process could not be found on this host.
    case processNotFound(name: String, uuid: String, detail: String)
    /// More QMP events came than the bound holds between two reads: refused rather than held.
    case eventsOverflowed(address: String, dropped: Int, limitBytes: Int)
    /// Any other libvirt failure, with libvirt's code and message.
    case failed(call: String, code: Int32, message: String)
    /// The connection to the daemon went away (libvirtd restarted or stopped, keepalive gave up).
    case connectionLost(uri: String, reason: String)

    public var description: String {
        switch self {
        case let .badAddress(text, why): return "'\(text)': not a libvirt domain address (\(why))"
        case let .cannotConnect(uri, message):
            var hint = ""
            if message.contains("No such file") || message.contains("Connection refused") {
                hint = " (is libvirtd or virtqemud running? virsh -c \(uri) list)"
            } else if message.contains("ermission denied") || message.contains("uthentication") || message.contains("polkit") {
                hint = " (record --domain needs a read-write connection: run as root or as a member of the libvirt group)"
            }
            return "cannot connect to libvirt at \(uri): \(message)\(hint)"
        case let .noSuchDomain(name, uri):
            return "no domain '\(name)' on \(uri) (virsh -c \(uri) list --all shows the names; --connect URI for another libvirt)"
        case let .notRunning(name): return "domain '\(name)' is not running: there is no QEMU to record (virsh start \(name))"
        case let .readOnly(uri):
            return "refusing --domain on a read-only libvirt connection (\(uri)): record turns trace events on and points QEMU's log through the domain's monitor, which libvirt allows only on a read-write connection — connect to the read-write socket (qemu:///system as root, or as a member of the libvirt group)"
        case let .accessDenied(uri, message):
            return "libvirt at \(uri) denies this user QEMU monitor access: \(message) (record --domain needs the domain's write permission: root, or a polkit rule granting org.libvirt.api.domain.write)"
        case let .noPassthrough(uri, driver):
            return "libvirt's \(driver) driver at \(uri) has no QEMU monitor passthrough: --domain records a QEMU/KVM domain (qemu:///system, qemu:///session)"
        case let .processNotFound(name, uuid, detail):
            return "the QEMU process of domain '\(name)' (uuid \(uuid)) is not found on this host (\(detail)): record --domain runs on the VM's host, where it reads the trace QEMU writes to a local file"
        case let .eventsOverflowed(address, dropped, limit):
            return "\(address): more than \(limit) bytes of QMP events waited between two reads (\(dropped) dropped): recording stopped rather than hold them"
        case let .failed(call, code, message): return "libvirt \(call) failed: \(message) (error code \(code))"
        case let .connectionLost(uri, reason): return "the connection to libvirt at \(uri) is lost: \(reason)"
        }
    }

    public var isUsageError: Bool {
        switch self {
        case .badAddress, .noSuchDomain, .readOnly, .noPassthrough: return true
        default: return false
        }
    }
}
