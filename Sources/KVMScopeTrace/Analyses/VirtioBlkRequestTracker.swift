/// Rebuilds every virtio-blk request from QEMU's trace events, streaming, in memory bounded by
/// the requests in flight:
///
///     virtqueue_pop(vq, elem)                 the guest handed a request to QEMU
///     virtio_blk_handle_read/write(req, …)    QEMU submits it to storage (again after `cont`)
///     virtio_blk_rw_complete(req, ret)        storage answered: 0 or -errno
///     virtio_blk_req_complete(req, status)    status sent to the guest: 0 OK, 1 IOERR, 2 UNSUPP
///     virtqueue_fill(vq, elem)                returned to the guest
///
/// Requests are keyed the way QEMU keys them: by element pointer, which is the `req` pointer
/// in current QEMU (VirtIOBlockReq starts with its VirtQueueElement) and `req + 8` in old
/// qemu-kvm; pointers are reused as soon as a request completes. `virtio_set_status … val 0`
/// (device reset) discards what is outstanding on that device; `runstate_set … (io-error)`
/// marks the VM stops of werror/rerror=stop and enospc.
public struct VirtioBlkRequestTracker {
    public struct Options: Sendable {
        /// Failures kept in detail; the total and the groups stay exact.
        public var maxFailuresKept = 1000
        public var maxInFlightListed = 1000
        /// A request still in flight at the end of the trace counts as leaked when older than this.
        public var leakAgeSeconds = 1.0
        public var errnoTable = ErrnoTable.standard
        public init() {}
    }

    /// Things worth telling a `--follow` user the moment they happen.
    public enum Notice {
        case failure(VirtioBlkFailure)
        /// The VM stopped on an I/O error; `waiting` are the requests QEMU parked for a retry.
        case vmPaused(at: Double?, waiting: [VirtioBlkInFlightRequest])
        case vmResumed(at: Double?, pausedSeconds: Double?)
    }

    /// Every event the tracker reads (all QEMU signatures of each name are understood).
    public static let eventNames: Set<String> = [
        "virtqueue_pop", "virtqueue_fill", "virtio_blk_handle_read", "virtio_blk_handle_write",
        "virtio_blk_rw_complete", "virtio_blk_req_complete", "virtio_set_status",
        "virtio_queue_notify", "runstate_set",
    ]

    /// Distinct virtio devices remembered for their status writes alone.
    static let maxDevicesRemembered = 4096

    enum Role { case pop, fill, handleRead, handleWrite, rwComplete, reqComplete, setStatus, queueNotify, runstate }

    /// Where a definition keeps the arguments its role needs (-1: absent).
    struct Binding {
        var role: Role
        var vdev = -1, req = -1, vq = -1, elem = -1, sector = -1, nsectors = -1
        var value = -1, inNum = -1, outNum = -1, stateName = -1
        /// No `vdev` argument: QEMU before 2.10, where old qemu-kvm's `req` is `elem - 8`.
        var legacy = false
    }

    public var options: Options
    public var onNotice: ((Notice) -> Void)?

    let bindings: [Binding?]
    var requests = VirtioBlkRequestTable()
    var vqToVdev: [UInt64: UInt64] = [:]
    /// Queues and devices named by virtio_blk events (other virtio devices share pop/fill).
    var blockQueues: Set<UInt64> = []
    var blockDevices: Set<UInt64> = []
    /// The last members `finalize` added to those sets: most requests are on the queue and
    /// device of the one before, and a compare is cheaper than hashing them into the set again.
    var lastBlockQueue: UInt64 = 0, lastBlockDevice: UInt64 = 0
    var devices: [UInt64: DeviceCounters] = [:]
    var deviceOrder: [UInt64] = []
    var firstNs: Int64?
    var lastNs: Int64?
    var clock: TraceClock?
    var fillsSeen = false
    var completedAwaitingFill = 0
    var fillNotTraced = false
    /// 0 or 8: learned when an old qemu-kvm `req` matches `elem - 8`.
    var legacyOffset: UInt64 = 0

