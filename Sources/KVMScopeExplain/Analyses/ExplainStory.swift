import Foundation
import KVMScopeQMP
import KVMScopeTrace
import KVMScopeGuestLog
import KVMScopeHost

/// Turns the joined evidence into words: the verdict, the matched evidence lines, what does
/// not match one-to-one and why, what to do next, and what a missing input would have told.
struct ExplainStory {
    let guest: GuestDiskReport?
    let host: TraceReport?
    let qmp: QMPTimeline?
    let guestErrors: [GuestHostCorrelator.GuestError]
    let failures: [VirtioBlkFailure]
    let matches: [ExplainReport.Match]
    let offset: Double?
    let spread: Double?
    let deviceMap: [String: String]
    let qmpForHost: [Int: Int]
    var unmatched: [ExplainReport.Unmatched] = []
    var disagreements: [String] = []
    var guestClock: ExplainReport.GuestClock?
    /// "72.0 h", or "3.0 days" past two days.
    static func gap(_ seconds: Double) -> String {
        seconds < 48 * 3600 ? String(format: "%.1f h", seconds / 3600) : String(format: "%.1f days", seconds / 86_400)
    }

    /// The guest's wall clock read further from the host's than any time zone allows: the
    /// offset the pairs would have needed (ExplainAnalysis dropped them).
    var wallClockGap: Double?
    /// Per guest error, how many host failures could have been it (trace inputs only).
    var candidateCounts: [Int] = []
    /// QMP errors reported to the guest that no guest error paired with (no trace given).
    var unmatchedQMP: [Int] = []
    /// QMP errors that were earlier attempts of a request the guest's SCSI layer retried.
    var qmpRetries: Set<Int> = []
    /// QMP errors that belong to SCSI requests the trace shows (all their attempts).
    var qmpForSCSI: Set<Int> = []
    /// SCSI failures (indices into host.scsi.failures) that are attempts of a matched request.
    var scsiMatchedFailures: Set<Int> = []
    /// The guest uptimes the log covers, when it has uptime stamps.
    var guestCoverage: ClosedRange<Double>?
    /// Per troubled guest disk, what the host inputs can see of it.
    var coverage: [DeviceCoverage] = []
    var policies: [ErrorPolicyEvidence] = []
    /// A QMP stream was given but set aside (another run): not "not given".
    var qmpSetAside = false
    /// QEMU's command line, when given: the drives, their backends and policies.
    var disks: QEMUDiskMap?
    /// The clock offset comes from the guest's disk setup, not from matched failures.
    var clockAnchored = false
    /// The host's kernel log, when given, and what it says under each QEMU failure.
    var hostKernel: HostKernelReport?
    var hostLayer: HostLayerAccount?
    /// The command line's images as found on this host (explain run there).
    var hostImages: [HostImageLocation] = []

    /// Whether the VM is still paused where the inputs end: QMP's last STOP/RESUME/SHUTDOWN,
    /// else the trace's last I/O-error pause.
    var vmPausedAtEnd: Bool? {
        if let state = qmp?.runStateAtEnd { return state == .paused }
        if let last = host?.vmPauses.last { return last.end == nil }
        if let p = qmp?.pauses.last { return p.seconds == nil }
        return nil
    }

    /// Covered virtio-blk disks on which the guest logged block errors while the trace shows
    /// every request succeeding. Linux's virtio_blk fails a request only when the device
    /// returns a non-OK status (drivers/block/virtio_blk.c virtblk_result(); 6.1 has no timeout
    /// handler), so such inputs contradict each other: another run, or a trace that misses
    /// events — never proof that the guest failed on its own.
    var contradictions: [String] {
        guard failures.isEmpty, scsiRealFailures.isEmpty else { return [] }
        // A request still in flight when the trace ended, holding the guest's sector, may be
        // the one the guest saw fail (QEMU answered after the trace stopped): the trace does
        // not show every request to that disk succeeding.
        return coverage.filter { c in
            c.covered && c.bus == .virtioBlk && guestErrors.contains { GuestDiskBus.disk(of: $0.device) == c.guestDevice }
                && !guestErrors.contains { e in GuestDiskBus.disk(of: e.device) == c.guestDevice && inFlightAtEnd(covering: e) != nil }
        }.map(\.guestDevice)
    }

