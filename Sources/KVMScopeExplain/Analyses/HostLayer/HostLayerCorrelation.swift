import KVMScopeCore
import KVMScopeQMP
import KVMScopeTrace
import KVMScopeGuestLog
import KVMScopeHost

/// The layer below QEMU: each failure QEMU got from its storage, tied to what the host's own
/// kernel logged at that moment (a block device's I/O error, a multipath path lost, a full
/// filesystem), or to the fact that the host kernel, whose log covers the moment, logged
/// nothing. One link per QEMU failure.
public struct HostLayerLink: Sendable, Encodable, Equatable {
    /// What failed below QEMU, as far as the inputs show:
    /// - `host-block-device`: the host kernel logged an I/O error on a block device (loop, sd,
    ///   nvme, dm, md, rbd, nbd...) at the moment QEMU's request failed;
    /// - `multipath`, `thin-pool`, `md-raid`, `iscsi`, `nfs`, `ceph`, `host-filesystem`: the
    ///   host kernel's message at that moment names that layer;
    /// - `host-filesystem-full`: QEMU got ENOSPC and the host kernel logged nothing, which is
    ///   what a full filesystem does (ext4 and XFS print nothing for ENOSPC on a data write);
    /// - `nbd-server`: QEMU's NBD client lost its server (the host kernel never sees it);
    /// - `not-logged-by-host-kernel`: the host log covers the moment and has no storage error:
    ///   the error came from a layer the kernel does not report on (QEMU's own block layer,
    ///   a user-space or network backend, a FUSE file);
    /// - `host-log-rate-limited`: the log covers the moment and has no storage error for it,
    ///   but the kernel's rate limiter dropped messages (`callbacks suppressed`,
    ///   lib/ratelimit.c; block I/O errors are printk_ratelimited in blk_print_req_error): its
    ///   silence proves nothing, so no layer is concluded from it — unless the block_rq_error
    ///   tracepoint, which is not rate-limited, was recorded throughout with nothing lost;
    /// - `host-log-does-not-cover`: the host log starts after or ends before the failure.
    public var layer: String
    /// Index into `host.failures` (the trace's failed virtio-blk requests), when traced.
    @NullEncoded public var traceFailure: Int? = nil
    /// Index into `qmp.ioErrors`, when a BLOCK_IO_ERROR reported it.
    @NullEncoded public var qmp: Int? = nil
    /// Index into `guestBlockErrors`, when the guest's error for this request was matched.
    @NullEncoded public var guest: Int? = nil
    @NullEncoded public var guestDevice: String? = nil
    @NullEncoded public var guestSector: UInt64? = nil
    @NullEncoded public var qemuDevice: String? = nil
    public var operation: String
    @NullEncoded public var qemuErrno: String? = nil
    /// QEMU's time for the failure (seconds since the epoch, the trace's or QMP's clock).
    @NullEncoded public var qemuTime: Double? = nil
    /// Index into `hostKernel.findings` of the host kernel message tied to it.
    @NullEncoded public var hostFinding: Int? = nil
    @NullEncoded public var hostDevice: String? = nil
    @NullEncoded public var hostSector: UInt64? = nil
    @NullEncoded public var hostErrno: String? = nil
    @NullEncoded public var hostLine: Int? = nil
    /// QEMU's time minus the host message's, after the host log's clock offset.
    @NullEncoded public var timeDeltaSeconds: Double? = nil
    /// Where the guest sector is on the host disk by the image's extents (explain run on the
    /// VM's host, raw image), and whether the host kernel's sector is that place.
    @NullEncoded public var expectedHostSector: UInt64? = nil
    @NullEncoded public var samePlace: Bool? = nil
}

