import Foundation
import KVMScopeQMP
import KVMScopeTrace
import KVMScopeGuestLog
import KVMScopeHost

/// Joins what the guest logged, what QEMU traced and what QMP reported into one account.
/// Pure: it takes the three models (any may be missing) and returns the report.
enum ExplainAnalysis {
    public static func explain(guest: GuestDiskReport?, host: TraceReport?, qmp qmpInput: QMPTimeline?,
                               disks disksGiven: QEMUDiskMap? = nil, hostKernel: HostKernelReport? = nil,
                               hostKernelOnQEMUClock: Bool = false,
                               hostImages imagesGiven: [HostImageLocation] = [],
                               inputs: ExplainReport.Inputs) -> ExplainReport {
        // A QMP stream that does not overlap the trace in time is from another run (or was not
        // connected then): it is reported, and said to disagree, but not used as evidence.
        var qmpSetAside: String?
        if let q = qmpInput, let span = host?.timeSpan, span.clock == .wall, let a = q.firstEventTime, let b = q.lastEventTime,
           b < span.start - 1 || a > span.end + 1 {
            qmpSetAside = "The QMP stream (\(ExplainStory.span(a, b))) and the trace (\(ExplainStory.span(span.start, span.end))) do not overlap in time: they come from different runs, or QMP was not connected while the trace ran; the QMP events are not used."
        }
        let qmp = qmpSetAside == nil ? qmpInput : nil
        // The guest's block errors, flattened in report order. Their time is the kernel's uptime
        // stamp, or, for logs stamped only with a wall clock (journalctl, dmesg -T), that clock
        // read as UTC: the estimated offset then absorbs the time zone (and a missing year).
        let hostYear = ClockReading.year(of: host?.timeSpan?.start ?? qmp?.ioErrors.compactMap(\.time).first)
        var guestRefs: [ExplainReport.GuestBlockErrorRef] = []
        var guestErrors: [GuestHostCorrelator.GuestError] = []
        var guestBoots: [Int?] = []
        var guestClock: ExplainReport.GuestClock?
        for d in guest?.devices ?? [] {
            for e in d.blockErrors {
                let op = e.operation
                var t = e.location.time.uptimeSeconds
                if t != nil { guestClock = .uptime }
                else if let w = e.location.time.wallClock, let s = ClockReading.seconds(w, defaultYear: hostYear) {
                    t = s
                    if guestClock == nil { guestClock = .wall(zoneKnown: w.utcOffsetMinutes != nil) }
                }
                guestRefs.append(.init(device: e.device, sector: e.sector, operation: op?.rawValue,
                                       uptime: e.location.time.uptimeSeconds, line: e.location.line, boot: e.location.boot,
                                       wallClock: e.location.time.wallClock?.description))
                guestBoots.append(e.location.boot)
                var ge = GuestHostCorrelator.GuestError(device: e.device, sector: e.sector, operation: op, uptime: t, line: e.location.line)
                if e.location.time.uptimeSeconds == nil, let p = e.location.time.precisionMicroseconds { ge.precision = Double(p) / 1e6 }
                guestErrors.append(ge)
            }
        }
        // A command line of another VM lends nothing: its drives are reported, not used.
        var disks = disksGiven
        var commandLineNote: String?
        if let d = disksGiven, let note = CommandLineConsistency.mismatch(
            disks: d, trace: host, qmp: qmp, guestDevices: guestErrors.map(\.device), source: inputs.qemuCommandLine ?? "given") {
            commandLineNote = note
            disks = nil
        }
        let hostImages = disks == nil ? [] : imagesGiven
        // A log with no block error still has a clock: its other messages' stamps.
        if guestClock == nil, guest?.input.firstUptimeMicroseconds != nil { guestClock = .uptime }
        let failures = host?.failures ?? []
        let hostWallClock = host?.timeSpan?.clock == .wall
        let hostFailures = failures.map {
            GuestHostCorrelator.HostFailure(device: $0.device, sector: $0.sector, sectors: $0.sectors,
                                            operation: $0.operation, time: $0.time)
        }
        var matches: [ExplainReport.Match] = []
        var offset: Double?
        var spread: Double?
        var deviceMap: [String: String] = [:]
        var candidateCounts: [Int] = []
        var unmatchedQMP: [Int] = []
        var qmpRetries: Set<Int> = []
        var qmpForSCSI: Set<Int> = []

        // QMP BLOCK_IO_ERRORs belong to host failures when both are on the wall clock.
        var qmpForHost: [Int: Int] = [:]
        if let qmp, hostWallClock {
            qmpForHost = joinQMP(failures, qmp.ioErrors)
        }

        var bootClocks = BootClocks()
        let boots = Set(guestBoots.compactMap { $0 })
        if host != nil, boots.count > 1, guestClock == .uptime {
            // One correlation per boot, each with its own clock, over the failures the earlier
            // boots left: a failure answers one guest request.
            var taken = Set<Int>()
            candidateCounts = Array(repeating: 0, count: guestErrors.count)
            var spreads: [Double] = []
            for b in boots.sorted() {
                let gi = guestErrors.indices.filter { guestBoots[$0] == b && virtioCandidate(guestErrors[$0].device) }
                let hi = hostFailures.indices.filter { !taken.contains($0) }
                let r = GuestHostCorrelator.correlate(guest: gi.map { guestErrors[$0] }, host: hi.map { hostFailures[$0] })
                if let o = r.clockOffset { bootClocks.offsets[b] = o }
                if let s = r.clockOffsetSpread { spreads.append(s) }
                deviceMap.merge(r.deviceMap) { a, _ in a }
                for (k, n) in r.candidateCounts.enumerated() { candidateCounts[gi[k]] = n }
                for p in r.pairs {
                    let g = gi[p.guest], h = hi[p.host]
                    taken.insert(h)
                    matches.append(.init(guest: g, host: h, scsi: nil, attempts: nil, qmp: qmpForHost[h],
                                         guestDevice: guestErrors[g].device, hostDevice: failures[h].device,
                                         operation: failures[h].operation.rawValue, timeDeltaSeconds: p.delta))
                }
            }
            matches.sort { $0.guest < $1.guest }
            offset = bootClocks.offsets[boots.sorted().first { bootClocks.offsets[$0] != nil } ?? 0]
            spread = spreads.max()
        } else if host != nil {
            // Only disks that can be virtio-blk pair with virtio-blk requests: an sda error is
            // never a vdev's failure, however well sector and time line up.
            let gi = guestErrors.indices.filter { virtioCandidate(guestErrors[$0].device) }
            let r = GuestHostCorrelator.correlate(guest: gi.map { guestErrors[$0] }, host: hostFailures)
            offset = r.clockOffset
            spread = r.clockOffsetSpread
            deviceMap = r.deviceMap
            candidateCounts = Array(repeating: 0, count: guestErrors.count)
            for (k, n) in r.candidateCounts.enumerated() { candidateCounts[gi[k]] = n }
            for p in r.pairs {
                let g = gi[p.guest]
                matches.append(.init(guest: g, host: p.host, scsi: nil, attempts: nil, qmp: qmpForHost[p.host],
                                     guestDevice: guestErrors[g].device, hostDevice: failures[p.host].device,
                                     operation: failures[p.host].operation.rawValue, timeDeltaSeconds: p.delta))
            }
        }
        // A guest log on the wall clock pairs only within what time zones (and a little drift)
        // allow: QEMU starts the guest's RTC from the host's clock (-rtc base=utc or localtime),
        // so a gap of days means another time's log, whose errors at the same sectors are not
        // these failures. Its pairs are dropped and the gap is said (ExplainStory).
        var wallClockGap: Double?
        func beyondAnyZone(_ o: Double?) -> Bool {
            guard case .wall(let zoneKnown)? = guestClock, let o else { return false }
            return abs(o) > Self.wallClockAllowance(zoneKnown: zoneKnown)
        }
        if beyondAnyZone(offset) {
            wallClockGap = offset
            matches.removeAll()
            offset = nil
            spread = nil
        }
        // Guest errors on SCSI disks ↔ the SCSI requests QEMU failed, retries folded.
        var scsiRetryQMP: Set<Int> = []
        var scsiMatched: Set<Int> = []
        if let h = host, !h.scsi.failures.isEmpty {
            let candidates = guestErrors.indices.filter { GuestDiskBus(guestDevice: guestErrors[$0].device) == .scsi }
            var (pairs, o) = SCSICorrelation.correlate(guestErrors, candidates: candidates, failures: h.scsi.failures, offset: offset)
            if offset == nil, beyondAnyZone(o) {
                if wallClockGap == nil { wallClockGap = o }
                pairs = []
                o = nil
            }
            if offset == nil { offset = o }
            var taken = Set(qmpForHost.values)
            for p in pairs {
                let last = p.burst.failures.last!
                let q = qmp.map { SCSICorrelation.qmpErrors(for: p.burst, in: $0.ioErrors, excluding: taken) } ?? []
                taken.formUnion(q)
                scsiRetryQMP.formUnion(q.dropLast())
                let f = h.scsi.failures[last]
                matches.append(.init(guest: p.guest, host: nil, scsi: last, attempts: p.burst.failures.count, qmp: q.last,
                                     guestDevice: guestErrors[p.guest].device,
                                     hostDevice: "scsi \(f.target.map(String.init) ?? "?"):\(f.lun.map(String.init) ?? "?")",
                                     operation: f.command?.kind ?? "other", timeDeltaSeconds: p.delta))
                scsiMatched.formUnion(p.burst.failures)
            }
            qmpForSCSI = taken.subtracting(qmpForHost.values)
            matches.sort { $0.guest < $1.guest }
        }
        let guestTime: (GuestLogLocation) -> Double? = { loc in
            if guestClock == .uptime { return loc.time.uptimeSeconds }
            if let w = loc.time.wallClock { return ClockReading.seconds(w, defaultYear: hostYear) }
            return loc.time.uptimeSeconds
        }
        // No failed request to line the clocks up with: the guest's disk setup can.
        var anchored = false
        if offset == nil, let a = ExplainClockAnchor.offset(guest: guest, host: host, time: guestTime), !beyondAnyZone(a) {
            offset = a
            anchored = true
        }
        if let qmp {
            // Guest errors no traced request explains — every one without a trace, and those on
            // disks whose bus the trace does not show (a virtio-blk trace says nothing of sda) —
            // pair with the BLOCK_IO_ERRORs no traced failure took, of the same kind, in order.
            let matchedGuest = Set(matches.map(\.guest))
            let takenQMP = Set(qmpForHost.values).union(qmpForSCSI)
            let guestIdx = guestErrors.indices.filter { i in
                !matchedGuest.contains(i) && (host == nil || !(host.map { h in
                    TraceBusEvents.analysedAndPresent(GuestDiskBus(guestDevice: guestErrors[i].device), in: h) } ?? false))
            }
            var qmpIdx = qmp.ioErrors.indices.filter { !takenQMP.contains($0) }
            // A SCSI guest retries a failed command and logs the error once, after the last
            // attempt; QEMU reports every attempt. Pair with each burst's last attempt.
            if guestIdx.contains(where: { GuestDiskBus(guestDevice: guestErrors[$0].device) == .scsi }) {
                let bursts = QMPRetryBursts.split(qmpIdx.map { qmp.ioErrors[$0] })
                qmpRetries = Set(bursts.flatMap { $0.dropLast() }.map { qmpIdx[$0] })
                qmpIdx = bursts.compactMap(\.last).map { qmpIdx[$0] }
            }
            var (pairs, o, s) = pairWithQMP(guestIdx.map { guestErrors[$0] }, qmpIdx.map { qmp.ioErrors[$0] }, offset: offset)
            if offset == nil, beyondAnyZone(o) {
                if wallClockGap == nil { wallClockGap = o }
                pairs = []
                o = nil
                s = nil
            }
            if offset == nil { offset = o; spread = s }
            for (gi, qi, delta) in pairs {
                let g = guestIdx[gi], q = qmpIdx[qi]
                matches.append(.init(guest: g, host: nil, scsi: nil, attempts: nil, qmp: q, guestDevice: guestErrors[g].device,
                                     hostDevice: qmp.ioErrors[q].device, operation: qmp.ioErrors[q].operation.rawValue,
                                     timeDeltaSeconds: delta))
            }
            matches.sort { $0.guest < $1.guest }
            let paired = Set(pairs.map { qmpIdx[$0.1] })
            unmatchedQMP = qmpIdx.filter { !paired.contains($0) && qmp.ioErrors[$0].action == .report }
        }
        let tracedDisks = Set(matches.filter { $0.host != nil || $0.scsi != nil }.map { GuestDiskBus.disk(of: $0.guestDevice) })
        bootClocks.fallback = offset
        let hostTime: (GuestLogLocation) -> Double? = { loc in
            guard let t = guestTime(loc) else { return nil }
            return guestClock == .uptime ? bootClocks.hostTime(uptime: t, boot: loc.boot) : offset.map { t + $0 }
        }
        let coverage = ExplainCoverage.coverage(guest: guest, host: host, qmp: qmp, offset: offset, wallClockGap: wallClockGap,
                                                matchedDisks: tracedDisks, time: guestTime, hostTime: hostTime)

        var story = ExplainStory(guest: guest, host: host, qmp: qmp, guestErrors: guestErrors, failures: failures,
                          matches: matches, offset: offset, spread: spread, deviceMap: deviceMap,
                          qmpForHost: qmpForHost)
        story.guestClock = guestClock
        story.wallClockGap = wallClockGap
        story.candidateCounts = candidateCounts
        story.unmatchedQMP = unmatchedQMP
        story.qmpRetries = qmpRetries.union(scsiRetryQMP)
        story.qmpForSCSI = qmpForSCSI
        story.scsiMatchedFailures = scsiMatched
        story.guestCoverage = guest.flatMap { g in
            g.input.firstUptimeMicroseconds.flatMap { a in g.input.lastUptimeMicroseconds.map { Double(a) / 1e6...Double($0) / 1e6 } }
        }
        story.coverage = coverage
        story.bootClocks = bootClocks
        story.guestBoots = guestBoots
        story.guestWallClock = guestRefs.map(\.wallClock)
        story.policies = ErrorPolicyInference.infer(host: host, qmp: qmp, disks: disks)
        story.disks = disks
        story.clockAnchored = anchored
        story.qmpSetAside = qmpSetAside != nil
        story.hostImages = hostImages
        if let hk = hostKernel {
            story.hostKernel = hk
            story.hostLayer = HostLayerCorrelation.correlate(hostKernel: hk, trace: host, qmp: qmp, qmpForTrace: qmpForHost,
                                                             matches: matches, guestRefs: guestRefs, images: hostImages,
                                                             onQEMUClock: hostKernelOnQEMUClock)
        }
        story.account()
        if let note = qmpSetAside { story.disagreements.insert(note, at: 0) }
        if let note = commandLineNote { story.disagreements.append(note) }
        return ExplainReport(
            inputs: inputs, guest: guest, host: host, qmp: qmpInput, guestBlockErrors: guestRefs, matches: matches,
            unmatched: story.unmatched, guestClock: guestClock, clockOffsetSeconds: offset, clockOffsetSpreadSeconds: spread,
            guestStampPrecisionSeconds: guestErrors.map(\.precision).max(),
            bootClockOffsets: bootClocks.isMultiBoot
                ? bootClocks.offsets.keys.sorted().map { BootClockOffset(boot: $0, clockOffsetSeconds: bootClocks.offsets[$0]!) } : [],
            coverage: coverage, qemuDisks: disksGiven?.disks, errorPolicies: story.policies, vmPausedAtEnd: story.vmPausedAtEnd,
            hostKernel: hostKernel, layers: story.hostLayer?.links ?? [], hostImages: hostImages,
            hostClockOffsetSeconds: story.hostLayer?.clockOffset, hostClockBasis: story.hostLayer?.clockBasis,
            verdict: story.verdict(), evidence: story.evidence(),
            timeline: ExplainTimeline.build(guest: guest, guestErrors: guestErrors, guestBoots: guestBoots, failures: failures,
                                            qmp: qmp, clocks: bootClocks, wallClockOffset: guestClock == .uptime ? nil : offset,
                                            hostKernel: story.hostLayer?.timeline ?? []),
            nextSteps: story.nextSteps(),
            missing: story.missing(), disagreements: story.disagreements)
    }

