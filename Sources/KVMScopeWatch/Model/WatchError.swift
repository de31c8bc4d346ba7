import KVMScopeCore

/// What stops `watch` from starting, each in one line; all but the event log are usage errors (exit 2).
public enum WatchError: KVMScopeFailure, Equatable {
    case badListenAddress(String, String)
    case cannotListen(address: String, reason: String)
    case cannotOpenEventLog(path: String, reason: String)
    case badInterval(String)
    case noMonitors
    /// `--config FILE` that cannot be read or is not a valid configuration.
    case badConfig(path: String, reason: String)
    /// --libvirt-read-only or --libvirt-passthrough without --libvirt.
    case libvirtFlagWithoutLibvirt(String)
    /// --libvirt-passthrough with --libvirt-read-only: libvirt refuses passthrough there.
    case passthroughReadOnly
    /// --auto-record DIR that cannot be made or written.
    case badAutoRecord(path: String, reason: String)
    /// An --auto-record-* setting out of range, or without --auto-record.
    case badAutoRecordSetting(String)

    public var description: String {
        switch self {
        case let .badListenAddress(text, why): return "--listen '\(text)': \(why) (want ADDRESS:PORT, e.g. 127.0.0.1:9177 or [::1]:9177)"
        case let .cannotListen(address, reason): return "cannot listen on \(address): \(reason)"
        case let .cannotOpenEventLog(path, reason): return "cannot open the event log \(path): \(reason)"
        case let .badInterval(text): return "--interval '\(text)': want seconds between 0.1 and 3600"
        case let .badConfig(path, reason): return "--config \(path): \(reason)"
        case let .libvirtFlagWithoutLibvirt(flag): return "watch: \(flag) goes with --libvirt URI"
        case .passthroughReadOnly:
            return "watch: --libvirt-passthrough needs a read-write libvirt connection (libvirt refuses QMP commands on a read-only one): not with --libvirt-read-only"
        case let .badAutoRecord(path, reason): return "--auto-record \(path): \(reason) (want a directory watch can create captures in)"
        case let .badAutoRecordSetting(text): return "watch: \(text)"
        case .noMonitors: return "watch: give at least one --qmp PATH|GLOB (e.g. --qmp '/run/kvmscope/*.qmp') or --libvirt URI (e.g. --libvirt qemu:///system)"
        }
    }

    public var isUsageError: Bool {
        switch self {
        case .badListenAddress, .cannotListen, .badInterval, .cannotOpenEventLog, .noMonitors, .badConfig, .libvirtFlagWithoutLibvirt,
             .passthroughReadOnly, .badAutoRecord, .badAutoRecordSetting: return true
        }
    }
}

/// `--listen ADDRESS:PORT`, checked before anything starts.
public struct ListenAddress: Equatable, Sendable, CustomStringConvertible {
    public let host: String
    public let port: Int

    public init(parsing text: String) throws {
        guard let colon = text.lastIndex(of: ":") else { throw WatchError.badListenAddress(text, "no port") }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        else if host.contains(":") { throw WatchError.badListenAddress(text, "write an IPv6 address in brackets") }
        guard !host.isEmpty else { throw WatchError.badListenAddress(text, "no address") }
        guard let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
            throw WatchError.badListenAddress(text, "the port must be 0-65535")
        }
        self.host = host
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