    /// The request in flight at the end of the trace whose sectors hold the guest error's.
    func inFlightAtEnd(covering e: GuestHostCorrelator.GuestError) -> VirtioBlkInFlightRequest? {
        (host?.inFlight ?? []).first { r in
            guard let s = r.sector else { return false }
            let n = max(1, r.sectors ?? 1)
            return e.sector >= s && e.sector - s < n
        }
    }

    func coverage(of device: String) -> DeviceCoverage? {
        let disk = GuestDiskBus.disk(of: device)
        return coverage.first { $0.guestDevice == disk }
    }

    init(guest: GuestDiskReport?, host: TraceReport?, qmp: QMPTimeline?, guestErrors: [GuestHostCorrelator.GuestError],
         failures: [VirtioBlkFailure], matches: [ExplainReport.Match], offset: Double?, spread: Double?,
         deviceMap: [String: String], qmpForHost: [Int: Int]) {
        self.guest = guest; self.host = host; self.qmp = qmp; self.guestErrors = guestErrors
        self.failures = failures; self.matches = matches; self.offset = offset; self.spread = spread
        self.deviceMap = deviceMap; self.qmpForHost = qmpForHost
    }

    var matchedGuest: Set<Int> { Set(matches.map(\.guest)) }

    /// Guest error times, sorted, for "how many errors did the guest print in this window".
    var sortedGuestTimes: [Double] { guestErrors.compactMap(\.uptime).sorted() }

    /// Number of `times` that are ≤ `x` (binary search).
    static func countAtMost(_ times: [Double], _ x: Double) -> Int {
        var lo = 0, hi = times.count
        while lo < hi { let mid = (lo + hi) / 2; if times[mid] <= x { lo = mid + 1 } else { hi = mid } }
        return lo
    }
    var matchedHost: Set<Int> { Set(matches.compactMap(\.host)) }

    /// Whether the guest's stamps are fine enough to count messages in the kernel's 5-second
    /// rate-limit window: uptime stamps (µs) or wall-clock stamps with fractions. With whole
    /// seconds (syslog, journalctl short) such a count proves nothing.
    var guestStampsPrecise: Bool {
        if guestClock == .uptime { return true }
        return guest?.devices.allSatisfy { d in d.blockErrors.allSatisfy { $0.location.time.wallClock?.microsecond != nil } } ?? false
    }
    var suppressed: Int { guest?.suppressed.total ?? 0 }

    /// Each boot's clock offset (one boot: the correlation's offset).
    var bootClocks = BootClocks()
    /// The boot of each guest error (parallel to `guestErrors`).
    var guestBoots: [Int?] = []
    /// Each guest error's wall-clock stamp as printed, when it has one (parallel to `guestErrors`).
    var guestWallClock: [String?] = []

    /// Host time → guest uptime, when the offset is known (of the boot running at that time).
    func guestTime(_ hostTime: Double?) -> Double? {
        guard let t = hostTime else { return nil }
        return bootClocks.isMultiBoot ? bootClocks.guestUptime(hostTime: t) : offset.map { t - $0 }
    }

    // MARK: accounting for what does not match one-to-one

