/// How each event changes the requests in flight.
extension VirtioBlkRequestTracker {
    /// A virtio_blk event named the request at `i`: it, its queue and its device are block
    /// ones. (By position, not `inout`: the sets it updates belong to `self` too.)
    mutating func markBlock(at i: Int, vdev: UInt64) {
        if vdev != 0 && requests[i].vdev != vdev {
            requests[i].vdev = vdev
            learn(vq: requests[i].vq, vdev: vdev)
            blockDevices.insert(vdev)
        }
        if !requests[i].isBlock {
            requests[i].isBlock = true
            let vq = requests[i].vq
            if vq != 0 { blockQueues.insert(vq) }
            if requests[i].vdev == 0, let known = vqToVdev[vq] { requests[i].vdev = known; blockDevices.insert(known) }
        }
    }

    mutating func learn(vq: UInt64, vdev: UInt64) {
        guard vq != 0, vdev != 0 else { return }
        if vqToVdev[vq] == nil {
            vqToVdev[vq] = vdev
            self[device: vdev].queues.append(vq)
        }
    }

    subscript(device vdev: UInt64) -> DeviceCounters {
        get { devices[vdev] ?? DeviceCounters() }
        set {
            if devices[vdev] == nil { deviceOrder.append(vdev) }
            devices[vdev] = newValue
        }
    }

    /// `self[device: vdev]` changed in place: the subscript copies the counters (and their
    /// queue list) out and back, which was a fifth of finishing each request.
    mutating func updateDevice(_ vdev: UInt64, _ change: (inout DeviceCounters) -> Void) {
        if let i = devices.index(forKey: vdev) {
            change(&devices.values[i])
        } else {
            var counters = DeviceCounters()
            change(&counters)
            self[device: vdev] = counters
        }
    }

    /// The request `req` names: itself, or (old qemu-kvm) the element 8 bytes further.
    mutating func index(ofRequest req: UInt64, legacy: Bool) -> Int? {
        if legacyOffset == 0, let i = requests.find(req) { return i }
        if legacy {
            if let i = requests.find(req &+ 8) { legacyOffset = 8; return i }
            if legacyOffset != 0, let i = requests.find(req) { return i }
        }
        return nil
    }

    /// The request `req` names, created when the trace shows it for the first time here
    /// (pop not traced, or the trace started mid-request).
    mutating func requestIndex(_ req: UInt64, legacy: Bool, at t: Int64?) -> Int {
        if let i = index(ofRequest: req, legacy: legacy) {
            // A request that already has its status is over: an event on its pointer belongs to
            // the next request QEMU put there. Without virtqueue_fill in the trace nothing else
            // ends it, and overwriting it would lose a completion.
            guard requests[i].status != nil else { return i }
            let done = requests.remove(at: i)
            finalize(done, at: done.statusNs)
            return requestIndex(req, legacy: legacy, at: t)
        }
        let key = legacy ? req &+ legacyOffset : req
        return requests.insert(VirtioBlkRequestState(elem: key, at: t))
    }

    mutating func pop(vq: UInt64, elem: UInt64, inNum: UInt32, outNum: UInt32, at t: Int64?) {
        if let i = requests.find(elem) {
            // The pointer is back while we still hold it: its completion was not traced.
            finalize(requests.remove(at: i), at: t)
        }
        // Shedding walks every open element; when they are all block requests it frees
        // nothing, and doing it on every pop at the limit made a trace with 100 000 requests
        // in flight quadratic (160 000 never-completed writes: minutes). At most once per
        // eighth of the limit in pops, so each pop pays a bounded share of it.
        if requests.count >= Self.maxTrackedElements, popsSinceShed >= Self.maxTrackedElements / 8 {
            shedUntrackableElements()
            popsSinceShed = 0
        }
        if popsSinceShed < Self.maxTrackedElements / 8 { popsSinceShed += 1 }
        if requests.count >= Self.maxTrackedElements { notes.untrackedPops += 1; return }
        var r = VirtioBlkRequestState(elem: elem, at: t)
        r.vq = vq
        r.vdev = vqToVdev[vq] ?? 0
        r.popNs = t
        r.inNum = inNum
        r.outNum = outNum
        requests.insert(r)
    }