/// What `HostLayerCorrelation` found: the links and the host log's clock.
struct HostLayerAccount: Equatable {
    var links: [HostLayerLink] = []
    /// QEMU's clock minus the host kernel log's (seconds), estimated from the tied failures;
    /// nil when nothing tied in time.
    var clockOffset: Double?
    var clockOffsetSpread: Double?
    /// How the host log's times were read: `wall-clock` (stamps with a zone), `wall-clock-no-zone`
    /// (read as UTC: the offset absorbs the zone) or `uptime` (the offset is the host's boot time).
    var clockBasis: String?
    /// The host log's first and last stamps on QEMU's clock, when the offset is known (or the
    /// stamps carry their zone).
    var coveredSpan: ClosedRange<Double>?
    /// Host failure findings no QEMU failure was tied to (other devices, other times).
    var unpairedHostFailures = 0
    /// Of those, the ones stamped before the trace's first event or after its last (on QEMU's
    /// clock, with a wall-clock trace): the trace cannot have their requests.
    var unpairedBeforeTrace = 0
    var unpairedAfterTrace = 0
    /// Hung-task and OOM-kill findings that name QEMU.
    var qemuProcessFindings: [Int] = []
    /// The host log's failures on QEMU's clock, for the timeline (when the clocks line up).
    var timeline: [ExplainTimelineEntry] = []
}

enum HostLayerCorrelation {
    /// One failure QEMU got from its storage.
    struct QEMUFailure {
        var time: Double?
        var operation: String
        var write: Bool?
        var errno: String?
        var device: String?
        var trace: Int?
        var qmp: Int?
    }

    /// Within this of each other (after the offset), a host kernel error and QEMU's failed
    /// request are the same event: the kernel logs the error as the request completes
    /// (blk_print_req_error in blk_update_request), QEMU's completion follows within
    /// microseconds to milliseconds.
    static let tolerance = 0.05
    /// dmesg's wall-clock stamps are boot time + printk's clock and drift from the real time
    /// by up to seconds (more after a suspend): a larger offset between a zoned host log and
    /// QEMU's clock means the log is of another time or host.
    static let wallClockDriftLimit = 60.0
    /// An offset that only one tie supports is no measurement: fitted to that pair, it makes any
    /// host error up to `wallClockDriftLimit` away look simultaneous ("within 1 ms"). A zoned log
    /// is trusted to be this close to QEMU's clock on its own word; further needs two ties.
    static let singleTieDriftLimit = 1.0