    var counts = TraceReport.Requests()
    var failuresTotal = 0
    var failures: [VirtioBlkFailure] = []
    var groups: [GroupKey: GroupCounter] = [:]
    var groupOrder: [GroupKey] = []
    var pauses: [VMPause] = []
    var pausesTotal = 0
    var pausedSinceNs: Int64?
    /// By `latencySlot`; nil until a request of that operation is timed (each accumulator
    /// holds histograms: made only for operations the trace has).
    var latencies = [OperationAccumulator?](repeating: nil, count: VirtioBlkOperation.allCases.count)
    var notes = Notes()
    /// Pops since the open elements were last searched for ones to shed (see `pop`).
    var popsSinceShed = VirtioBlkRequestTracker.maxTrackedElements / 8
    /// Times the open elements were searched (for the test that keeps it bounded).
    var shedPasses = 0

    struct DeviceCounters {
        var queues: [UInt64] = []
        var completed = 0, failed = 0, discarded = 0
        var driverSetup = VirtioDriverSetup()
    }

    struct GroupKey: Hashable {
        var device: UInt64, operation: VirtioBlkOperation, cause: VirtioBlkFailureCause
        var errno: Int64?, guestStatus: String?, retrySucceeded: Bool?
    }

    /// a + b, or UInt64.max when that does not fit (16 EiB of traced bytes, a sector range
    /// reaching 2^64): a hostile trace's totals stop there instead of wrapping to small numbers.
    static func cappedSum(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? .max : sum
    }

    struct GroupCounter {
        var count = 0
        var firstNs: Int64?, lastNs: Int64?
        var sectorMin: UInt64?, sectorEnd: UInt64?

        mutating func add(timeNs: Int64?, sector: UInt64?, sectors: UInt64?) {
            count += 1
            if firstNs == nil { firstNs = timeNs }
            if let timeNs { lastNs = timeNs }
            if let s = sector {
                sectorMin = min(sectorMin ?? s, s)
                // No sector lies at or past 2^64: a range reaching there ends at UInt64.max.
                sectorEnd = max(sectorEnd ?? 0, VirtioBlkRequestTracker.cappedSum(s, sectors ?? 0))
            }
        }
    }

    struct OperationAccumulator {
        var requests = 0
        var bytes: UInt64 = 0
        var popToFill = LatencyAccumulator()
        var handleToComplete = LatencyAccumulator()

        mutating func note(popToFill ns: Int64?, bytes b: UInt64) {
            requests += 1
            bytes = VirtioBlkRequestTracker.cappedSum(bytes, b)
            if let ns { popToFill.add(UInt64(max(ns, 0))) }
        }
    }

    struct Notes {
        var droppedEvents: UInt64 = 0
        var pops = 0, fills = 0, blockEvents = 0, resets = 0
        var fillsWithoutPop = 0
        var otherVirtioElements = 0
        var eventsWithoutTime = 0
        var timeWentBack = 0
        var endedWithoutStatus = 0
        var untrackedPops = 0
        var reqCompletes = 0
    }

    public init(catalog: TraceEventCatalog, options: Options = Options()) {
        self.options = options
        bindings = catalog.definitions.map(Self.binding)
    }

    static func binding(_ d: TraceEventDefinition) -> Binding? {
        func at(_ n: String) -> Int { d.argumentIndex(n) ?? -1 }
        let role: Role
        switch d.name {
        case "virtqueue_pop": role = .pop
        case "virtqueue_fill": role = .fill
        case "virtio_blk_handle_read": role = .handleRead
        case "virtio_blk_handle_write": role = .handleWrite
        case "virtio_blk_rw_complete": role = .rwComplete
        case "virtio_blk_req_complete": role = .reqComplete
        case "virtio_set_status": role = .setStatus
        case "virtio_queue_notify": role = .queueNotify
        case "runstate_set": role = .runstate
        default: return nil
        }
        var b = Binding(role: role)
        b.vdev = at("vdev"); b.req = at("req"); b.vq = at("vq"); b.elem = at("elem")
        b.sector = at("sector"); b.nsectors = at("nsectors")
        b.inNum = at("in_num"); b.outNum = at("out_num")
        switch role {
        case .rwComplete: b.value = at("ret")
        case .reqComplete: b.value = at("status")
        case .setStatus: b.value = at("val")
        case .runstate: b.value = at("new_state"); b.stateName = at("new_state_str")
        default: break
        }
        b.legacy = b.vdev < 0
        // A definition missing what its role needs is not one the tracker understands.
        switch role {
        case .pop, .fill: if b.vq < 0 || b.elem < 0 { return nil }
        case .handleRead, .handleWrite: if b.req < 0 || b.sector < 0 || b.nsectors < 0 { return nil }
        case .rwComplete, .reqComplete: if b.req < 0 || b.value < 0 { return nil }
        case .setStatus: if b.vdev < 0 || b.value < 0 { return nil }
        case .queueNotify: if b.vdev < 0 || b.vq < 0 { return nil }
        case .runstate: if b.value < 0 { return nil }
        }
        return b
    }