    /// A virtqueue holds at most 1024 elements, so this many open elements means fills are
    /// not in the trace (or another device never returns its buffers): memory must stay bounded.
    static let maxTrackedElements = 100_000

    /// Forgets popped elements no virtio_blk event ever named and that sit on no block queue.
    mutating func shedUntrackableElements() {
        let before = requests.count
        shedPasses += 1
        let blockQueues = blockQueues
        requests.removeAll { !($0.isBlock || blockQueues.contains($0.vq)) }
        notes.otherVirtioElements += before - requests.count
    }

    mutating func handle(_ op: VirtioBlkOperation, vdev: UInt64, req: UInt64, legacy: Bool,
                         sector: UInt64, sectors: UInt64, at t: Int64?) {
        var i = requestIndex(req, legacy: legacy, at: t)
        if requests[i].status != nil {
            // Completed and not filled, now handled again: a new request on a reused pointer.
            let old = requests.remove(at: i)
            finalize(old, at: t)
            i = requestIndex(req, legacy: legacy, at: t)
        }
        if requests[i].status == nil, let ret = requests[i].lastRet, requests[i].lastHandleNs == nil,
           notes.pops == 0, ret >= 0 || !(notes.reqCompletes > 0 || fillsSeen || pausesTotal > 0) {
            // Storage answered and the pointer is submitted again with no status in between
            // (and no virtqueue_pop traced, which would have shown a new request):
            // QEMU only resubmits a request after a VM stop (werror/rerror=stop, enospc:
            // virtio_blk_handle_rw_error() in hw/block/virtio-blk.c), which shows in a trace
            // with completions or runstate_set. Here the old request ended untraced (its
            // virtio_blk_req_complete is not in the trace) and this is a new one.
            let old = requests.remove(at: i)
            endUntraced(old)
            i = requestIndex(req, legacy: legacy, at: t)
        }
        markBlock(at: i, vdev: vdev)
        requests.update(at: i) { r in
            if r.isWaitingForRetry {
                r.retries += 1
                // Timestamps are valid (non-negative), so the difference fits; the sum of a hostile
                // trace's jumps might not: it stops at Int64.max ns (292 years) instead of trapping.
                if let failedAt = r.lastRwNs, let t, t > failedAt {
                    let (sum, overflow) = r.waitedNs.addingReportingOverflow(t - failedAt)
                    r.waitedNs = overflow ? .max : sum
                }
            }
            r.attempts += 1
            r.handled = op
            r.sector = sector
            // QEMU traces nsectors = qiov.size >> BDRV_SECTOR_BITS (virtio_blk_handle_read/write,
            // hw/block/virtio-blk.c) with a size_t size: more than 2^55 - 1 sectors is no request
            // size, and the byte count must not wrap. Such a count is unknown.
            r.sectors = sectors <= UInt64.max >> 9 ? sectors : nil
            r.lastHandleNs = t
        }
    }

    /// A request whose end is not in the trace (no req_complete or fill traced): neither
    /// completed nor in flight; a storage error it had is still a failure.
    mutating func endUntraced(_ r: VirtioBlkRequestState) {
        if r.awaitingFill { completedAwaitingFill -= 1 }
        counts.outcomeUnknown += 1
        if r.firstErrorRet != nil {
            recordFailure(r, cause: .backendError, guestStatus: nil, retrySucceeded: nil, note: Self.statusNotTracedNote)
        }
    }

    mutating func rwComplete(vdev: UInt64, req: UInt64, legacy: Bool, ret: Int64, at t: Int64?) {
        let i = requestIndex(req, legacy: legacy, at: t)
        markBlock(at: i, vdev: vdev)
        if requests[i].handled == nil && requests[i].attempts == 0 {
            requests[i].attempts = 1
            requests[i].legacyUnhandledRead = legacy
        }
        let request = requests[i]
        if let h = request.lastHandleNs, let t, request.handled != nil || request.legacyUnhandledRead {
            updateLatency(request.operation) { $0.handleToComplete.add(UInt64(max(t - h, 0))) }
        }
        requests.update(at: i) { r in
            r.lastHandleNs = nil
            r.lastRet = ret
            r.lastRwNs = t
            if ret < 0 && r.firstErrorRet == nil {
                r.firstErrorRet = ret
                r.firstErrorNs = t
            }
        }
    }

