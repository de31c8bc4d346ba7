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
/// what kvmscope's client does: `nbd://HOST[:PORT][/EXPORT]` and
/// `nbd+unix:///[EXPORT]?socket=PATH`. Everything else — TLS (`nbds`, `nbds+unix`, `tls-*`
/// parameters, which uri.md says a client without TLS must refuse), vsock, userinfo, abstract
/// sockets, unknown query parameters (uri.md: "SHOULD be diagnosed") — is refused with one line.
public struct NBDURI: Sendable, Equatable, CustomStringConvertible {
    public enum Transport: Sendable, Equatable {
        case tcp(host: String, port: Int)
        case unix(path: String)
    }

    public let transport: Transport
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
        case "nbd", "nbd+unix": break
        case "nbds", "nbds+unix", "nbds+vsock":
            throw refuse("TLS (\(scheme)://) is not supported by kvmscope's NBD client; use nbd:// or nbd+unix://")
        case "nbd+vsock":
            throw refuse("vsock is not supported by kvmscope's NBD client; use nbd:// or nbd+unix://")
        default:
            throw refuse("scheme \(scheme) is not an NBD scheme kvmscope takes (nbd, nbd+unix)")
        }
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
        for (key, _) in params where key != "socket" {
            if key.hasPrefix("tls-") {
                throw refuse("\(key): TLS is not supported by kvmscope's NBD client")
            }
            throw refuse("unknown query parameter \(key) (kvmscope takes only socket=, for nbd+unix)")
        }
        let socket = params.first { $0.0 == "socket" }?.1
        if scheme == "nbd+unix" {
            guard authority.isEmpty else {
                throw refuse("nbd+unix:// takes no host (write nbd+unix:///EXPORT?socket=PATH)")
            }
            guard let socket, !socket.isEmpty else { throw refuse("nbd+unix:// needs ?socket=PATH") }
            if socket.utf8.first == 0 { throw refuse("abstract UNIX sockets are not supported") }
            if socket.utf8.contains(0) { throw refuse("the socket path cannot contain NUL") }
            // sockaddr_un.sun_path holds 108 bytes with the terminating NUL.
            if socket.utf8.count > 107 { throw refuse("the socket path is longer than 107 bytes (sockaddr_un's limit)") }
            return NBDURI(transport: .unix(path: socket), exportName: exportName, text: text)
        }
        if socket != nil { throw refuse("socket= is for nbd+unix://, not nbd://") }
        if authority.contains("@") { throw refuse("user names (user@host) are only for TLS, which kvmscope's client does not do") }
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
            throw refuse("nbd:// needs a host (nbd://HOST[:PORT]/EXPORT)")
        }
        var port = defaultPort
        if let portText, !portText.isEmpty {
            guard portText.count <= 5, portText.allSatisfy({ $0.isASCII && $0.isNumber }), let p = Int(portText), (1...65535).contains(p) else {
                throw refuse("port '\(portText)' is not 1...65535")
            }
            port = p
        }
        return NBDURI(transport: .tcp(host: hostName, port: port), exportName: exportName, text: text)
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
