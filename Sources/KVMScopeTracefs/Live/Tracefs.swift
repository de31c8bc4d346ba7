import Foundation

/// Where the kernel's tracefs is, and the one-line explanations of why it cannot be used.
/// The root is injectable so tests can point it at a fake directory tree.
public struct Tracefs: Sendable {
    public static let defaultRoot = "/sys/kernel/tracing"
    /// Older systems reach tracefs through debugfs.
    public static let debugfsRoot = "/sys/kernel/debug/tracing"

    public let root: String

    public init(root: String) { self.root = root }

    public func path(_ relative: String) -> String { root + "/" + relative }

    public var isMounted: Bool { FileManager.default.fileExists(atPath: path("events")) }

    /// Whether tracepoint `system:event` exists (e.g. `kvm`, `kvm_exit`).
    public func hasEvent(_ system: String, _ event: String) -> Bool {
        FileManager.default.fileExists(atPath: path("events/\(system)/\(event)/enable"))
    }

    /// Finds a usable tracefs as the recorder needs it: running as root, mounted (mounting it
    /// at the default place when it is not), with an `instances` directory.
    /// - Parameters:
    ///   - root: where to look; only the default root is ever mounted or replaced by debugfs's.
    ///   - effectiveUID: injectable for tests (`geteuid()` normally).
    public static func locate(root: String = defaultRoot, effectiveUID: uid_t = geteuid()) throws -> Tracefs {
        guard effectiveUID == 0 else { throw TracefsError.notRoot(root: root) }
        var fs = Tracefs(root: root)
        if !fs.isMounted && root == defaultRoot {
            if Tracefs(root: debugfsRoot).isMounted {
                fs = Tracefs(root: debugfsRoot)
            } else if FileManager.default.fileExists(atPath: root) {
                if mount("nodev", root, "tracefs", 0, nil) != 0 {
                    throw TracefsError.absent(root: root, detail: "mount -t tracefs failed: \(String(cString: strerror(errno)))")
                }
            }
        }
        guard fs.isMounted else {
            throw TracefsError.absent(root: fs.root, detail: FileManager.default.fileExists(atPath: fs.root)
                                      ? "it has no events/ directory" : "no such directory")
        }
        guard FileManager.default.fileExists(atPath: fs.path("instances")) else {
            throw TracefsError.absent(root: fs.root, detail: "it has no instances/ directory (kernel older than 3.13?)")
        }
        return fs
    }
}

/// Why live tracing cannot start: each is one line for the user, saying what to do.
public enum TracefsError: KVMScopeFailure, Equatable {
    case notRoot(root: String)
    case absent(root: String, detail: String)
    case missingEvents(root: String, events: [String], hint: String)
    case instanceExists(path: String)
    case io(path: String, reason: String)
    /// A kallsyms copy with no symbol line in it.
    case emptySymbolTable(source: String)

    public var description: String {
        switch self {
        case let .notRoot(root):
            return "live recording needs root: tracefs (\(root)) is writable only by root; run with sudo, "
                + "or record with trace-cmd/perf and give kvmscope the text"
        case let .absent(root, detail):
            return "no tracefs at \(root) (\(detail)): the kernel needs CONFIG_TRACING, and tracefs must be mounted "
                + "(mount -t tracefs nodev /sys/kernel/tracing)"
        case let .missingEvents(root, events, hint):
            return "this kernel has no \(events.joined(separator: "/")) tracepoints (nothing under \(root)/events/): \(hint)"
        case let .instanceExists(path):
            return "tracefs instance \(path) already exists (another kvmscope with this pid?); not touching it"
        case let .io(path, reason):
            return "\(path): \(reason)"
        case let .emptySymbolTable(source):
            return "\(source): empty symbol table"
        }
    }
}
