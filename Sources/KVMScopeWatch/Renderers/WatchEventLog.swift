import Foundation

/// Where event records go: one JSON Line each, written whole under a lock so lines of VMs
/// watched by different threads never interleave.
public protocol WatchEventSink: Sendable {
    func write(_ record: WatchEventRecord)
}

/// `--events -` (standard output: journald under systemd) or `--events FILE` (appended).
public final class WatchEventLog: WatchEventSink, @unchecked Sendable {
    private let lock = NSLock()
    private let fd: Int32
    private let ownsDescriptor: Bool
    /// Lines that could not be written (a full disk, a closed pipe): dropped, never blocking a VM's worker.
    public private(set) var droppedLines = 0

    public init(standardOutput: Void = ()) { fd = 1; ownsDescriptor = false }

    /// Opens FILE for appending (created 0640); throws a one-line error.
    public init(path: String) throws {
        let d = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        guard d >= 0 else { throw WatchError.cannotOpenEventLog(path: path, reason: String(cString: strerror(errno))) }
        fd = d; ownsDescriptor = true
    }

    deinit { if ownsDescriptor { close(fd) } }

    public func write(_ record: WatchEventRecord) {
        let bytes = Array((record.jsonLine() + "\n").utf8)
        lock.withLock {
            var off = 0
            while off < bytes.count {
                let n = bytes[off...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
                if n > 0 { off += n; continue }
                if n < 0 && errno == EINTR { continue }
                droppedLines += 1
                return
            }
        }
    }
}

/// Collects records in memory (tests).
public final class WatchEventCollector: WatchEventSink, @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [WatchEventRecord] = []
    public init() {}
    public func write(_ record: WatchEventRecord) { lock.withLock { stored.append(record) } }
    public var records: [WatchEventRecord] { lock.withLock { stored } }
}
