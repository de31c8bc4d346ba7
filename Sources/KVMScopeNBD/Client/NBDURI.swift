import Foundation
import KVMScopeCore

/// Why an upstream cannot be used: a URI kvmscope does not take (a usage error, exit 2), or a
/// server that cannot be reached or negotiated with (exit 1). One line, after `kvmscope: `.
public struct NBDClientError: KVMScopeFailure, Equatable {
    public let message: String
    public let isUsageError: Bool

    public init(_ message: String, usage: Bool = false) {
        self.message = message
        self.isUsageError = usage
    }

    public var description: String { message }
}

/// An NBD URI as NetworkBlockDevice/nbd doc/uri.md defines it (RFC 3986 syntax), limited to
/// what kvmscope's client does: `nbd://HOST[:PORT][/EXPORT]`, `nbd+unix:///[EXPORT]?socket=PATH`,
/// and their TLS forms `nbds://` and `nbds+unix://` (X.509; uri.md: "If encryption cannot be
/// negotiated then the connection MUST fail") with libnbd's `tls-certificates=DIR` and uri.md's
/// `tls-verify-peer`, `tls-hostname` and `tls-type=x509`. Everything else — PSK and anonymous
/// TLS, `tls-*` on a scheme without TLS (which would connect in the clear), vsock, userinfo,
/// abstract sockets, unknown query parameters (uri.md: "SHOULD be diagnosed") — is refused with
/// one line.
public struct NBDURI: Sendable, Equatable, CustomStringConvertible {
    public enum Transport: Sendable, Equatable {
        case tcp(host: String, port: Int)
        case unix(path: String)
    }

    public let transport: Transport
    /// For `nbds`/`nbds+unix`: how to check the server (nil: no TLS).
    public let tls: TLS?

    public struct TLS: Sendable, Equatable {
        /// `tls-certificates=DIR`: ca-cert.pem, and client-cert.pem/client-key.pem when present
        /// (nil: the system's trusted CAs).
        public var certificates: String?
        /// `tls-verify-peer` (default 1, as uri.md says a client SHOULD).
        public var verifyPeer = true
        /// `tls-hostname`: the name the server's certificate must carry, instead of the URI's host.
        public var hostname: String?
    }
    /// The path without its leading `/`, percent-decoded (uri.md "NBD URI export name").
    public let exportName: String
    /// The URI as given, for messages.
    public let text: String

    public var description: String { text }

    /// IANA's NBD port (uri.md: the default when the authority has none).
    public static let defaultPort = 10809
    /// proto.md: export names (and other strings) up to 4096 bytes.
    public static let maximumExportNameBytes = 4096

    /// Whether an argument is meant as an NBD URI (then `parse` decides whether it is a good one)
    /// rather than a file name.
    public static func looksLikeURI(_ s: String) -> Bool {
        let lower = s.lowercased()
        return ["nbd:", "nbds:", "nbd+", "nbds+"].contains { lower.hasPrefix($0) }
    }