    mutating func account() {
        let traceSpan = host?.timeSpan
        let guestTimes = sortedGuestTimes
        // Computed once: as properties they are rebuilt on every use, which inside these loops
        // made explain quadratic in the number of errors.
        let matchedGuest = matchedGuest, matchedHost = matchedHost
        let guestStampsPrecise = guestStampsPrecise, suppressed = suppressed
        for (i, g) in guestErrors.enumerated() where !matchedGuest.contains(i) {
            let reason: String
            if host == nil && qmp == nil {
                reason = "no host-side input to compare with"
            } else if let c = coverage(of: g.device), !c.covered, host != nil {
                reason = "the trace cannot see \(c.guestDevice): " + (c.toCover.first ?? "not covered")
            } else if host == nil {
                reason = "no BLOCK_IO_ERROR of this kind is left to pair it with (QMP only reports errors QEMU saw in its storage)"
            } else if failures.isEmpty, let r = inFlightAtEnd(covering: g) {
                reason = "the trace ended with the request for sector \(r.sector ?? g.sector) still in flight (\(r.state)): QEMU's answer to it is not in the trace"
            } else if i < candidateCounts.count, candidateCounts[i] > 0 {
                reason = "a failed host request covers sector \(g.sector), but it is already paired with another guest line: a repeated report of one failure, or a failure the trace did not record"
            } else if deviceMap[g.device] == nil && !(host?.devices.isEmpty ?? true) && !matches.isEmpty {
                reason = "the trace shows no failure on the device that matched \(g.device)'s other errors"
            } else if let span = traceSpan, span.clock == .wall,
                      let t = bootClocks.hostTime(uptime: g.uptime, boot: i < guestBoots.count ? guestBoots[i] : nil) ?? offset.flatMap({ o in g.uptime.map { $0 + o } }),
                      t < span.start - 1 || t > span.end + 1 {
                reason = "logged at a time the trace does not cover"
            } else {
                reason = "no failed host request covers sector \(g.sector): the error arose inside the guest, or in a layer the trace does not show"
            }
            unmatched.append(.init(side: .guest, index: i, reason: reason))
        }
        for (i, f) in failures.enumerated() where !matchedHost.contains(i) {
            var reason: String
            switch (f.cause, f.guestStatus) {
            case (.pausedRetried, _) where f.retrySucceeded == true:
                reason = "the VM was paused and the retry succeeded: the guest never saw an error"
            case (.pausedRetried, _):
                reason = "the VM was paused and the request never completed: the guest is still waiting"
            case (_, "OK"):
                reason = "QEMU ignored the error and told the guest the request succeeded (werror/rerror=ignore)"
            case (_, nil):
                reason = "the guest was never told (still in flight at the end of the trace)"
            default:
                if guest == nil { reason = "no guest log to compare with" }
                else if let gap = wallClockGap { reason = "the guest log is from another time (its wall clock reads \(Self.gap(abs(gap))) from the host's)" }
                else if suppressed > 0 { reason = "probably among the \(suppressed) guest messages the kernel's rate limiter suppressed" }
                else if guestStampsPrecise, let gt = guestTime(f.time),
                        Self.countAtMost(guestTimes, gt + 0.01) - Self.countAtMost(guestTimes, gt - 5) >= 10 {
                    // blk_print_req_error() uses printk_ratelimited(): 10 messages per 5 s. The
                    // count of dropped ones is printed only with the next message after that.
                    reason = "the guest had just printed 10 I/O errors: its kernel prints at most 10 per 5 s (printk_ratelimited) and drops the rest until a later message reports them as 'callbacks suppressed'"
                }
                else if let gt = guestTime(f.time), let last = guestTimes.last, gt > last + 1 {
                    reason = "after the guest log ends"
                } else {
                    reason = "the guest log has no error for this request"
                }
            }
            unmatched.append(.init(side: .host, index: i, reason: reason))
        }
        for q in qmpRetries.sorted() {
            unmatched.append(.init(side: .qmp, index: q, reason: "an earlier attempt of a request the guest's SCSI layer retried (ABORTED COMMAND is retried, drivers/scsi/scsi_error.c scsi_check_sense()); the guest logs the I/O error once, after the last attempt"))
        }
        for q in unmatchedQMP {
            unmatched.append(.init(side: .qmp, index: q, reason: guest == nil ? "no guest log to compare with"
                : "QEMU reported this error to the guest, but the guest log has no I/O error left to pair with it"))
        }
        // Inputs that disagree: say so instead of inventing matches.
        // Host failures the guest was told about, at a time its log covers, that it never logged
        // (and not explained by its rate limit): the inputs are probably from different runs.
        if let coverage = guestCoverage, guestClock == .uptime, !matches.isEmpty {
            let unexplained = unmatched.filter { u in
                guard u.side == .host, u.reason == "the guest log has no error for this request" else { return false }
                let f = failures[u.index]
                guard f.guestStatus == "IOERR" || f.guestStatus == "UNSUPP", let gt = guestTime(f.time) else { return false }
                return gt >= coverage.lowerBound - 0.5 && gt <= coverage.upperBound + 0.5
            }.count
            if unexplained > 0 {
                disagreements.append("The trace has \(count(unexplained, "failure")) the guest was told about, at a time its log covers, that the guest never logged: the trace and the guest log may come from different runs or VMs.")
            }
        }
        if host == nil, qmp != nil, guest != nil {
            let g = unmatched.filter { $0.side == .guest }.count
            let q = unmatchedQMP.count
            if (g > 0 && !(qmp?.ioErrors.isEmpty ?? true)) || (q > 0 && !guestErrors.isEmpty) {
                disagreements.append("The guest log and the QMP events do not line up one-to-one (\(count(g, "guest error")) without a BLOCK_IO_ERROR, \(count(q, "reported BLOCK_IO_ERROR")) without a guest error): they may come from different runs, or part of one was not captured.")
            }
        }
        if let gap = wallClockGap {
            disagreements.append(String(format: "The guest log's wall clock and the host's differ by %@, more than any time zone: they come from different times, or one of the clocks is wrong, so the guest's errors are not paired with the host's.", Self.gap(abs(gap))))
        }
        if !guestErrors.isEmpty, !failures.isEmpty, matches.isEmpty, wallClockGap == nil {
            let gd = Set(guestErrors.map(\.device)).sorted().joined(separator: ", ")
            disagreements.append("The guest's errors (\(gd)) and the trace's \(failures.count) failure(s) match in neither sector nor operation: is the trace from this VM and this disk, and from the same time?")
        }
        for disk in contradictions {
            disagreements.append("The guest logged I/O errors on \(disk), a virtio-blk disk, at a time the trace covers, but the trace shows every request succeeding; the guest's virtio_blk fails a request only when QEMU returns an error status (drivers/block/virtio_blk.c): the trace and the guest log are from different runs or VMs, or the trace misses events.")
        }
        if let spread, spread > 2 {
            disagreements.append(String(format: "The matched pairs disagree on the clock offset by %.1f s: some matches may be wrong, or the logs come from different runs.", spread))
        }
        if let qmp, let span = host?.timeSpan, span.clock == .wall {
            let times = qmp.ioErrors.compactMap(\.time)
            if let a = qmp.firstEventTime, let b = qmp.lastEventTime, b < span.start - 1 || a > span.end + 1 {
                disagreements.append("The QMP stream (\(Self.span(a, b))) and the trace (\(Self.span(span.start, span.end))) do not overlap in time: they come from different runs, or QMP was not connected while the trace ran.")
            } else if let first = times.min(), let last = times.max(), last < span.start - 60 || first > span.end + 60 {
                disagreements.append("The QMP events are from another time than the trace (more than a minute apart): they may come from another run.")
            } else if let a = qmp.firstEventTime, let b = qmp.lastEventTime {
                // QEMU sends BLOCK_IO_ERROR for every error its storage returns, whatever the
                // policy (block/block-backend.c blk_error_action() → send_qmp_error_event()).
                let unreported = failures.indices.filter { i in
                    let f = failures[i]
                    guard qmpForHost[i] == nil, f.cause == .backendError || f.cause == .pausedRetried, let t = f.time else { return false }
                    return t >= a && t <= b
                }
                if !unreported.isEmpty {
                    disagreements.append("The trace has \(count(unreported.count, "storage failure")) at a time the QMP stream covers (\(Self.span(a, b))) for which QMP has no BLOCK_IO_ERROR, though QEMU sends one for every storage error: the QMP stream is probably from another run or VM.")
                }
            }
        }
        if guestClock == .uptime, let offset, let ut = guestErrors.compactMap(\.uptime).min(), offset + ut < 946_684_800, host?.timeSpan?.clock == .wall {
            disagreements.append("The estimated guest boot time is before the year 2000: the guest log and the host trace do not share a time.")
        }
    }

