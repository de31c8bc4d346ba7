import Foundation
import KVMScopeCore
import KVMScopeHost

/// Counts host kernel errors into `kvmscope_host_block_errors_total{device,kind}`: each line
/// goes through the host layer's own reader (HostKernelLogReader: the block layer, SCSI, NVMe,
/// ATA, multipath, dm, md, iSCSI, NFS, Ceph and filesystem messages `kvmscope host` reads),
/// kernel log lines and `block:block_rq_error` tracepoint lines alike.
///
/// With the tracepoint on, one failed request shows twice: blk_update_request (block/blk-mq.c)
/// calls blk_print_req_error (`I/O error, dev …`, rate-limited) and trace_block_rq_error in one
/// branch. As HostKernelAnalysis does for a recording, a message and a record of the same
/// device, sector and operation are one failure, counted once — here whichever is read first,
/// since live the two arrive through different buffers in either order (RequestMatcher).
final class HostKernelCounter {
    private var reader = HostKernelLogReader()
    private var matcher = RequestMatcher()
    private let series: HostSeries
    /// Each error counted is also a `host` record here (the event log), when given.
    private let events: (any WatchEventSink)?
    private var lineNumber = 0
    /// Findings counted, and those left out as the other half of a counted request.
    private(set) var counted = 0
    private(set) var duplicates = 0

    init(series: HostSeries, events: (any WatchEventSink)? = nil) { self.series = series; self.events = events }

    /// A kernel log line as `dmesg --time-format iso` prints it (KernelMessageDevice's output).
    func consume(logLine: String, now: Double) {
        var bytes = Array(logLine.utf8)
        if bytes.last == 0x0A { bytes.removeLast() }
        consume(bytes, now: now)
    }

    /// A trace_pipe line; `deviceNames` turns its `MAJ:MIN` into the kernel's name.
    func consume(traceLine: [UInt8], deviceNames: [String: String], now: Double) {
        if reader.tracepointContext.deviceNames.count != deviceNames.count { reader.tracepointContext.deviceNames = deviceNames }
        var bytes = traceLine
        if bytes.last == 0x0A { bytes.removeLast() }
        consume(bytes, now: now)
    }

    private func consume(_ bytes: [UInt8], now: Double) {
        lineNumber += 1
        var sink = Collect(wantsMessages: events != nil)
        bytes.withUnsafeBufferPointer { reader.consume(line: LineBytes($0), number: lineNumber, into: &sink) }
        for f in sink.findings { count(f, now: now) }
    }

    private func count(_ f: HostKernelFinding, now: Double) {
        guard let kind = Self.kindLabel(f.kind) else { return }
        let device = f.device ?? f.peer ?? ""
        if f.kind == .blockError, let sector = f.sector {
            let key = RequestMatcher.Key(device: device, sector: sector, operation: Self.operationFamily(f.operation))
            if matcher.isSecondReport(key, traced: f.source == .blockTracepoint, now: now) { duplicates += 1; return }
        }
        counted += 1
        series.add(WatchMetricFamilies.hostBlockErrors, [device, kind])
        if let events { events.write(Self.record(f, kind: kind, device: device)) }
    }

    /// The event log's line for one host error: the kernel's own message, and what it is in
    /// `kvmscope host`'s words. Read within a second of the kernel writing it: watch's clock.
    static func record(_ f: HostKernelFinding, kind: String, device: String) -> WatchEventRecord {
        var r = WatchEventRecord(type: .host, time: Date().timeIntervalSince1970, domain: nil, qmp: nil, event: kind)
        r.device = device.isEmpty ? nil : device
        r.operation = f.operation
        r.sector = f.sector
        if let name = f.errno, let e = ErrnoTable.standard.entry(name: name) {
            r.errno = e.name; r.errnoNumber = Int(e.number); r.errnoMessage = e.message
        }
        r.message = f.message
        let from = f.source == .blockTracepoint ? "the block:block_rq_error tracepoint" : "the host kernel log"
        r.explanation = "\(f.kind.label)\(device.isEmpty ? "" : " on host device \(device)"), from \(from): a failure below QEMU, on this host's storage (the disk, its path, or the filesystem the images live on); `kvmscope host` on the host's log says which VMs' storage it is"
        return r
    }