    /// A guest disk whose requests can be virtio-blk's: `vdX`, and names that say nothing of
    /// their bus (dm/md stacks are matched through the disks below them in their own lines).
    static func virtioCandidate(_ device: String) -> Bool {
        switch GuestDiskBus(guestDevice: device) {
        case .virtioBlk, .unknown: return true
        default: return false
        }
    }

    /// Each host failure (but QEMU's own rejections) ↔ the nearest unused BLOCK_IO_ERROR of the
    /// same kind within 1 s, in failure order (ties: the earlier event). QMP errors are sorted by
    /// time per kind, so each lookup is a binary search plus the 2-second window, not a scan.
    static func joinQMP(_ failures: [VirtioBlkFailure], _ errors: [QMPTimeline.IOError]) -> [Int: Int] {
        var byKind: [QMPIOOperation: [(time: Double, index: Int)]] = [:]
        for (i, e) in errors.enumerated() { if let t = e.time { byKind[e.operation, default: []].append((t, i)) } }
        for k in byKind.keys { byKind[k]!.sort { ($0.time, $0.index) < ($1.time, $1.index) } }
        var used = Set<Int>()
        var result: [Int: Int] = [:]
        for (hi, f) in failures.enumerated() where f.cause != .rejected {
            guard let t = f.time, let list = byKind[f.operation == .read ? .read : .write] else { continue }
            var lo = 0, hiB = list.count              // first entry with time >= t - 1
            while lo < hiB { let mid = (lo + hiB) / 2; if list[mid].time < t - 1 { lo = mid + 1 } else { hiB = mid } }
            var best: (distance: Double, index: Int)?
            var k = lo
            while k < list.count, list[k].time <= t + 1 {
                let c = (abs(list[k].time - t), list[k].index)
                if !used.contains(c.1), best == nil || c < best! { best = c }
                k += 1
            }
            if let b = best { result[hi] = b.index; used.insert(b.index) }
        }
        return result
    }

