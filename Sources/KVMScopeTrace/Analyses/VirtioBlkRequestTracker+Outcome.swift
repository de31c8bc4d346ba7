/// How a request ended, and the report once the trace is over.
extension VirtioBlkRequestTracker {
    /// A request left the tracker (returned to the guest, or its pointer was reused): count it,
    /// time it and, when it failed, say why.
    mutating func finalize(_ r: VirtioBlkRequestState, at t: Int64?) {
        if r.awaitingFill { completedAwaitingFill -= 1 }
        guard r.isBlock else {
            if !blockQueues.contains(r.vq) { notes.otherVirtioElements += 1 }
            return
        }
        if r.vq != 0, r.vq != lastBlockQueue {
            blockQueues.insert(r.vq)
            lastBlockQueue = r.vq
        }
        let vdev = deviceKey(r)
        if vdev != 0, vdev != lastBlockDevice {
            lastBlockDevice = vdev
            if blockDevices.insert(vdev).inserted, vdev & Self.queueKeyFlag != 0 {
                self[device: vdev].queues = [r.vq]
            }
        }
        guard let statusValue = r.status else {
            // Gone without a status (its pointer came back): only a parked failure is news.
            if r.isWaitingForRetry {
                recordFailure(r, cause: r.retries > 0 ? .pausedRetried : .backendError, guestStatus: nil,
                              retrySucceeded: r.retries > 0 ? false : nil, note: "its pointer was reused before any status was traced")
            } else {
                notes.endedWithoutStatus += 1
            }
            return
        }
        let op = r.operation
        let status = VirtioBlkStatus(statusValue)
        var waited: Int64?
        if let p = r.popNs, let end = r.fillNs ?? r.statusNs { waited = end - p }
        let bytes: UInt64 = status == .ok && (op == .read || op == .write) ? (r.sectors ?? 0) * 512 : 0   // sectors < 2^55
        // In place: copying an accumulator out would copy its histograms on every request.
        updateLatency(op) { $0.note(popToFill: waited, bytes: bytes) }
        if status == .ok {
            counts.completed += 1
            updateDevice(vdev) { $0.completed += 1 }
            if r.firstErrorRet != nil {
                if r.retries > 0 {
                    counts.pausedAndRetried += 1
                    recordFailure(r, cause: .pausedRetried, guestStatus: status.name, retrySucceeded: true)
                } else {
                    counts.backendErrorsIgnored += 1
                    recordFailure(r, cause: .backendError, guestStatus: status.name, retrySucceeded: nil)
                }
            }
        } else {
            counts.failed += 1
            updateDevice(vdev) { $0.failed += 1 }
            let cause: VirtioBlkFailureCause
            if r.firstErrorRet != nil {
                cause = r.retries > 0 ? .pausedRetried : .backendError
            } else if r.handled != nil || r.attempts > 0 || status == .unsupported {
                cause = .rejected
            } else {
                cause = .otherRequest
            }
            if cause == .pausedRetried { counts.pausedAndRetried += 1 }
            recordFailure(r, cause: cause, guestStatus: status.name,
                          retrySucceeded: cause == .pausedRetried ? false : nil)
        }
    }

    /// The accumulator of `op`'s latencies, changed in place (made on first use).
    mutating func updateLatency(_ op: VirtioBlkOperation, _ change: (inout OperationAccumulator) -> Void) {
        let slot = op.latencySlot
        if latencies[slot] == nil { latencies[slot] = OperationAccumulator() }
        change(&latencies[slot]!)
    }

    /// Devices are keyed by vdev; without one (QEMU before 2.10 traced no vdev) by their
    /// queue, flagged with bit 63 (never set in a user-space pointer).
    static let queueKeyFlag: UInt64 = 1 << 63

    func deviceKey(_ r: VirtioBlkRequestState) -> UInt64 {
        if r.vdev != 0 { return r.vdev }
        if let vdev = vqToVdev[r.vq] { return vdev }
        return r.vq != 0 ? r.vq | Self.queueKeyFlag : 0
    }

