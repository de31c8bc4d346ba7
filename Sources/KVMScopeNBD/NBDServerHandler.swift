import Foundation
import KVMScopeFaults
import NIOCore

/// What the server reports while it runs (the CLI prints it and writes the JSON fault log).
public protocol NBDServerObserver: AnyObject, Sendable {
    func clientConnected(_ client: String)
    func clientDisconnected(_ client: String, _ summary: NBDConnectionSummary)
    /// The client broke the protocol; the connection was closed.
    func protocolViolation(_ client: String, _ message: String)
    /// A rule injected a fault (or a delay) into a request.
    func faultInjected(_ fault: InjectedFault, client: String, command: String, wireError: NBD.WireError?)
    /// A connection was refused because `limit` clients are connected; `alsoRefused` more were
    /// refused since the last report (reports are at most one a second).
    func connectionRefused(_ client: String, limit: Int, alsoRefused: Int)
    /// accept() failed (EMFILE, ENFILE, ...): accepts pause for `pause`; `failures` so far.
    func acceptFailed(_ error: String, pauseSeconds: Double, failures: Int)
}

/// One export the server offers, chosen by its name (the server's first export is also the
/// default export, "").
public struct NBDExport: Sendable {
    public var name: String
    public var description: String
    public var backend: any BlockBackend

    public init(name: String, description: String = "", backend: any BlockBackend) {
        self.name = name
        self.description = description
        self.backend = backend
    }
}

extension NBDServerConfiguration {
    /// The export a client names: the default (first) one for "" or its own name, else by name.
    func exportIndex(named requested: String) -> Int? {
        if requested.isEmpty { return 0 }
        return exports.firstIndex { $0.name == requested }
    }
}
