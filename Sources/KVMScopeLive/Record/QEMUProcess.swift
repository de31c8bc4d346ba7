import Foundation
import KVMScopeCore

/// What the recorder needs to know of the QEMU process behind a monitor, read from
/// /proc/PID/cmdline: where its log goes, whether its log lines carry timestamps, and its
/// monitors (to find one from a pid, as `stap -x PID` attaches by pid).
public struct QEMUProcess: Sendable, Equatable {
    public let pid: Int32?
    public let arguments: [String]

    public init(pid: Int32?, arguments: [String]) { self.pid = pid; self.arguments = arguments }

    /// Reads /proc/PID/cmdline (NUL-separated argv).
    public static func read(pid: Int32, procRoot: String = "/proc") throws -> QEMUProcess {
        let path = "\(procRoot)/\(pid)/cmdline"
        guard let data = FileManager.default.contents(atPath: path) else {
            throw KVMScopeError.cannotOpen(path: path, reason: FileManager.default.fileExists(atPath: "\(procRoot)/\(pid)")
                ? "permission denied (run as root or as the VM's user)" : "no process \(pid)")
        }
        let argv = data.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        return QEMUProcess(pid: pid, arguments: argv.last == "" ? Array(argv.dropLast()) : argv)
    }

    /// The process is there and not a zombie: a QEMU that exited and whose parent has not yet
    /// reaped it (a shell, a test) still answers kill(pid, 0), and has nothing left to restore.
    public static func runs(pid: Int32, procRoot: String = "/proc") -> Bool {
        guard kill(pid, 0) == 0 || errno == EPERM else { return false }
        guard let data = FileManager.default.contents(atPath: "\(procRoot)/\(pid)/stat"),
              let close = data.lastIndex(of: UInt8(ascii: ")")), close + 2 < data.count else { return true }
        let state = data[close + 2]
        return state != UInt8(ascii: "Z") && state != UInt8(ascii: "X")
    }

    /// True once the process no longer runs (`runs`), within `seconds`.
    @discardableResult
    public static func waitForExit(pid: Int32, seconds: Double) -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if !runs(pid: pid) { return true }
            usleep(50_000)
        }
        return !runs(pid: pid)
    }

    /// The values of an option, in order (`-D x`, `-D=x` is not QEMU syntax; `--D x` is).
    func values(of option: String) -> [String] {
        var out: [String] = []
        var i = 0
        while i < arguments.count {
            let a = arguments[i]
            if (a == "-" + option || a == "--" + option), i + 1 < arguments.count { out.append(arguments[i + 1]); i += 2; continue }
            i += 1
        }
        return out
    }

    /// `-D FILE`: where QEMU's log (and the log trace backend) writes; nil: stderr.
    public var logFile: String? { values(of: "D").last }

    /// `-msg timestamp=on`: the log backend prefixes `PID@SECONDS.MICROS:` (util/log.c,
    /// trace/control.h: `message_with_timestamp`); without it trace lines carry no time.
    public var logsTimestamps: Bool {
        values(of: "msg").contains { $0.split(separator: ",").contains { $0 == "timestamp=on" || $0 == "timestamp" || $0 == "timestamp=yes" } }
    }

    /// Is this a QEMU system emulator at all (argv[0] `qemu-system-*`, `qemu-kvm`, `kvm`)?
    public var isQEMU: Bool {
        guard let first = arguments.first else { return false }
        let base = (first as NSString).lastPathComponent
        return base.hasPrefix("qemu-system-") || base == "qemu-kvm" || base == "kvm" || base.hasPrefix("qemu-kvm")
    }

    /// The QMP monitors it serves: `-qmp unix:PATH,server…`, `-qmp tcp:…`, and
    /// `-chardev socket,id=X,path=P,server=on` + `-mon chardev=X,mode=control` (libvirt's form).
    public var qmpAddresses: [QMPAddress] {
        var out: [QMPAddress] = []
        for spec in values(of: "qmp") { if let a = try? QMPAddress(parsing: spec) { out.append(a) } }
        var sockets: [String: QMPAddress] = [:]
        for spec in values(of: "chardev") {
            let parts = spec.split(separator: ",").map(String.init)
            guard parts.first == "socket" else { continue }
            let kv = Self.keyValues(parts.dropFirst())
            guard let id = kv["id"] else { continue }
            if let path = kv["path"] { sockets[id] = .unix(path: path) }
            else if let port = kv["port"].flatMap({ UInt16($0) }) { sockets[id] = .tcp(host: kv["host"] ?? "localhost", port: port) }
        }
        for spec in values(of: "mon") {
            let kv = Self.keyValues(spec.split(separator: ",").map(String.init)[...])
            if kv["mode"] == "control", let id = kv["chardev"], let a = sockets[id] { out.append(a) }
        }
        return out
    }

    private static func keyValues(_ parts: ArraySlice<String>) -> [String: String] {
        var kv: [String: String] = [:]
        for p in parts {
            if let eq = p.firstIndex(of: "=") { kv[String(p[..<eq])] = String(p[p.index(after: eq)...]) } else { kv[p] = "on" }
        }
        return kv
    }
}