    // MARK: - Events

    public mutating func consume(_ event: TraceEvent) {
        let id = event.definition.id
        if id < 0 {
            if event.definition === TraceEventDefinition.droppedEvents { notes.droppedEvents = Self.cappedSum(notes.droppedEvents, event.bits[0]) }
            return
        }
        guard id < bindings.count, let b = bindings[id] else { return }
        let t = event.timestamp?.nanoseconds
        if let t {
            if firstNs == nil { firstNs = t; clock = event.timestamp?.clock }
            if let last = lastNs, t < last { notes.timeWentBack += 1 }
            lastNs = max(lastNs ?? t, t)
        } else {
            notes.eventsWithoutTime += 1
        }
        switch b.role {
        case .pop:
            notes.pops += 1
            pop(vq: event.unsigned(b.vq), elem: event.unsigned(b.elem),
                inNum: b.inNum >= 0 ? UInt32(truncatingIfNeeded: event.unsigned(b.inNum)) : .max,
                outNum: b.outNum >= 0 ? UInt32(truncatingIfNeeded: event.unsigned(b.outNum)) : .max, at: t)
        case .fill:
            notes.fills += 1
            fill(elem: event.unsigned(b.elem), at: t)
        case .handleRead, .handleWrite:
            notes.blockEvents += 1
            handle(b.role == .handleRead ? .read : .write, vdev: b.vdev >= 0 ? event.unsigned(b.vdev) : 0,
                   req: event.unsigned(b.req), legacy: b.legacy,
                   sector: event.unsigned(b.sector), sectors: event.unsigned(b.nsectors), at: t)
        case .rwComplete:
            notes.blockEvents += 1
            rwComplete(vdev: b.vdev >= 0 ? event.unsigned(b.vdev) : 0, req: event.unsigned(b.req),
                       legacy: b.legacy, ret: event.signed(b.value), at: t)
        case .reqComplete:
            notes.blockEvents += 1
            reqComplete(vdev: b.vdev >= 0 ? event.unsigned(b.vdev) : 0, req: event.unsigned(b.req),
                        legacy: b.legacy, status: event.signed(b.value), at: t)
        case .setStatus:
            let vdev = event.unsigned(b.vdev), value = event.unsigned(b.value)
            if value == 0 { reset(vdev: vdev, at: t) }
            // Every virtio device's status is traced; a hostile trace could name endless
            // devices, so a new one is only remembered while there are few.
            if devices[vdev] != nil || devices.count < Self.maxDevicesRemembered {
                self[device: vdev].driverSetup.status(value, at: t)
            }
        case .queueNotify:
            learn(vq: event.unsigned(b.vq), vdev: event.unsigned(b.vdev))
        case .runstate:
            let name = b.stateName >= 0 ? (event.string(b.stateName) ?? "") : Self.runStateName(event.signed(b.value))
            runstate(name, at: t)
        }
    }

    /// Another analysis's event: it still counts for the trace's time span.
    public mutating func noteTime(_ timestamp: TraceTimestamp?) {
        guard let timestamp else { return }
        let t = timestamp.nanoseconds
        if firstNs == nil { firstNs = t; clock = timestamp.clock }
        lastNs = max(lastNs ?? t, t)
    }

    /// QEMU's RunState numbering (qapi/run-state.json; stable, new states appended), for the
    /// old `runstate_set(int new_state)` that printed only the number.
    static func runStateName(_ n: Int64) -> String {
        let names = ["debug", "inmigrate", "internal-error", "io-error", "paused", "postmigrate",
                     "prelaunch", "finish-migrate", "restore-vm", "running", "save-vm", "shutdown",
                     "suspended", "watchdog", "guest-panicked", "colo"]
        return n >= 0 && n < names.count ? names[Int(n)] : "state \(n)"
    }

    func seconds(_ ns: Int64?) -> Double { TraceTimestamp.decimalSeconds(ns ?? 0) }
}