    static func correlate(hostKernel: HostKernelReport, trace: TraceReport?, qmp: QMPTimeline?,
                          qmpForTrace: [Int: Int], matches: [ExplainReport.Match],
                          guestRefs: [ExplainReport.GuestBlockErrorRef], images: [HostImageLocation] = [],
                          onQEMUClock: Bool = false) -> HostLayerAccount {
        var account = HostLayerAccount()
        let qemu = qemuFailures(trace: trace, qmp: qmp, qmpForTrace: qmpForTrace)
        let findings = hostKernel.findings
        let hostYear = ClockReading.year(of: qemu.compactMap(\.time).first)
        // The host log's clock: wall clock with a zone if it has one, else printk's uptime,
        // else its zone-less wall clock.
        let basis: String = {
            let t = hostKernel.input.first ?? findings.first?.time
            if let w = t?.wallClock, w.utcOffsetMinutes != nil { return "wall-clock" }
            if t?.uptimeMicroseconds != nil { return "uptime" }
            return "wall-clock-no-zone"
        }()
        account.clockBasis = basis
        func seconds(_ t: GuestLogTime) -> Double? {
            switch basis {
            case "uptime": return t.uptimeSeconds
            default: return t.wallClock.flatMap { ClockReading.seconds($0, defaultYear: hostYear) }
            }
        }
        let candidates: [(index: Int, time: Double, write: Bool?)] = findings.indices.compactMap { i -> (index: Int, time: Double, write: Bool?)? in
            let f = findings[i]
            guard pairs(f.kind), let t = seconds(f.time) else { return nil }
            return (i, t, f.operation.flatMap(isWrite))
        }.sorted { ($0.time, $0.index) < ($1.time, $1.index) }
        account.qemuProcessFindings = findings.indices.filter { findings[$0].isQEMU && [.hungTask, .oomKill].contains(findings[$0].kind) }

        // The offset that ties the most QEMU failures to a host error of the same kind. Bounded
        // whatever the inputs hold: candidate offsets from the first 32 × 128 pairs, each scored
        // on the first 256 failures (every tie is a binary search), then applied to all.
        let timed = qemu.filter { $0.time != nil }
        let sample = Array(timed.prefix(256))
        var best: (count: Int, offset: Double, spread: Double)?
        for q in timed.prefix(32) {
            for h in candidates.prefix(128) where compatible(q.write, h.write) {
                let o = q.time! - h.time
                if basis == "wall-clock", abs(o) > wallClockDriftLimit { continue }
                let tied = tie(sample, candidates, offset: o)
                let deltas = tied.map(\.delta)
                let spread = (deltas.max() ?? 0) - (deltas.min() ?? 0)
                let c = (tied.count, o, spread)
                if let b = best {
                    if c.0 > b.count || (c.0 == b.count && (c.2, abs(c.1)) < (b.spread, abs(b.offset))) { best = c }
                } else {
                    best = c
                }
            }
        }
        // One failure on each side ties at any offset of an uptime clock: nothing checks it.
        if let b = best, basis != "wall-clock", b.count < 2 { best = nil }
        if let b = best, basis == "wall-clock", b.count < 2, abs(b.offset) > singleTieDriftLimit { best = nil }
        if let b = best {
            // Centre the offset on the tied pairs.
            let tied = tie(sample, candidates, offset: b.offset)
            let ds = tied.map(\.delta).sorted()
            account.clockOffset = b.offset + ds[ds.count / 2]
            account.clockOffsetSpread = (ds.last ?? 0) - (ds.first ?? 0)
        }
        let offset = account.clockOffset ?? (basis == "wall-clock" ? 0 : nil)
        if let offset, let a = (hostKernel.input.first).flatMap(seconds), let b = (hostKernel.input.last).flatMap(seconds), a <= b {
            // Assumed rather than measured (nothing tied): allow for dmesg's drift at both ends
            // (0.43 s on the lab's host; more only after a suspend) — unless the log was written
            // on QEMU's clock already (kvmscope record calibrates it on its own kmsg mark).
            let margin = account.clockOffset == nil && !onQEMUClock ? 0.5 : 0
            if b - a > 2 * margin { account.coveredSpan = (a + offset + margin)...(b + offset - margin) }
        }
        let tiedPairs = offset.map { tieClosest(timed, candidates, offset: $0) } ?? []
        var hostFor: [Int: (finding: Int, delta: Double)] = [:]
        for p in tiedPairs { hostFor[p.qemu] = (candidates[p.host].index, p.delta) }
        let guestFor = Dictionary(matches.compactMap { m in m.host.map { ($0, m.guest) } }, uniquingKeysWith: { a, _ in a })
        let guestForQMP = Dictionary(matches.compactMap { m in m.host == nil ? m.qmp.map { ($0, m.guest) } : nil },
                                     uniquingKeysWith: { a, _ in a })
        let nbd = trace?.backend.kind == "nbd"
        for (k, q) in timed.enumerated() {
            var link = HostLayerLink(layer: "", operation: q.operation)
            link.traceFailure = q.trace; link.qmp = q.qmp; link.qemuDevice = q.device
            link.qemuErrno = q.errno; link.qemuTime = q.time
            link.guest = q.trace.flatMap { guestFor[$0] } ?? q.qmp.flatMap { guestForQMP[$0] }
            if let g = link.guest, g < guestRefs.count { link.guestDevice = guestRefs[g].device; link.guestSector = guestRefs[g].sector }
            if let (fi, delta) = hostFor[k] {
                let f = findings[fi]
                link.hostFinding = fi; link.hostDevice = f.device; link.hostSector = f.sector
                link.hostErrno = f.errno; link.hostLine = f.line; link.timeDeltaSeconds = delta
                link.layer = layer(of: f.kind)
                // By place too, when the image's extents on this host are known.
                // The guest's sector: from its log when matched, else the traced request's own
                // (QEMU's virtio-blk sector is the guest's, a `kvmscope record` capture has no guest log).
                if let g = link.guestSector ?? q.trace.flatMap({ $0 < (trace?.failures.count ?? 0) ? trace?.failures[$0].sector : nil }),
                   let dev = f.device,
                   let img = images.first(where: { $0.guestOffsetsAreFileOffsets && $0.disk == dev }),
                   let (byte, overflow) = Optional(g.multipliedReportingOverflow(by: 512)), !overflow,
                   let expected = img.diskSector(imageOffset: byte) {
                    link.expectedHostSector = expected
                    // The host request can start inside the guest's (the block layer splits it).
                    let length = max(1, q.trace.flatMap { trace?.failures[$0].sectors } ?? 1)
                    link.samePlace = f.sector.map { $0 >= expected && $0 - expected < length }
                }
            } else if let span = account.coveredSpan, let t = q.time, !span.contains(t) {
                link.layer = "host-log-does-not-cover"
            } else if account.coveredSpan == nil {
                link.layer = "host-log-does-not-cover"
            } else if nbd {
                link.layer = "nbd-server"
            } else if hostKernel.input.suppressedMessages > 0 && !hostKernel.input.blockTracepointComplete {
                // With the block_rq_error tracepoint recorded throughout, the rate limiter
                // hides no failed block request: the silence is evidence again.
                link.layer = "host-log-rate-limited"
            } else if q.errno == "ENOSPC" || q.errno == "EDQUOT" {
                link.layer = "host-filesystem-full"
            } else {
                link.layer = "not-logged-by-host-kernel"
            }
            account.links.append(link)
        }
        if let offset {
            for i in findings.indices where pairs(findings[i].kind) || account.qemuProcessFindings.contains(i) {
                guard let t = seconds(findings[i].time) else { continue }
                let f = findings[i]
                account.timeline.append(.init(time: t + offset, source: .hostKernel,
                                              what: "\(f.kind.label)" + (f.device.map { " on \($0)" } ?? "")
                                                + (f.sector.map { " sector \($0)" } ?? "") + (f.operation.map { " \($0)" } ?? "")
                                                + (f.errno.map { " \($0)" } ?? "")
                                                + (f.source == .blockTracepoint ? " (host block_rq_error tracepoint, line \(f.line))"
                                                                                : " (host kernel log line \(f.line))")))
                if account.timeline.count >= ExplainTimeline.limit { break }
            }
        }
        let used = Set(hostFor.values.map(\.finding))
        let unpaired = findings.indices.filter { !used.contains($0) && pairs(findings[$0].kind) }
        account.unpairedHostFailures = unpaired.count
        if let offset, let span = trace?.timeSpan, span.clock == .wall {
            // The same 10 ms margin as for QMP's stamps: record's host recording is on QEMU's
            // clock already; a host log tied by its offset is within the offset's spread.
            let margin = 0.01 + (account.clockOffsetSpread ?? 0)
            for i in unpaired {
                guard let t = seconds(findings[i].time).map({ $0 + offset }) else { continue }
                if t < span.start - margin { account.unpairedBeforeTrace += 1 }
                else if t > span.end + margin { account.unpairedAfterTrace += 1 }
            }
        }
        return account
    }