    // MARK: verdict

    var backendFailures: [VirtioBlkFailure] { failures.filter { $0.cause == .backendError || $0.cause == .pausedRetried } }
    var rejected: [VirtioBlkFailure] { failures.filter { $0.cause == .rejected } }
    var otherRequests: [VirtioBlkFailure] { failures.filter { $0.cause == .otherRequest } }

    var scsiFailures: [ScsiFailure] { host?.scsi.failures ?? [] }
    /// Failures that are not the guest's bus scan: Linux probes every target with INQUIRY and
    /// REPORT LUNS (drivers/scsi/scsi_scan.c), and virtio-scsi answers BAD_TARGET for each one
    /// without a disk (hw/scsi/virtio-scsi.c virtio_scsi_handle_cmd_req_prepare()).
    var scsiRealFailures: [Int] {
        scsiFailures.indices.filter { i in
            let f = scsiFailures[i]
            let probe = ["INQUIRY", "REPORT LUNS", "TEST UNIT READY"].contains(f.command?.name ?? "")
            return !(probe && f.responseName == "BAD_TARGET")
        }
    }
    /// SCSI requests failed because QEMU's storage returned an errno (scsi-disk's
    /// scsi_handle_rw_error() → scsi_sense_from_errno()).
    var scsiStorageFailures: [ScsiFailure] { scsiFailures.filter { $0.sense?.hostErrno != nil } }
    /// SCSI requests QEMU refused itself: ILLEGAL REQUEST (LBA out of range, bad CDB field).
    var scsiRejected: [ScsiFailure] { scsiFailures.filter { $0.sense?.hostErrno == nil && $0.sense?.key == 5 } }

