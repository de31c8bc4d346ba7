/// What the tracker knows about one request while it is in flight. Times in trace
/// nanoseconds (nil when the trace has no timestamps).
struct VirtioBlkRequestState {
    /// The key: the VirtQueueElement pointer (`elem`, which is `req` in current QEMU).
    var elem: UInt64
    var vq: UInt64 = 0
    var vdev: UInt64 = 0
    var firstSeenNs: Int64?
    var popNs: Int64?
    var inNum: UInt32 = .max
    var outNum: UInt32 = .max
    var handled: VirtioBlkOperation?
    var sector: UInt64?
    var sectors: UInt64?
    var lastHandleNs: Int64?
    /// Submissions to storage (handle_read/write, or rw_complete when handle is not traced).
    var attempts = 0
    var retries = 0
    var waitedNs: Int64 = 0
    var lastRet: Int64?
    var lastRwNs: Int64?
    var firstErrorRet: Int64?
    var firstErrorNs: Int64?
    var status: Int64?
    var statusNs: Int64?
    var fillNs: Int64?
    /// A virtio_blk_* event named it: this element is a block request.
    var isBlock = false
    /// Counted in the tracker's `completedAwaitingFill`.
    var awaitingFill = false
    /// Old qemu-kvm: rw_complete without handle (reads were not traced).
    var legacyUnhandledRead = false

    init(elem: UInt64, at ns: Int64?) {
        self.elem = elem
        firstSeenNs = ns
    }

    /// Failed in storage, no status sent yet: QEMU parked it (werror/rerror=stop, enospc).
    var isWaitingForRetry: Bool { (lastRet ?? 0) < 0 && status == nil }

    var operation: VirtioBlkOperation {
        if let handled { return handled }
        if legacyUnhandledRead { return .read }
        if attempts > 0 {                       // rw_complete seen without handle: read or write
            if outNum != .max { return outNum > 1 ? .write : .read }
            return .readOrWrite
        }
        if inNum != .max && outNum != .max {
            if inNum == 1 && outNum == 1 { return .flush }
            return inNum == 1 ? .discardOrWriteZeroes : .other
        }
        return .flushOrOther
    }
}