    public static func parse(_ text: String) throws -> NBDURI {
        func refuse(_ why: String) -> NBDClientError { NBDClientError("\(text): \(why)", usage: true) }
        guard let sep = text.range(of: "://") else {
            throw refuse("not an NBD URI (nbd://HOST[:PORT]/EXPORT or nbd+unix:///EXPORT?socket=PATH)")
        }
        let scheme = text[..<sep.lowerBound].lowercased()
        switch scheme {
        case "nbd", "nbd+unix", "nbds", "nbds+unix": break
        case "nbd+vsock", "nbds+vsock":
            throw refuse("vsock is not supported by kvmscope's NBD client; use nbd:// or nbd+unix:// (nbds:// or nbds+unix:// for TLS)")
        default:
            throw refuse("scheme \(scheme) is not an NBD scheme kvmscope takes (nbd, nbd+unix, nbds, nbds+unix)")
        }
        let wantsTLS = scheme.hasPrefix("nbds")
        var rest = text[sep.upperBound...]
        if rest.contains("#") { throw refuse("an NBD URI has no fragment (#...)") }
        var query: Substring = ""
        if let q = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: q)...]
            rest = rest[..<q]
        }
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = rest[..<slash]
        let path = rest[slash...]
        guard let exportName = percentDecode(path.isEmpty ? "" : path.dropFirst()) else {
            throw refuse("the export name has a bad %-escape or is not UTF-8")
        }
        if exportName.utf8.contains(0) { throw refuse("an export name cannot contain NUL") }
        if exportName.utf8.count > maximumExportNameBytes {
            throw refuse("the export name is longer than \(maximumExportNameBytes) bytes (proto.md's limit)")
        }
        var params: [(String, String)] = []
        for item in query.split(separator: "&", omittingEmptySubsequences: true) {
            let kv = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let key = percentDecode(kv[0]), let value = percentDecode(kv.count > 1 ? kv[1] : "") else {
                throw refuse("query parameter '\(item)' has a bad %-escape")
            }
            if params.contains(where: { $0.0 == key }) { throw refuse("query parameter \(key) is given twice") }
            params.append((key, value))
        }
        var tls = TLS()
        for (key, value) in params where key != "socket" {
            guard key.hasPrefix("tls-") else {
                throw refuse("unknown query parameter \(key) (kvmscope takes socket=, and tls-certificates=, tls-verify-peer=, tls-hostname=, tls-type=x509 with nbds)")
            }
            // tls-* with nbd:// would be a TLS wish silently met in the clear.
            guard wantsTLS else { throw refuse("\(key) is for nbds:// or nbds+unix:// (\(scheme):// does not use TLS)") }
            switch key {
            case "tls-certificates":
                guard !value.isEmpty, !value.utf8.contains(0) else { throw refuse("tls-certificates needs a directory") }
                tls.certificates = value
            case "tls-verify-peer":
                switch value.lowercased() {
                case "1", "true", "on", "yes": tls.verifyPeer = true
                case "0", "false", "off", "no": tls.verifyPeer = false
                default: throw refuse("tls-verify-peer must be 0 or 1")
                }
            case "tls-hostname":
                guard !value.isEmpty, !value.utf8.contains(0) else { throw refuse("tls-hostname needs a name") }
                tls.hostname = value
            case "tls-type":
                guard value.lowercased() == "x509" else {
                    throw refuse("tls-type=\(value) is not supported by kvmscope's NBD client (X.509 only: tls-type=x509)")
                }
            case "tls-psk-file", "tls-username":
                throw refuse("\(key): TLS-PSK is not supported by kvmscope's NBD client (X.509 only: tls-certificates=DIR)")
            default:
                throw refuse("unknown query parameter \(key) (kvmscope takes tls-certificates=, tls-verify-peer=, tls-hostname=, tls-type=x509)")
            }
        }
        let socket = params.first { $0.0 == "socket" }?.1
        if scheme.hasSuffix("+unix") {
            guard authority.isEmpty else {
                throw refuse("\(scheme):// takes no host (write \(scheme):///EXPORT?socket=PATH)")
            }
            guard let socket, !socket.isEmpty else { throw refuse("\(scheme):// needs ?socket=PATH") }
            if socket.utf8.first == 0 { throw refuse("abstract UNIX sockets are not supported") }
            if socket.utf8.contains(0) { throw refuse("the socket path cannot contain NUL") }
            // sockaddr_un.sun_path holds 108 bytes with the terminating NUL.
            if socket.utf8.count > 107 { throw refuse("the socket path is longer than 107 bytes (sockaddr_un's limit)") }
            return NBDURI(transport: .unix(path: socket), tls: wantsTLS ? tls : nil, exportName: exportName, text: text)
        }
        if socket != nil { throw refuse("socket= is for nbd+unix:// and nbds+unix://, not \(scheme)://") }
        if authority.contains("@") { throw refuse("user names (user@host) are for TLS-PSK, which kvmscope's client does not do") }
        var host: Substring
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { throw refuse("an IPv6 address needs its closing ]") }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw refuse("unexpected '\(after)' after the IPv6 address") }
                portText = after.dropFirst()
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            portText = authority[authority.index(after: colon)...]
        } else {
            host = authority
        }
        guard !host.isEmpty, let hostName = percentDecode(host), !hostName.utf8.contains(0) else {
            throw refuse("\(scheme):// needs a host (\(scheme)://HOST[:PORT]/EXPORT)")
        }
        var port = defaultPort
        if let portText, !portText.isEmpty {
            guard portText.count <= 5, portText.allSatisfy({ $0.isASCII && $0.isNumber }), let p = Int(portText), (1...65535).contains(p) else {
                throw refuse("port '\(portText)' is not 1...65535")
            }
            port = p
        }
        return NBDURI(transport: .tcp(host: hostName, port: port), tls: wantsTLS ? tls : nil, exportName: exportName, text: text)
    }

    /// RFC 3986 percent-decoding to UTF-8; nil for a bad escape or bytes that are not UTF-8.
    static func percentDecode(_ s: Substring) -> String? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(s.utf8.count)
        var it = s.utf8.makeIterator()
        func hex(_ c: UInt8?) -> UInt8? {
            guard let c else { return nil }
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
            default: return nil
            }
        }
        while let c = it.next() {
            if c == UInt8(ascii: "%") {
                guard let hi = hex(it.next()), let lo = hex(it.next()) else { return nil }
                bytes.append(hi << 4 | lo)
            } else {
                bytes.append(c)
            }
        }
        return String(bytes: bytes, encoding: .utf8)
    }
}