    var origin: ExplainReport.Origin {
        if !backendFailures.isEmpty || !otherRequests.isEmpty || !scsiStorageFailures.isEmpty { return .hostStorage }
        if !rejected.isEmpty || !scsiRejected.isEmpty { return .qemuRejected }
        // QEMU sends BLOCK_IO_ERROR for every error its storage returns, whatever the policy.
        if let qmp, !qmp.ioErrors.isEmpty { return .hostStorage }
        // Nothing failed on the host side: that proves something only about disks the host
        // inputs could see, over the time of their trouble.
        if coverage.isEmpty { return .unknown }
        if !contradictions.isEmpty { return .unknown }
        // The trace ended before QEMU answered the guest's failed request: no layer is shown.
        if failures.isEmpty, guestErrors.contains(where: { inFlightAtEnd(covering: $0) != nil }) { return .unknown }
        if coverage.allSatisfy(\.covered) { return .guestInternal }
        if coverage.contains(where: { !$0.covered && !$0.toCover.isEmpty }) { return .notCovered }
        return .unknown
    }

    /// Requests the trace saw complete on the host device of a guest disk (all devices when
    /// the guest disk was never matched to one, which only a single-device trace allows).
    func completedRequests(for guestDisk: String) -> (completed: Int, devices: [String])? {
        guard let host else { return nil }
        let candidates = host.devices
        guard !candidates.isEmpty else { return nil }
        if let mapped = deviceMap.first(where: { GuestDiskBus.disk(of: $0.key) == guestDisk })?.value,
           let d = candidates.first(where: { $0.device == mapped }) {
            return (d.completed, [d.device])
        }
        return (candidates.reduce(0) { $0 + $1.completed }, candidates.map(\.device))
    }