    static func deviceLabel(key: UInt64) -> String {
        if key == 0 { return "unknown" }
        if key & queueKeyFlag != 0 { return "vq:" + hex(key & ~queueKeyFlag) }
        return hex(key)
    }

    func deviceLabel(_ r: VirtioBlkRequestState) -> String { Self.deviceLabel(key: deviceKey(r)) }

    static func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }

    /// Counts a failure in its exact group (cheap: integers only) and builds the detailed
    /// record only when it is kept or someone is listening, so that traces with millions of
    /// failures stay fast.
    mutating func recordFailure(_ r: VirtioBlkRequestState, cause: VirtioBlkFailureCause, guestStatus: String?,
                                retrySucceeded: Bool?, note: String? = nil) {
        failuresTotal += 1
        let timeNs = r.firstErrorNs ?? r.statusNs ?? r.popNs ?? r.firstSeenNs
        let key = GroupKey(device: deviceKey(r), operation: r.operation, cause: cause, errno: r.firstErrorRet,
                           guestStatus: guestStatus, retrySucceeded: retrySucceeded)
        if let i = groups.index(forKey: key) {
            groups.values[i].add(timeNs: timeNs, sector: r.sector, sectors: r.sectors)
        } else {
            groupOrder.append(key)
            var g = GroupCounter()
            g.add(timeNs: timeNs, sector: r.sector, sectors: r.sectors)
            groups[key] = g
        }
        let keep = failures.count < options.maxFailuresKept
        guard keep || onNotice != nil else { return }
        let errnoNumber = r.firstErrorRet.flatMap { $0 < 0 ? Int(-$0) : nil }
        let entry = r.firstErrorRet.flatMap { options.errnoTable.entry(number: $0) }
        var f = VirtioBlkFailure(
            device: deviceLabel(r), queue: r.vq != 0 ? Self.hex(r.vq) : nil, request: Self.hex(r.elem),
            operation: r.operation, sector: r.sector, sectors: r.sectors,
            errno: errnoNumber, errnoName: entry?.name ?? errnoNumber.map { "errno \($0)" },
            errnoMessage: entry?.message,
            guestStatus: guestStatus, cause: cause, retrySucceeded: retrySucceeded, attempts: r.attempts,
            waitedSeconds: r.retries > 0 ? TraceTimestamp.decimalSeconds(r.waitedNs) : nil,
            time: timeNs.map(TraceTimestamp.decimalSeconds),
            sinceStart: timeNs.flatMap { t in firstNs.map { TraceTimestamp.decimalSeconds(t - $0) } },
            explanation: "")
        f.explanation = Self.explain(f, retries: r.retries, note: note)
        if keep { failures.append(f) }
        onNotice?(.failure(f))
    }

    func failureGroup(_ key: GroupKey, _ g: GroupCounter) -> VirtioBlkFailureGroup {
        let errnoNumber = key.errno.flatMap { $0 < 0 ? Int(-$0) : nil }
        return VirtioBlkFailureGroup(
            device: Self.deviceLabel(key: key.device), operation: key.operation, cause: key.cause, errno: errnoNumber,
            errnoName: key.errno.flatMap { options.errnoTable.entry(number: $0)?.name } ?? errnoNumber.map { "errno \($0)" },
            guestStatus: key.guestStatus, retrySucceeded: key.retrySucceeded, count: g.count,
            firstTime: g.firstNs.map(TraceTimestamp.decimalSeconds), lastTime: g.lastNs.map(TraceTimestamp.decimalSeconds),
            sectorMin: g.sectorMin, sectorEnd: g.sectorEnd)
    }

    /// Said of a backend error when the trace has neither virtio_blk_req_complete nor
    /// virtqueue_fill: what the guest was told (and whether the VM paused) is not in it.
    static let statusNotTracedNote = "what the guest was told is not in the trace (no virtio_blk_req_complete or virtqueue_fill events)"

    /// The error policies under which QEMU passes a storage error to the guest: `report`, and
    /// `enospc` (werror's default) for every errno but ENOSPC (blk_get_error_action() in
    /// block/block-backend.c). The trace does not say which one the drive had.
    static func reportingPolicy(_ policy: String, errno: Int?) -> String {
        errno == 28 ? "\(policy)=report" : "\(policy)=report, or enospc\(policy == "werror" ? " (the default)" : ""), which reports all but ENOSPC"
    }

    /// One sentence saying what happened, in QEMU's terms.
    static func explain(_ f: VirtioBlkFailure, retries: Int, note: String?) -> String {
        let op = f.operation.words
        let what = f.errnoName.map { name in
            f.errnoMessage.map { "\(name) (\($0))" } ?? name
        } ?? "an error"
        let policy = f.operation == .read ? "rerror" : "werror"
        // Only werror has `enospc` (stop on ENOSPC, report the rest); it is also the default.
        let stopPolicy = "\(policy)=stop" + (f.errno == 28 && f.operation != .read ? " or enospc" : "")
        var s: String
        switch f.cause {
        case .backendError:
            switch f.guestStatus {
            case "OK"?:
                s = "the storage under QEMU failed the \(op) with \(what), but the guest was told it succeeded (\(policy)=ignore)"
            case nil where note == statusNotTracedNote:
                return "the storage under QEMU failed the \(op) with \(what); \(statusNotTracedNote)"
            case nil:
                s = "the storage under QEMU failed the \(op) with \(what); the VM paused (\(stopPolicy)) and the request was never retried"
            case let status?:
                s = "the storage under QEMU failed the \(op) with \(what); QEMU passed it to the guest as \(status) (\(Self.reportingPolicy(policy, errno: f.errno)))"
            }
        case .pausedRetried:
            let waited = f.waitedSeconds.map { String(format: " %.2f s later", $0) } ?? ""
            let stop = stopPolicy
            if f.retrySucceeded == true {
                s = "the storage under QEMU failed the \(op) with \(what); the VM paused (\(stop)) and the retry\(waited) succeeded: the guest saw no error"
            } else if let status = f.guestStatus {
                s = "the storage under QEMU failed the \(op) with \(what); the VM paused (\(stop)), \(retries) retr\(retries == 1 ? "y" : "ies") failed and the guest got \(status)"
            } else {
                s = "the storage under QEMU failed the \(op) with \(what); the VM paused (\(stop)) and \(retries == 1 ? "the retry" : "each of \(retries) retries") failed again: the guest is still waiting"
            }
        case .rejected:
            if f.guestStatus == "UNSUPP" || f.sector == nil {
                s = "QEMU rejected the request without touching storage: unsupported request type (guest got \(f.guestStatus ?? "no status"))"
            } else {
                s = "QEMU rejected the \(op) without touching storage: sector \(f.sector!)+\(f.sectors ?? 0) is out of range or not aligned to the logical block size (guest got \(f.guestStatus ?? "no status"))"
            }
        case .otherRequest:
            s = "a \(op) request failed (guest got \(f.guestStatus ?? "no status")); QEMU traces no error number for flush, discard or write-zeroes"
        }
        if let note { s += "; \(note)" }
        return s
    }

    func inFlightRecord(_ r: VirtioBlkRequestState, endNs: Int64?) -> VirtioBlkInFlightRequest {
        let state: String
        if let status = r.status {
            state = "completed (\(VirtioBlkStatus(status).name)), not returned to the guest (no virtqueue_fill)"
        } else if r.isWaitingForRetry {
            state = "waiting for a retry after a backend error (VM paused by werror/rerror=stop or enospc)"
        } else if r.lastHandleNs != nil {
            state = "submitted to storage, no completion"
        } else if r.isBlock {
            state = "handled, not completed"
        } else {
            state = "popped, not yet handled"
        }
        let start = r.popNs ?? r.firstSeenNs
        let age: Double? = start.flatMap { s in endNs.map { TraceTimestamp.decimalSeconds($0 - s) } }
        let errnoNumber = r.firstErrorRet.flatMap { $0 < 0 ? Int(-$0) : nil }
        return VirtioBlkInFlightRequest(
            device: deviceLabel(r), queue: r.vq != 0 ? Self.hex(r.vq) : nil, request: Self.hex(r.elem),
            operation: r.isBlock ? r.operation : nil, sector: r.sector, sectors: r.sectors, state: state,
            attempts: r.attempts, errno: errnoNumber,
            errnoName: r.firstErrorRet.flatMap { options.errnoTable.entry(number: $0)?.name },
            ageSeconds: age, since: start.map(TraceTimestamp.decimalSeconds),
            leaked: r.isWaitingForRetry || age.map { $0 >= options.leakAgeSeconds } ?? true)
    }

    /// The whole report. Call once, after the last event.
    public mutating func report(input: TraceReport.Input) -> TraceReport {
        // No virtqueue_fill anywhere in the trace (e.g. only `virtio_blk_*` enabled): a request
        // ends at virtio_blk_req_complete, which QEMU emits right before it pushes the status
        // to the guest (virtio_blk_req_complete() in hw/block/virtio-blk.c). Those still
        // awaiting a fill are done, in the order they completed.
        if !fillsSeen {
            fillNotTraced = true
            finalizeCompletedAwaitingFill()
        }
        // Whether the trace can show a request's end at all: a request with no end is only in
        // flight (or leaked) when the events that would have ended it were in the trace.
        let completionTraced = fillsSeen || notes.reqCompletes > 0
        // Requests still open: the block ones are in flight; a parked failure is also a failure.
        var inFlight: [VirtioBlkInFlightRequest] = []
        var inFlightTotal = 0, leaked = 0
        var perDeviceInFlight: [String: Int] = [:]
        let open = requests.states.sorted { ($0.popNs ?? $0.firstSeenNs ?? 0, $0.elem) < ($1.popNs ?? $1.firstSeenNs ?? 0, $1.elem) }
        for r in open where r.isBlock || blockQueues.contains(r.vq) {
            guard completionTraced else {
                endUntraced(r)
                continue
            }
            if r.isWaitingForRetry {
                if r.retries > 0 { counts.pausedAndRetried += 1 }
                recordFailure(r, cause: r.retries > 0 ? .pausedRetried : .backendError, guestStatus: nil,
                              retrySucceeded: r.retries > 0 ? false : nil, note: "still in flight when the trace ended")
            }
            let record = inFlightRecord(r, endNs: lastNs)
            inFlightTotal += 1
            if record.leaked { leaked += 1 }
            perDeviceInFlight[record.device, default: 0] += 1
            if inFlight.count < options.maxInFlightListed { inFlight.append(record) }
        }
        counts.inFlightAtEnd = inFlightTotal

        var deviceSummaries: [VirtioBlkDeviceSummary] = []
        for vdev in deviceOrder where blockDevices.contains(vdev) || perDeviceInFlight[Self.deviceLabel(key: vdev)] != nil {
            let d = devices[vdev] ?? DeviceCounters()
            let label = Self.deviceLabel(key: vdev)
            deviceSummaries.append(VirtioBlkDeviceSummary(
                device: label, queues: d.queues.filter { blockQueues.contains($0) }.map(Self.hex),
                completed: d.completed, failed: d.failed, inFlightAtEnd: perDeviceInFlight[label] ?? 0,
                discardedAtReset: d.discarded, driverReadyTimes: d.driverSetup.readyTimes.map(seconds)))
        }

        var latency: [String: OperationLatency] = [:]
        var totalBytes: UInt64 = 0
        for op in VirtioBlkOperation.allCases {
            guard let acc = latencies[op.latencySlot], acc.requests > 0 || acc.handleToComplete.count > 0 else { continue }
            latency[op.rawValue] = OperationLatency(requests: acc.requests, popToFill: acc.popToFill.latencySummary,
                                                    handleToComplete: acc.handleToComplete.latencySummary, bytes: acc.bytes)
            totalBytes = VirtioBlkRequestTracker.cappedSum(totalBytes, acc.bytes)
        }
        var span: TraceReport.TimeSpan?
        var throughput: TraceReport.Throughput?
        if let first = firstNs, let last = lastNs, let clock {
            let seconds = Double(last - first) / 1e9
            span = TraceReport.TimeSpan(start: TraceTimestamp.decimalSeconds(first), end: TraceTimestamp.decimalSeconds(last),
                                        seconds: TraceTimestamp.decimalSeconds(last - first), clock: clock)
            if seconds > 0, counts.completed + counts.failed > 0 {
                throughput = TraceReport.Throughput(
                    seconds: seconds, requestsPerSecond: Double(counts.completed + counts.failed) / seconds,
                    bytesPerSecond: Double(totalBytes) / seconds)
            }
        }

        return TraceReport(
            input: input, timeSpan: span, devices: deviceSummaries, requests: counts,
            failuresTotal: failuresTotal, failuresShown: failures.count, failures: failures,
            failureGroups: groupOrder.map { failureGroup($0, groups[$0]!) },
            inFlightTotal: inFlightTotal, inFlight: inFlight, leakedTotal: leaked,
            vmPauses: pauses, latency: latency, throughput: throughput,
            warnings: warnings(input.stats), coverage: TraceCoverageReport(stats: input.stats))
    }

    func warnings(_ stats: TraceReadStats) -> [String] {
        var w: [String] = []
        if notes.droppedEvents > 0 {
            w.append("QEMU dropped \(notes.droppedEvents) events (simpletrace buffer full): some requests may look incomplete")
        }
        let coverage = TraceCoverageReport(stats: stats)
        if !coverage.buses.contains(where: \.covered) {
            w.append("no disk device events in this trace: enable them with "
                + TraceCoverage.qemuOptions(for: [.virtioBlk, .virtioScsi])
                + " (or at run time: HMP `trace-event NAME on`, QMP trace-event-set-state)")
        } else if notes.blockEvents > 0 && notes.pops == 0 {
            w.append("virtqueue_pop/virtqueue_fill not traced: requests are seen from handle to req_complete only (add "
                + TraceCoverage.virtqueuePatterns.map { "-trace \($0)" }.joined(separator: " ") + ")")
        }
        if counts.outcomeUnknown > 0 {
            w.append("\(counts.outcomeUnknown) virtio-blk requests have no end in the trace, which holds neither virtio_blk_req_complete nor virtqueue_fill: "
                + "whether they completed is unknown (enable \(TraceCoverage.qemuOptions(for: [.virtioBlk])))")
        }
        for bus in [TraceBus.nvme, .ideAhci] {
            if let b = coverage.bus(bus), b.covered {
                w.append("\(b.events) \(bus.words) events: \(bus.words) requests are detected, not analysed")
            }
        }
        if notes.eventsWithoutTime > 0 && firstNs == nil {
            w.append("the trace has no timestamps (QEMU's -msg timestamp=on adds them): no latency or ages")
        }
        if legacyOffset != 0 {
            w.append("old qemu-kvm request layout: req pointers are elem - 8")
        }
        if notes.fillsWithoutPop > 0 {
            w.append("\(notes.fillsWithoutPop) virtqueue_fill for elements never popped in this trace (it started mid-request)")
        }
        if notes.untrackedPops > 0 {
            w.append("\(notes.untrackedPops) popped elements were not tracked: over \(Self.maxTrackedElements) open at once (virtqueue_fill not traced?)")
        }
        if notes.timeWentBack > 0 {
            w.append("timestamps went backwards \(notes.timeWentBack) times (events from several threads, or a wall-clock step)")
        }
        if stats.malformedEvents > 0 {
            let names = stats.malformedEventNames.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(3).map { "\($0.key) \($0.value)" }
            w.append("\(stats.malformedEvents) events did not match their definition (\(names.joined(separator: ", "))): wrong --events file for this QEMU?")
        }
        return w
    }
}

extension VirtioBlkOperation {
    /// Its place in `VirtioBlkRequestTracker.latencies` (its place in `allCases`).
    var latencySlot: Int {
        switch self {
        case .read: 0
        case .write: 1
        case .flush: 2
        case .discardOrWriteZeroes: 3
        case .other: 4
        case .flushOrOther: 5
        case .readOrWrite: 6
        }
    }
}
