import Foundation
import KVMScopeLive

/// One VM that `watch` can reach: a QMP socket found by discovery, or a fake in the tests.
///
/// `key` identifies the VM across rescans (the socket's path): while discovery keeps finding
/// the same key, the same worker keeps watching it; a key no longer found ends its worker.
public protocol VMSource: Sendable {
    var key: String { get }
    /// The `domain` label until QEMU names the VM (`query-name`), and when it has no `-name`:
    /// the socket's file name.
    var fallbackName: String { get }
    /// How the monitor is named in messages (`unix:/run/vm1.qmp`).
    var address: String { get }
    /// Connects and negotiates; every wait bounded (a peer that accepts and never greets
    /// throws `QMPError.monitorTaken` after the greeting timeout).
    func connect() throws -> any QMPMonitor
}

/// Finds VMs; asked again every interval, so sockets that appear or vanish are followed.
public protocol VMDiscovery: Sendable {
    func scan() -> [any VMSource]
}

/// A QMP monitor at a socket address (`-qmp unix:PATH,server=on,wait=off`).
public struct QMPSocketSource: VMSource {
    public let target: QMPAddress
    public let greetingTimeoutSeconds: Double
    public let connectTimeoutSeconds: Double

    public init(target: QMPAddress, greetingTimeoutSeconds: Double = 3, connectTimeoutSeconds: Double = 3) {
        self.target = target
        self.greetingTimeoutSeconds = greetingTimeoutSeconds
        self.connectTimeoutSeconds = connectTimeoutSeconds
    }

    public var key: String { target.description }
    public var address: String { target.description }
    public var fallbackName: String {
        switch target {
        case let .unix(path): return (path as NSString).lastPathComponent
        case let .tcp(host, port): return "\(host):\(port)"
        }
    }

    public func connect() throws -> any QMPMonitor {
        try QMPSocketMonitor(target, greetingTimeout: greetingTimeoutSeconds, connectTimeout: connectTimeoutSeconds)
    }
}