    func verdict() -> ExplainReport.Verdict {
        var s: [String] = []
        let hostErrnos = Set(backendFailures.compactMap(\.errnoName) + (qmp?.ioErrors.compactMap(\.errnoName) ?? []))
        switch origin {
        case .hostStorage:
            s += hostSentences()
        case .qemuRejected:
            let ops = Set(rejected.map { $0.operation.rawValue }).sorted().joined(separator: "/")
            s.append("QEMU rejected \(count(rejected.count, "\(ops) request")) before touching storage (the guest got \(rejected.first?.guestStatus ?? "an error")): the sector was out of range or misaligned, or the request type is not supported.")
        case .guestInternal:
            s += guestInternalSentences()
        case .notCovered:
            s += notCoveredSentences()
        case .unknown:
            let pending = failures.isEmpty ? guestErrors.compactMap { e in inFlightAtEnd(covering: e).map { (e, $0) } } : []
            if let (e, r) = pending.first, contradictions.isEmpty {
                let what = [r.operation?.rawValue, r.sector.map { "of sector \($0)" + (r.sectors.map { "+\($0)" } ?? "") }].compactMap { $0 }.joined(separator: " ")
                s.append("The guest logged \(count(guestErrors.count, "I/O error")) on \(e.device) (sector \(e.sector)\(pending.count > 1 ? " and \(pending.count - 1) more" : "")), and the trace ends with that request (\(what.isEmpty ? r.request : what)) still in flight, \(r.state): it stopped before QEMU answered, so it cannot say which layer failed. Trace QEMU until after the guest's error (and QMP's BLOCK_IO_ERROR would name the host errno).")
            } else if !contradictions.isEmpty {
                s.append("The guest logged \(count(guestErrors.count, "I/O error")) on \(contradictions.joined(separator: ", ")), but the trace, which covers that time, shows every request to the disk succeeding: the inputs contradict each other (see INPUTS THAT DISAGREE), and kvmscope does not guess which one is wrong.")
            } else if guestErrors.isEmpty && !(guest?.hasDiskErrors ?? false) && failures.isEmpty && (qmp?.ioErrors.isEmpty ?? true) {
                s.append("No disk errors: the inputs show no failed request.")
            } else {
                let devs = Set(guestErrors.map(\.device)).sorted().joined(separator: ", ")
                s.append("The guest logged \(count(guestErrors.count, "I/O error"))\(devs.isEmpty ? "" : " on \(devs)"); without a QEMU trace or QMP events kvmscope cannot tell whether the host's storage, QEMU or a layer inside the guest failed.")
            }
        }
        if origin == .hostStorage { s += hostLayerSentences() }
        s += qemuProcessSentences()
        if origin == .hostStorage || origin == .qemuRejected { s += uncoveredAsides() }
        s += guestSentences(hostErrnos: hostErrnos)
        var v = ExplainReport.Verdict(origin: origin, summary: s.joined(separator: " "))
        if origin == .hostStorage, let layer = hostLayerVerdict() { v.layer = layer.layer; v.hostDevice = layer.device }
        return v
    }