    mutating func reqComplete(vdev: UInt64, req: UInt64, legacy: Bool, status: Int64, at t: Int64?) {
        let i = requestIndex(req, legacy: legacy, at: t)
        markBlock(at: i, vdev: vdev)
        requests.update(at: i) { r in
            r.status = status
            r.statusNs = t
        }
        notes.reqCompletes += 1
        if fillNotTraced {
            finalize(requests.remove(at: i), at: t)
            return
        }
        if !requests[i].awaitingFill {
            requests[i].awaitingFill = true
            completedAwaitingFill += 1
        }
        // Without virtqueue_fill in the trace, completed requests would wait forever: after
        // enough of them and no fill at all, complete requests at req_complete instead.
        if !fillsSeen && completedAwaitingFill > 4096 {
            fillNotTraced = true
            finalizeCompletedAwaitingFill()
        }
    }

    /// Finalizes every request that has its status, in the order they completed (then by
    /// pointer): what a trace without virtqueue_fill shows as their end.
    mutating func finalizeCompletedAwaitingFill() {
        let done = requests.states.filter { $0.status != nil }
        for r in done.sorted(by: { ($0.statusNs ?? 0, $0.elem) < ($1.statusNs ?? 0, $1.elem) }) {
            requests.removeValue(forKey: r.elem)
            finalize(r, at: r.statusNs)
        }
    }

    /// A request's place in a stable order: when it was popped (or first seen), then its key.
    static func popOrder(_ r: VirtioBlkRequestState, _ key: UInt64) -> (Int64, UInt64) {
        (r.popNs ?? r.firstSeenNs ?? 0, key)
    }

    mutating func fill(elem: UInt64, at t: Int64?) {
        fillsSeen = true
        guard let i = requests.find(elem) else { notes.fillsWithoutPop += 1; return }
        var r = requests.remove(at: i)
        r.fillNs = t
        finalize(r, at: t)
    }

    mutating func reset(vdev: UInt64, at t: Int64?) {
        notes.resets += 1
        // In pop order, not the Dictionary's: its order changes from one instance to the
        // next, and the failures recorded here must come out the same on every run.
        let outstanding = requests.states.filter { r in
            r.vdev == vdev || (r.vq != 0 && vqToVdev[r.vq] == vdev)
        }.sorted { Self.popOrder($0, $0.elem) < Self.popOrder($1, $1.elem) }
        for r in outstanding {
            requests.removeValue(forKey: r.elem)
            guard r.isBlock || blockQueues.contains(r.vq) else {
                notes.otherVirtioElements += 1          // another virtio device's buffer
                continue
            }
            if r.status != nil {
                finalize(r, at: t)              // completed; its fill is just not in the trace
                continue
            }
            counts.discardedAtReset += 1
            self[device: vdev].discarded += 1
            if r.isWaitingForRetry {
                recordFailure(r, cause: r.retries > 0 ? .pausedRetried : .backendError,
                              guestStatus: nil, retrySucceeded: r.retries > 0 ? false : nil,
                              note: "discarded by a device reset while waiting for a retry")
            }
        }
    }

    mutating func runstate(_ name: String, at t: Int64?) {
        if name == "io-error" {
            guard pausedSinceNs == nil else { return }
            pausedSinceNs = t ?? lastNs ?? 0
            pausesTotal += 1
            if pauses.count < options.maxInFlightListed {
                pauses.append(VMPause(start: seconds(t), end: nil, seconds: nil, reason: "io-error"))
            }
            if onNotice != nil {
                let waiting = requests.states.filter { $0.isWaitingForRetry }
                    .sorted { Self.popOrder($0, $0.elem) < Self.popOrder($1, $1.elem) }
                    .map { inFlightRecord($0, endNs: t) }
                onNotice?(.vmPaused(at: t.map(seconds), waiting: waiting))
            }
        } else if let since = pausedSinceNs, name != "paused", name != "io-error" {
            pausedSinceNs = nil
            let duration = t.map { TraceTimestamp.decimalSeconds($0 - since) }
            if pauses.count == pausesTotal, var last = pauses.popLast() {
                last.end = t.map(seconds)
                last.seconds = duration
                pauses.append(last)
            }
            onNotice?(.vmResumed(at: t.map(seconds), pausedSeconds: duration))
        }
    }
}
