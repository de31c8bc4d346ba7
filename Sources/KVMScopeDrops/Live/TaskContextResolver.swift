import Foundation

/// What the kernel knew about the task a drop happened in: its network namespace and command
/// name, read from /proc/PID once per interval (pids are reused, so the cache is cleared).
///
/// This is how `--netns` works, and why it is not exact: the kfree_skb tracepoint has no
/// namespace field. The namespace kvmscope reports is the one of the task that was running
/// when the kernel dropped the packet. For drops made while a task sends (loopback and veth
/// transmits are received in the sender's softirq; socket-level drops) that is the sending
/// task's namespace; for a packet crossing a veth pair it is the sender's side, not the
/// receiver's; drops processed on an idle CPU (pid 0), in ksoftirqd or in an interrupted
/// unrelated task cannot be attributed and are counted separately.
///
/// Command names come first from tracefs's `saved_cmdlines` (the comm the kernel recorded with
/// the task's events, as trace text prints it: a task that exec'd since keeps the name it had
/// when it dropped), then from /proc/PID/comm.
public final class TaskContextResolver {
    public let procRoot: String
    public let savedCmdlinesPath: String?
    private var netns: [Int32: UInt64?] = [:]
    private var comms: [Int32: String?] = [:]
    private var savedCmdlines: [Int32: String] = [:]
    private var savedCmdlinesLoaded = false

    public init(procRoot: String = "/proc", savedCmdlinesPath: String? = nil) {
        self.procRoot = procRoot
        self.savedCmdlinesPath = savedCmdlinesPath
    }

    public func clear() {
        netns.removeAll(keepingCapacity: true)
        comms.removeAll(keepingCapacity: true)
        savedCmdlinesLoaded = false
    }

    /// `PID COMM` lines of tracefs's saved_cmdlines.
    static func parseSavedCmdlines(_ text: String) -> [Int32: String] {
        var out: [Int32: String] = [:]
        for line in text.split(separator: "\n") {
            guard let space = line.firstIndex(of: " "), let pid = Int32(line[..<space]) else { continue }
            out[pid] = String(line[line.index(after: space)...])
        }
        return out
    }

    /// The namespace inode of `pid`'s network namespace; nil for pid 0 or a task gone.
    public func netnsInode(_ pid: Int32) -> UInt64? {
        guard pid > 0 else { return nil }
        if let hit = netns[pid] { return hit }
        let v = Self.inode(of: "\(procRoot)/\(pid)/ns/net")
        netns[pid] = v
        return v
    }

    public func comm(_ pid: Int32) -> String? {
        if pid == 0 { return "<idle>" }
        if let hit = comms[pid] { return hit }
        if let path = savedCmdlinesPath, !savedCmdlinesLoaded {
            savedCmdlines = Self.parseSavedCmdlines((try? String(contentsOfFile: path, encoding: .utf8)) ?? "")
            savedCmdlinesLoaded = true
        }
        let v = savedCmdlines[pid] ?? (try? String(contentsOfFile: "\(procRoot)/\(pid)/comm", encoding: .utf8))?
            .trimmingCharacters(in: .newlines)
        comms[pid] = v
        return v
    }

    static func inode(of path: String) -> UInt64? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return UInt64(st.st_ino)
    }

    /// `--netns` argument → namespace inode: a name from `ip netns` (/run/netns/NAME), a
    /// path (`/proc/123/ns/net`, `/run/netns/x`), or `pid:123`.
    public static func resolveNamespace(_ spec: String, procRoot: String = "/proc") throws -> (inode: UInt64, path: String) {
        let path: String
        if spec.hasPrefix("pid:") {
            path = "\(procRoot)/\(spec.dropFirst(4))/ns/net"
        } else if spec.contains("/") {
            path = spec
        } else {
            path = "/run/netns/\(spec)"
        }
        guard let ino = inode(of: path) else {
            throw DropsError.noNamespace(spec: spec, path: path, reason: String(cString: strerror(errno)))
        }
        return (ino, path)
    }
}