    /// What the host side did, one sentence per kind of failure.
    func hostSentences() -> [String] {
        var out: [String] = []
        struct Key: Hashable { let cause: VirtioBlkFailureCause; let op: VirtioBlkOperation; let errno: String?; let status: String? }
        var groups: [Key: [Int]] = [:]
        var order: [Key] = []
        for (i, f) in failures.enumerated() {
            let k = Key(cause: f.cause, op: f.operation, errno: f.errnoName, status: f.guestStatus)
            if groups[k] == nil { order.append(k) }
            groups[k, default: []].append(i)
        }
        for k in order {
            let idx = groups[k]!
            let f = failures[idx[0]]
            let what = count(idx.count, "\(f.operation.rawValue) request")
            let errnoText = f.errnoName.map { "\($0) (\(f.errnoMessage ?? ""))" } ?? qmpReason(idx)
            let policy = f.operation == .read ? "rerror" : "werror"
            switch k.cause {
            case .backendError where k.status == "OK":
                out.append("The host's storage under QEMU failed \(what) with \(errnoText ?? "an error"); QEMU ignored it (\(policy)=ignore) and told the guest it succeeded: that data may be silently lost.")
            case .backendError:
                out.append("The host's storage under QEMU failed \(what) with \(errnoText ?? "an error"); QEMU passed \(idx.count == 1 ? "it" : "them") to the guest (\(policyWords(f.operation))).")
            case .pausedRetried:
                let waited = idx.compactMap { failures[$0].waitedSeconds }.reduce(0, +)
                let ok = idx.allSatisfy { failures[$0].retrySucceeded == true }
                let why = f.errno == 28 ? "\(policy)=enospc or stop" : "\(policy)=stop"
                // Say every pause the trace shows, and one still open at its end: the waits of the
                // failed attempts alone understate a VM that stayed stopped.
                let pauses = host?.vmPauses ?? []
                let pauseWords = pauses.count > 1 ? " \(pauses.count) times" : ""
                let stillPaused = pauses.last.map { $0.end == nil } ?? false
                out.append("The host's storage under QEMU failed \(what) with \(errnoText ?? "an error")\(f.errno == 28 ? ": the host ran out of space" : ""); QEMU paused the VM\(pauseWords) (\(why))\(waited > 0 && pauses.count <= 1 ? String(format: " for %.1f s", waited) : "") and retried after `cont`: " + (ok ? "the retry succeeded, so the guest saw no error." : "the retry failed again.") + (stillPaused ? " The VM was still paused when the trace ended." : ""))
            case .otherRequest:
                let label = f.operation == .flush || f.operation == .flushOrOther ? "cache flush" : f.operation.rawValue
                out.append("\(count(idx.count, "\(label) request")) failed on the host (the guest got \(f.guestStatus ?? "no answer"))\(errnoText.map { " with \($0)" } ?? ""); QEMU traces no errno for flushes, discards and write-zeroes\(errnoText != nil ? ", so this comes from QMP" : "").")
            case .rejected:
                out.append("QEMU rejected \(what) before touching storage (the guest got \(f.guestStatus ?? "an error")).")
            }
        }
        out += scsiSentences()
        // BLOCK_IO_ERRORs no traced failure accounts for: all of them without a trace, and
        // those of disks the trace does not show (a virtio-scsi disk beside a virtio-blk trace).
        let joined = Set(qmpForHost.values).union(qmpForSCSI)
        if let qmp, host == nil || qmp.ioErrors.indices.contains(where: { !joined.contains($0) }) {
            let all = qmp.ioErrors.indices.filter { !joined.contains($0) }
            // Under werror/rerror=stop, `cont` retries the paused request and QEMU reports each
            // failed retry again (block/block-backend.c blk_error_action): the same request, not
            // "1 more" error.
            let contRetries = Set(all.filter { Self.isRetryAfterCont(qmp.ioErrors[$0], qmp) })
            let own = all.filter { !contRetries.contains($0) }
            let ownRetries = own.filter { qmpRetries.contains($0) }.count
            for e in own.prefix(1).map({ qmp.ioErrors[$0] }) {
                out.append("QEMU reported a \(e.operation) error on \(e.device.isEmpty ? (e.nodeName ?? "a disk") : e.device) from its storage: \(e.errnoName.map { "\($0) (\(e.reason ?? ""))" } ?? e.reason ?? "unknown reason") (QMP BLOCK_IO_ERROR, action \(e.action))\(own.count > 1 ? ", and \(own.count - 1) more" : "")\(ownRetries == 0 ? "" : "; \(ownRetries) of them \(ownRetries == 1 ? "was a retry" : "were retries") of a failed command by the guest's SCSI layer")\(outsideTraceWords(own.map { qmp.ioErrors[$0] }))\(contRetries.isEmpty ? "" : "; QEMU reported each failed retry after `cont` again (\(contRetries.count) more BLOCK_IO_ERROR\(contRetries.count == 1 ? "" : "s"))").")
            }
            if own.isEmpty, !contRetries.isEmpty {
                out.append("QMP reported each failed retry after `cont` too: \(contRetries.count) more BLOCK_IO_ERROR\(contRetries.count == 1 ? "" : "s") (action stop), one per retry of the same request.")
            }
            for p in qmp.pauses where host == nil {
                out.append("The VM was paused" + (p.seconds.map { String(format: " for %.1f s", $0) } ?? " until the end of the capture") + " because \(p.nospace ? "the host ran out of space" : "of a \(p.operation) error")" + (p.retrySucceeded == true ? "; the retry succeeded." : p.retrySucceeded == false ? "; the retry failed again." : "."))
            }
        }
        if let nbd = host?.backend.nbd, host?.backend.kind == "nbd", nbd.connectionLossesTotal > 0 || nbd.failedRequestsTotal > 0 {
            out.append(nbdSentence(nbd))
        }
        if let trace = host, trace.leakedTotal > 0 {
            out.append("\(count(trace.leakedTotal, "request")) never came back from QEMU by the end of the trace (see in-flight requests).")
        }
        return out
    }

    func qmpReason(_ hostIndices: [Int]) -> String? {
        for i in hostIndices {
            if let q = qmpForHost[i], let e = qmp?.ioErrors[q] { return e.errnoName.map { "\($0) (\(e.reason ?? ""))" } ?? e.reason }
        }
        return nil
    }

    /// What the guest made of it: where it logged the errors, what it cannot see, what it lost.
    func guestSentences(hostErrnos: Set<String>) -> [String] {
        var out: [String] = []
        if !matches.isEmpty {
            var byDevice: [String: [UInt64]] = [:]
            for m in matches.sorted(by: { $0.guest < $1.guest }) {
                let sector = guestErrors[m.guest].sector
                if !(byDevice[m.guestDevice]?.contains(sector) ?? false) { byDevice[m.guestDevice, default: []].append(sector) }
            }
            let parts = byDevice.keys.sorted().map { d -> String in
                let sectors = byDevice[d]!
                let shown = sectors.prefix(5).map(String.init).joined(separator: ", ")
                return "\(d) at sector\(sectors.count == 1 ? "" : "s") \(shown)\(sectors.count > 5 ? " and \(sectors.count - 5) more" : "")"
            }
            out.append("The guest logged \(matches.count == 1 ? "it" : "them") as \"I/O error\" on \(parts.joined(separator: "; ")).")
        }
        let hidden = hostErrnos.subtracting(["EIO"]).sorted()
        if !hidden.isEmpty && !guestErrors.isEmpty {
            out.append("The guest cannot see the host's \(hidden.joined(separator: "/")): virtio-blk hands every storage failure to the guest as a plain I/O error.")
        }
        // A read that failed inside a larger request.
        for m in matches {
            guard let h = m.host else { continue }
            let f = failures[h]
            if f.operation == .read, let s = f.sectors, s > 8, let start = f.sector {
                out.append("The failed read covered sectors \(start)–\(start + s - 1) (\(s / 2) KiB): the sector that actually failed can be anywhere in it; the guest only logs where its request started.")
                break
            }
        }
        for d in guest?.devices ?? [] {
            for fs in d.filesystems where fs.readOnly || fs.journalAborted || fs.shutdown {
                var t = "\(fs.type) on \(fs.device)"
                var events: [String] = []
                if fs.journalAborted { events.append("aborted its journal" + at(fs.journalAbortedAt)) }
                if fs.readOnly { events.append("went read-only" + at(fs.readOnlyAt)) }
                if fs.shutdown { events.append("shut down" + at(fs.shutdownAt)) }
                t += " " + events.joined(separator: " and ")
                if let first = guestErrors.enumerated().filter({ $0.element.device == d.name && $0.element.operation == .write })
                    .min(by: { ($0.element.uptime ?? 0, $0.element.line) < ($1.element.uptime ?? 0, $1.element.line) }) {
                    t += "; the first failing write was sector \(first.element.sector)"
                        + (guestClock == .uptime ? first.element.uptime.map { String(format: " at %.6f s", $0) } ?? "" : guestWallClock[first.offset].map { " at \($0)" } ?? "")
                }
                out.append(t + ".")
            }
            if d.lostBlocks.asyncWrite > 0 {
                // The kernel rate-limits "lost async page write" (printk_ratelimited: 10 per 5 s),
                // so the count logged is a floor.
                out.append("At least \(count(d.lostBlocks.asyncWrite, "page write")) on \(d.name) \(d.lostBlocks.asyncWrite == 1 ? "was" : "were") lost asynchronously (the kernel rate-limits these messages, so there may be more): the programs that wrote that data were probably never told.")
            }
        }
        if suppressed > 0 {
            out.append("The guest kernel suppressed \(count(suppressed, "further message")) (rate limiting): there were more errors than it logged.")
        }
        return out
    }

    func at(_ loc: GuestLogLocation?) -> String {
        if let s = loc?.time.uptimeSeconds { return String(format: " at %.6f s", s) }
        if let w = loc?.time.wallClock { return " at \(w)" }
        return ""
    }

    func count(_ n: Int, _ noun: String) -> String { n == 1 ? "1 \(noun)" : "\(n) \(noun)s" }
}

extension ExplainStory {
    /// A stop-action BLOCK_IO_ERROR that came after the RESUME of a pause of the same device and
    /// operation whose retry failed (QMPTimeline's verdict): `cont`'s retry failing again.
    static func isRetryAfterCont(_ e: QMPTimeline.IOError, _ qmp: QMPTimeline) -> Bool {
        guard e.action == .stop else { return false }
        let before = qmp.pauses.last { p in
            p.device == e.device && p.operation == e.operation && (p.resumeLine.map { $0 < e.line } ?? false)
        }
        return before?.retrySucceeded == false
    }
}