    /// The `kind` label: the finding's kind in kebab case (`block-error`, `scsi-sense`,
    /// `nvme-command-error`, `multipath-failing-path`, `filesystem-read-only`…); nil for those
    /// that are not errors of the storage below the VMs: an NFS server answering again, hung
    /// tasks and OOM kills (the host report lists them, this counter does not).
    static func kindLabel(_ k: HostFindingKind) -> String? {
        switch k {
        case .nfsRecovered, .hungTask, .oomKill: return nil
        default: return kebab(k.rawValue)
        }
    }

    /// `bufferIOError` → `buffer-io-error`: a hyphen before an upper-case letter that follows a
    /// lower-case one, or that starts a word after an acronym.
    static func kebab(_ s: String) -> String {
        let c = Array(s)
        var out = ""
        for i in c.indices {
            let ch = c[i]
            if ch.isUppercase, i > 0 {
                let afterLower = c[i - 1].isLowercase
                let endsAcronym = c[i - 1].isUppercase && i + 1 < c.count && c[i + 1].isLowercase
                if afterLower || endsAcronym { out.append("-") }
            }
            out.append(contentsOf: ch.lowercased())
        }
        return out
    }

    /// blk_print_req_error names WRITE_ZEROES and WRITE_SAME apart; blk_fill_rwbs writes `W` for
    /// all three: compared by that (as HostKernelAnalysis.family).
    static func operationFamily(_ op: String?) -> String {
        switch op {
        case "WRITE", "WRITE_ZEROES", "WRITE_SAME": return "W"
        default: return op ?? ""
        }
    }

    private struct Collect: HostKernelEventSink {
        /// The message text is kept only for the event log (it costs a String per finding).
        let wantsMessages: Bool
        var findings: [HostKernelFinding] = []
        mutating func consume(_ event: HostKernelEvent) {
            if case let .finding(f) = event { findings.append(f) }
        }
    }
}

/// Pairs a kernel message with the tracepoint record of the same failed request, in either
/// order, within `window` seconds. A record whose message the rate limiter dropped never pairs
/// and is forgotten after the window; at most `limit` unpaired reports are remembered (past
/// that a report is counted without being remembered, so a message arriving later for it is
/// counted again: an over-count, never a lost error).
struct RequestMatcher {
    struct Key: Hashable { var device: String; var sector: UInt64; var operation: String }
    static let window = 10.0
    static let limit = 1 << 16

    /// Unpaired reports by request: which side they came from and when (oldest first).
    private var pending: [Key: (traced: Bool, times: [Double])] = [:]
    /// Every remembered report in arrival order, for expiry.
    private var order: [(key: Key, time: Double)] = []
    private var head = 0
    private var remembered = 0

    /// True when this report is the second of a request whose first was already counted.
    mutating func isSecondReport(_ key: Key, traced: Bool, now: Double) -> Bool {
        expire(now)
        if var p = pending[key] {
            if p.traced != traced, !p.times.isEmpty {
                p.times.removeFirst()
                remembered -= 1
                pending[key] = p.times.isEmpty ? nil : p
                return true
            }
        }
        guard remembered < Self.limit, order.count - head < 2 * Self.limit else { return false }
        pending[key, default: (traced, [])].times.append(now)
        order.append((key, now))
        remembered += 1
        return false
    }

    private mutating func expire(_ now: Double) {
        let cutoff = now - Self.window
        while head < order.count, order[head].time < cutoff {
            let key = order[head].key
            head += 1
            guard var p = pending[key] else { continue }
            // Paired reports left the front already; drop only what is really this old.
            while let t = p.times.first, t < cutoff { p.times.removeFirst(); remembered -= 1 }
            pending[key] = p.times.isEmpty ? nil : p
        }
        if head > 4096, head * 2 > order.count { order.removeFirst(head); head = 0 }
    }
}