    /// The failures QEMU got from its storage: the trace's (QEMU's own rejections are not the
    /// storage's), else QMP's BLOCK_IO_ERRORs.
    static func qemuFailures(trace: TraceReport?, qmp: QMPTimeline?, qmpForTrace: [Int: Int]) -> [QEMUFailure] {
        var out: [QEMUFailure] = []
        if let trace, !trace.failures.isEmpty {
            for (i, f) in trace.failures.enumerated() where f.cause != .rejected {
                let w: Bool? = f.operation == .read ? false : f.operation == .write ? true : nil
                out.append(QEMUFailure(time: f.time, operation: f.operation.rawValue, write: w, errno: f.errnoName,
                                       device: f.device, trace: i, qmp: qmpForTrace[i]))
            }
        } else if let qmp {
            for (i, e) in qmp.ioErrors.enumerated() {
                out.append(QEMUFailure(time: e.time, operation: e.operation.rawValue, write: e.operation == .write,
                                       errno: e.errnoName, device: e.device.isEmpty ? e.nodeName : e.device, trace: nil, qmp: i))
            }
        }
        return out.sorted { ($0.time ?? .infinity) < ($1.time ?? .infinity) }
    }

    /// Each QEMU failure ↔ an unused host error of a compatible kind within the tolerance, in
    /// time order. `delta` is QEMU's time − (host time + offset).
    ///
    /// The nearest one, unless that ties fewer failures than can be tied: in a burst (QEMU
    /// sees each error up to 8 ms after the kernel, the guest's retries come 5 ms apart) a
    /// failure could take the next one's host error, and the last of the burst was left with
    /// none — "not logged by the host kernel", falsely. Taking the earliest error left in each
    /// window instead ties as many as can be tied at all (every window is as wide: the greedy
    /// for points in intervals), so that is used whenever it ties more.
    static func tie(_ qemu: [QEMUFailure], _ host: [(index: Int, time: Double, write: Bool?)], offset: Double)
        -> [(qemu: Int, host: Int, delta: Double)] {
        let nearest = tie(qemu, host, offset: offset, earliest: false)
        let most = tie(qemu, host, offset: offset, earliest: true)
        return most.count > nearest.count ? most : nearest
    }

