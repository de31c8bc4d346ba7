import Foundation

/// Where a QEMU monitor listens, as QEMU's own `-qmp`/`-chardev socket` spell it:
/// `unix:PATH` (or a bare path), `tcp:HOST:PORT`.
public enum QMPAddress: Equatable, Sendable, CustomStringConvertible {
    case unix(path: String)
    case tcp(host: String, port: UInt16)

    /// Parses `unix:PATH`, `tcp:HOST:PORT`, `[v6]:PORT` forms, or a bare socket path. QEMU's
    /// trailing options (`,server=on,wait=off`) are cut, so a `-qmp` argument pasted from `ps`
    /// works as it is.
    public init(parsing text: String) throws {
        var spec = Substring(text)
        if spec.hasPrefix("unix:") {
            spec = spec.dropFirst(5)
            let path = String(spec.split(separator: ",", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
            guard !path.isEmpty else { throw QMPError.badAddress(text, "no socket path after 'unix:'") }
            self = .unix(path: path)
        } else if spec.hasPrefix("tcp:") {
            spec = spec.dropFirst(4)
            let hostPort = String(spec.split(separator: ",", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
            guard let colon = hostPort.lastIndex(of: ":") else { throw QMPError.badAddress(text, "want tcp:HOST:PORT") }
            var host = String(hostPort[..<colon])
            if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            guard let port = UInt16(hostPort[hostPort.index(after: colon)...]), port > 0 else {
                throw QMPError.badAddress(text, "the port must be 1-65535")
            }
            self = .tcp(host: host.isEmpty ? "localhost" : host, port: port)
        } else if spec.contains("/") || FileManager.default.fileExists(atPath: text) {
            self = .unix(path: text)
        } else {
            throw QMPError.badAddress(text, "want unix:PATH, tcp:HOST:PORT or a socket path")
        }
    }

    public var description: String {
        switch self {
        case let .unix(path): return "unix:\(path)"
        case let .tcp(host, port): return host.contains(":") ? "tcp:[\(host)]:\(port)" : "tcp:\(host):\(port)"
        }
    }
}
