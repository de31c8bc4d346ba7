import Foundation
import KVMScopeCore
import KVMScopeTracefs
import KVMScopeHost

/// The host's `block:block_rq_error` tracepoint, recorded in a private tracefs instance while
/// `record` runs: every failed block request on the host, where the kernel's `I/O error, dev`
/// message is rate-limited (blk_print_req_error uses printk_ratelimited, block/blk-mq.c).
///
/// Lines are kept as trace_pipe prints them (what `kvmscope host` and trace-cmd users read);
/// what they do not say is measured here and saved in capture.json:
/// - the wall clock of the trace clock: a trace_marker line written at a known wall time, read
///   back with its stamp (tracefs' `local` clock is not printk's: 28 ms apart on the lab host);
/// - the device names of `MAJ,MIN` (from /sys/dev/block at record time);
/// - records lost (`[LOST N EVENTS]` lines and the ring buffer's overrun counters).
/// Public for `watch --host-kernel`, which follows it live.
public final class HostBlockErrorTrace {
    let instance: TracefsInstance
    private var fd: Int32
    private var pending: [UInt8] = []
    private var mark: (text: String, wallMicroseconds: Int64)?
    private(set) var wallOffsetMicroseconds: Int64?
    private(set) var records = 0
    private(set) var lostFromPipe: UInt64 = 0
    public private(set) var devices: [String: String] = [:]
    /// A hostile or broken device table must not grow without bound.
    static let deviceLimit = 4096
    /// A line longer than this is not a trace_pipe record: dropped.
    static let lineLimit = 4096

    public init(tracefs: Tracefs) throws {
        guard tracefs.hasEvent("block", "block_rq_error") else {
            throw TracefsError.missingEvents(root: tracefs.root, events: ["block:block_rq_error"],
                                             hint: "it was added in Linux 5.18; the host kernel log is the only block-layer record")
        }
        instance = try TracefsInstance(in: tracefs)
        fd = -1
        do {
            // A failed request is a rare event: a small buffer per CPU is plenty, and one that
            // fills is counted as lost, never silently.
            try instance.setBufferSize(kilobytes: 256)
            try instance.write("trace_clock", "local")
            try instance.enable("block/block_rq_error")
            let p = instance.file("trace_pipe")
            fd = open(p, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
            guard fd >= 0 else { throw TracefsError.io(path: p, reason: String(cString: strerror(errno))) }
        } catch {
            try? instance.remove()
            throw error
        }
    }

    deinit { close(); try? instance.remove() }

    public var pollDescriptor: Int32 { fd }

    /// Writes `text` into the instance's buffer as a trace_marker line, noting the wall time
    /// of the write; its stamp, read back, gives the trace clock's offset (the first one only).
    @discardableResult
    func writeMark(_ text: String) -> Bool {
        let p = instance.file("trace_marker")
        let w = open(p, O_WRONLY | O_CLOEXEC)
        guard w >= 0 else { return false }
        defer { Glibc.close(w) }
        let bytes = Array(text.utf8)
        var before = timespec(); clock_gettime(CLOCK_REALTIME, &before)
        guard bytes.withUnsafeBytes({ write(w, $0.baseAddress, $0.count) }) == bytes.count else { return false }
        var after = timespec(); clock_gettime(CLOCK_REALTIME, &after)
        let mid = (Int64(before.tv_sec) + Int64(after.tv_sec)) * 500_000 + (Int64(before.tv_nsec) + Int64(after.tv_nsec)) / 2000
        if wallOffsetMicroseconds == nil { mark = (text, mid) }
        return true
    }

    /// Every complete line waiting now (each ending in a newline); never blocks.
    public func readAvailable() -> [[UInt8]] {
        guard fd >= 0 else { return [] }
        var buf = [UInt8](repeating: 0, count: 65536)
        for _ in 0..<64 {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            pending += buf[..<n]
        }
        var out: [[UInt8]] = []
        var start = 0
        while let nl = pending[start...].firstIndex(of: 0x0A) {
            let line = Array(pending[start..<nl])
            start = nl + 1
            if line.count <= Self.lineLimit, let kept = consume(line) { out.append(kept + [0x0A]) }
        }
        pending.removeFirst(start)
        if pending.count > Self.lineLimit { pending.removeAll() }
        return out
    }

    /// What one line adds to the counts; the line to keep, or nil.
    private func consume(_ line: [UInt8]) -> [UInt8]? {
        line.withUnsafeBufferPointer { p -> [UInt8]? in
            let l = LineBytes(p)
            if let r = BlockRequestErrorTracepoint.parse(l) {
                records += 1
                let number = r.deviceNumber
                if devices[number] == nil, devices.count < Self.deviceLimit, let name = Self.deviceName(number) {
                    devices[number] = name
                }
                return line
            }
            // `CPU:%d [LOST %lu EVENTS]` (kernel/trace/trace.c print_trace_line).
            if let at = l.find("[LOST "), let (n, _) = l.decimal(at: at + 6) {
                let (sum, overflow) = lostFromPipe.addingReportingOverflow(n)
                lostFromPipe = overflow ? .max : sum
                return line
            }
            if let m = mark, l.find("tracing_mark_write: ") != nil, l.find(bytes: Array(m.text.utf8)) != nil,
               let stamp = Self.stamp(l) {
                wallOffsetMicroseconds = m.wallMicroseconds - stamp
                mark = nil
                return line
            }
            return l.find("tracing_mark_write: ") != nil ? line : nil
        }
    }

    /// The stamp before `: tracing_mark_write:`, in µs.
    static func stamp(_ l: LineBytes) -> Int64? {
        guard let name = l.find(": tracing_mark_write: ") else { return nil }
        var t = name
        while t > 0, l[t - 1] != 0x20 { t -= 1 }
        guard let (us, end) = l.fixedPoint(at: t, fractionDigits: 6), end == name else { return nil }
        return us
    }

    /// The kernel's name of block device `MAJ:MIN`: /sys/dev/block/MAJ:MIN links to its
    /// directory under /sys/devices, named after it (`loop0`, `sda1`, `dm-3`, `nvme0n1`).
    static func deviceName(_ number: String, sysfs: String = "/sys/dev/block") -> String? {
        guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "\(sysfs)/\(number)") else { return nil }
        let name = (target as NSString).lastPathComponent
        return name.isEmpty || name.count > 64 ? nil : name
    }

    /// Records lost in all: trace_pipe's `[LOST]` lines, and the ring buffer's own counters.
    public var lostRecords: UInt64 { max(lostFromPipe, instance.lostEvents()) }

    public func close() { if fd >= 0 { Glibc.close(fd); fd = -1 } }

    /// The last lines, then the instance goes.
    func finish() -> [[UInt8]] {
        let last = readAvailable()
        let lost = lostRecords
        close()
        try? instance.remove()
        finalLost = lost
        return last
    }
    private(set) var finalLost: UInt64 = 0
}