    /// Guest errors ↔ QMP I/O errors of the same kind (read ↔ read, everything else ↔ write),
    /// the k-th with the k-th; the offset is the median of their differences.
    /// How far a guest's wall clock may read from the host's and still be the same moment: 2
    /// minutes of drift with a known zone; without one, any zone (UTC-12 to UTC+14) too.
    static func wallClockAllowance(zoneKnown: Bool) -> Double {
        zoneKnown ? 120 : 14 * 3600 + 120
    }

    static func pairWithQMP(_ guest: [GuestHostCorrelator.GuestError], _ errors: [QMPTimeline.IOError],
                            offset known: Double? = nil) -> ([(Int, Int, Double?)], Double?, Double?) {
        func kind(_ op: BlockIOOperation?) -> QMPIOOperation { op == .read ? .read : .write }
        var pairs: [(Int, Int)] = []
        for k in [QMPIOOperation.read, .write] {
            let g = guest.indices.filter { kind(guest[$0].operation) == k }
            let q = errors.indices.filter { errors[$0].operation == k && errors[$0].action != .stop }
            for (a, b) in zip(g, q) { pairs.append((a, b)) }
        }
        let diffs = pairs.compactMap { p -> Double? in
            guard let u = guest[p.0].uptime, let t = errors[p.1].time else { return nil }
            return t - u
        }.sorted()
        let offset = known ?? (diffs.isEmpty ? nil : diffs[diffs.count / 2])
        let spread = diffs.isEmpty ? nil : diffs.last! - diffs.first!
        let result = pairs.sorted { $0.0 < $1.0 }.map { p -> (Int, Int, Double?) in
            let d: Double? = {
                guard let offset, let u = guest[p.0].uptime, let t = errors[p.1].time else { return nil }
                return t - (u + offset)
            }()
            return (p.0, p.1, d)
        }
        return (result, offset, spread)
    }
}

/// Reading a guest log's wall-clock stamps as seconds since the epoch.
enum ClockReading {
    static let utc: Calendar = {
        var c = Calendar(identifier: .gregorian)
        c.timeZone = TimeZone(identifier: "UTC")!
        return c
    }()

    static func year(of t: Double?) -> Int? {
        t.map { utc.component(.year, from: Date(timeIntervalSince1970: $0)) }
    }

    /// The stamp as UTC seconds (its own zone when it has one); a missing year is the host's.
    static func seconds(_ w: WallClockTime, defaultYear: Int?) -> Double? {
        let c = DateComponents(year: w.year ?? defaultYear ?? 2000, month: w.month, day: w.day,
                               hour: w.hour, minute: w.minute, second: w.second)
        guard let d = utc.date(from: c) else { return nil }
        return d.timeIntervalSince1970 + Double(w.microsecond ?? 0) / 1e6 - Double((w.utcOffsetMinutes ?? 0) * 60)
    }
}
