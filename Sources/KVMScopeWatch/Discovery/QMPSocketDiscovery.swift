import Foundation
import KVMScopeLive

/// `--qmp PATH|GLOB|tcp:HOST:PORT`: the monitors named on the command line, globs expanded
/// anew at every scan.
///
/// A plain path or address is always watched, whether or not the socket exists yet (a VM that
/// is down shows `kvmscope_vm_qmp_up 0` and its connection errors). A glob (`*`, `?`, `[`)
/// yields only the Unix sockets it matches now: a VM whose socket is gone is no longer
/// watched and its series end, as a VM that shut down should.
public struct QMPSocketDiscovery: VMDiscovery {
    public enum Pattern: Equatable, Sendable {
        case address(QMPAddress)
        case glob(String)
    }

    /// Sockets one glob may yield: bounds the VMs (and threads) a stray pattern like `/*` starts.
    public static let maxMatchesPerGlob = 4096
    public let patterns: [Pattern]
    public let greetingTimeoutSeconds: Double

    /// Parses every pattern first, so a bad one is a usage error before anything starts.
    public init(patterns: [String], greetingTimeoutSeconds: Double = 3) throws {
        self.patterns = try patterns.map { text in
            let isUnixPath = !text.hasPrefix("tcp:")
            let path = text.hasPrefix("unix:") ? String(text.dropFirst(5)) : text
            if isUnixPath, path.contains(where: { "*?[".contains($0) }) { return .glob(path) }
            return .address(try QMPAddress(parsing: text))
        }
        self.greetingTimeoutSeconds = greetingTimeoutSeconds
    }

    public func scan() -> [any VMSource] {
        var seen = Set<String>()
        var out: [any VMSource] = []
        for p in patterns {
            let targets: [QMPAddress]
            switch p {
            case let .address(a): targets = [a]
            case let .glob(g): targets = Self.expand(g).map { .unix(path: $0) }
            }
            for t in targets where seen.insert(t.description).inserted {
                out.append(QMPSocketSource(target: t, greetingTimeoutSeconds: greetingTimeoutSeconds))
            }
        }
        return out
    }

    /// glob(3) matches that are Unix sockets, sorted, at most `maxMatchesPerGlob`.
    static func expand(_ pattern: String) -> [String] {
        var g = glob_t()
        defer { globfree(&g) }
        guard glob(pattern, 0, nil, &g) == 0 else { return [] }   // GLOB_NOMATCH, or unreadable directories
        var paths: [String] = []
        for i in 0..<Int(g.gl_pathc) {
            guard let c = g.gl_pathv[i] else { continue }
            let path = String(cString: c)
            var st = stat()
            guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFSOCK else { continue }
            paths.append(path)
            if paths.count >= maxMatchesPerGlob { break }
        }
        return paths.sorted()
    }
}
