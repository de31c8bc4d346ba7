import Foundation
import NIOCore

/// Names the client of a connection for logs: `127.0.0.1:38890`, `[::1]:40112`, and for a UNIX
/// socket the peer's process from SO_PEERCRED (unix(7)): `unix(pid=4242,uid=0)`.
enum NBDPeer {
    static func describe(_ channel: Channel) -> String {
        guard let address = channel.remoteAddress else { return "?" }
        switch address {
        case .v4, .v6:
            let host = address.ipAddress ?? "?"
            let port = address.port ?? 0
            return address.protocol == .inet6 ? "[\(host)]:\(port)" : "\(host):\(port)"
        case .unixDomainSocket:
            #if os(Linux)
            // On the channel's event loop the option is read at once; the future is complete.
            var credentials: PeerCredentials?
            (channel as? SocketOptionProvider)?
                .unsafeGetSocketOption(level: SocketOptionLevel(SOL_SOCKET), name: peerCredentialsOption)
                .whenSuccess { (c: PeerCredentials) in credentials = c }
            if let c = credentials { return "unix(pid=\(c.pid),uid=\(c.uid))" }
            #endif
            return "unix"
        }
    }

    /// `struct ucred` (glibc shows it only under _GNU_SOURCE): pid_t, uid_t, gid_t.
    struct PeerCredentials: Sendable {
        var pid: Int32
        var uid: UInt32
        var gid: UInt32
    }
    /// SO_PEERCRED from asm-generic/socket.h.
    static let peerCredentialsOption: SocketOptionName = 17

    static func seconds(_ t: TimeAmount) -> String {
        let s = Double(t.nanoseconds) / 1e9
        return s == s.rounded() ? "\(Int(s)) s" : "\(s) s"
    }
}
