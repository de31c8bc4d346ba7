import Foundation

/// Where event records go: one JSON Line each.
public protocol WatchEventSink: Sendable {
    func write(_ record: WatchEventRecord)
}

/// `--events -` (standard output: journald under systemd) or `--events FILE` (appended).
///
/// Workers hand lines to a bounded queue and a writer thread of its own writes them, so a
/// reader that stops reading (a stuck journald, a full pipe, a hung NFS log directory) never
/// blocks a VM's worker: past `maxQueuedBytes` lines are dropped and counted instead.
public final class WatchEventLog: WatchEventSink, @unchecked Sendable {
    public static let maxQueuedBytes = 8 << 20
    private let fd: Int32
    private let ownsDescriptor: Bool
    private let lock = NSLock()
    private let wake = DispatchSemaphore(value: 0)
    private let drained = DispatchSemaphore(value: 0)
    private var queue: [[UInt8]] = []
    private var head = 0
    private var queuedBytes = 0
    private var closing = false
    private var dropped = 0
    private var failed = 0

    /// Standard output.
    public convenience init() { self.init(descriptor: 1, owned: false) }

    /// Opens FILE for appending (created 0640); throws a one-line error.
    public convenience init(path: String) throws {
        let d = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        guard d >= 0 else { throw WatchError.cannotOpenEventLog(path: path, reason: String(cString: strerror(errno))) }
        self.init(descriptor: d, owned: true)
    }

    /// Writes to `descriptor` (closed at `close` when `owned`).
    public init(descriptor: Int32, owned: Bool) {
        fd = descriptor
        ownsDescriptor = owned
        let t = Thread { [self] in writer() }
        t.name = "kvmscope-watch-events"
        t.start()
    }

    /// Lines dropped because the queue was full, or that write(2) refused (a full disk, a closed pipe).
    public var droppedLines: Int { lock.withLock { dropped + failed } }

    public func write(_ record: WatchEventRecord) {
        let bytes = Array((record.jsonLine() + "\n").utf8)
        let queued: Bool = lock.withLock {
            guard !closing, queuedBytes + bytes.count <= Self.maxQueuedBytes else { dropped += 1; return false }
            queue.append(bytes)
            queuedBytes += bytes.count
            return true
        }
        if queued { wake.signal() }
    }

    /// Writes what is queued, waiting at most `seconds`, then stops the writer.
    public func close(waiting seconds: Double = 2) {
        let first = lock.withLock { () -> Bool in defer { closing = true }; return !closing }
        guard first else { return }
        wake.signal()
        _ = drained.wait(timeout: .now() + seconds)
    }

    private func writer() {
        while true {
            wake.wait()
            while let line = next() {
                var off = 0
                while off < line.count {
                    let n = line[off...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
                    if n > 0 { off += n; continue }
                    if n < 0 && errno == EINTR { continue }
                    lock.withLock { failed += 1 }
                    break
                }
            }
            if lock.withLock({ closing && head == queue.count }) {
                if ownsDescriptor { Glibc.close(fd) }
                drained.signal()
                return
            }
        }
    }

    private func next() -> [UInt8]? {
        lock.withLock {
            guard head < queue.count else { queue.removeAll(keepingCapacity: true); head = 0; return nil }
            let line = queue[head]
            queue[head] = []
            head += 1
            queuedBytes -= line.count
            // A writer that never quite catches up must not leave a growing run of spent slots.
            if head >= 4096 && head * 2 >= queue.count { queue.removeFirst(head); head = 0 }
            return line
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