    static func tie(_ qemu: [QEMUFailure], _ host: [(index: Int, time: Double, write: Bool?)], offset: Double, earliest: Bool)
        -> [(qemu: Int, host: Int, delta: Double)] {
        var used = Set<Int>()
        var out: [(Int, Int, Double)] = []
        for (qi, q) in qemu.enumerated() {
            guard let t = q.time else { continue }
            let target = t - offset
            var lo = 0, hi = host.count
            while lo < hi { let m = (lo + hi) / 2; if host[m].time < target - tolerance { lo = m + 1 } else { hi = m } }
            var bestK: Int?
            var k = lo
            // At most 64 host errors looked at per failure: a burst of thousands in one window
            // would otherwise make this quadratic (the used ones are skipped again each time).
            while k < host.count, k - lo < 64, host[k].time <= target + tolerance {
                if !used.contains(k), compatible(q.write, host[k].write),
                   bestK == nil || abs(host[k].time - target) < abs(host[bestK!].time - target) {
                    bestK = k
                    if earliest { break }
                }
                k += 1
            }
            if let b = bestK { used.insert(b); out.append((qi, b, target - host[b].time)) }
        }
        return out
    }

    static func compatible(_ a: Bool?, _ b: Bool?) -> Bool { a == nil || b == nil || a == b }

    /// WRITE, Write, WRITE FPDMA QUEUED... are writes; READ, Read are reads; others neither.
    static func isWrite(_ op: String) -> Bool? {
        let u = op.uppercased()
        if u.hasPrefix("WRITE") { return true }
        if u.hasPrefix("READ") { return false }
        return nil
    }

    /// Host messages that can be the failure under a QEMU request.
    static func pairs(_ k: HostFindingKind) -> Bool {
        switch k {
        case .blockError, .bufferIOError, .scsiResult, .scsiOffline, .nvmeCommandError, .nvmeTimeout, .ataError,
             .multipathFailingPath, .multipathNoPaths, .multipathQueueTimeout, .thinPoolOutOfSpace, .dmCryptError,
             .mdMemberFailed, .iscsiConnectionError, .iscsiSessionRecoveryTimeout, .nfsNotResponding, .cephSocketError,
             .filesystemError, .filesystemReadOnly, .filesystemShutdown, .filesystemFull:
            return true
        case .scsiSense, .nvmeReset, .ataLinkReset, .nfsRecovered, .hungTask, .oomKill:
            return false
        }
    }

    static func layer(of k: HostFindingKind) -> String {
        switch k {
        case .multipathFailingPath, .multipathNoPaths, .multipathQueueTimeout: return "multipath"
        case .thinPoolOutOfSpace: return "thin-pool"
        case .mdMemberFailed: return "md-raid"
        case .iscsiConnectionError, .iscsiSessionRecoveryTimeout: return "iscsi"
        case .nfsNotResponding, .nfsRecovered: return "nfs"
        case .cephSocketError: return "ceph"
        case .filesystemError, .filesystemReadOnly, .filesystemShutdown: return "host-filesystem"
        case .filesystemFull: return "host-filesystem-full"
        default: return "host-block-device"
        }
    }
}
