/// What a virtio-blk request asked for. QEMU traces reads and writes (`virtio_blk_handle_read/
/// write`) but not flushes, discards, write-zeroes or get-id; those are told apart by the
/// descriptor counts `virtqueue_pop` printed when it was traced: a flush carries only the
/// header and the status byte (out 1, in 1); discard and write-zeroes send a segment list
/// (out 2, in 1); get-id and the rest receive data (in 2 or more).
public enum VirtioBlkOperation: String, Sendable, Codable, CaseIterable {
    case read
    case write
    case flush
    case discardOrWriteZeroes = "discard-or-write-zeroes"
    /// get-id (or another request type that only receives data).
    case other
    /// Not a read or write, and the trace cannot tell which (virtqueue_pop not traced).
    case flushOrOther = "flush-or-other"
    /// Storage completion seen without its handle_read/write (the trace started mid-request).
    case readOrWrite = "read-or-write"

    public var words: String {
        switch self {
        case .read: return "read"
        case .write: return "write"
        case .flush: return "flush"
        case .discardOrWriteZeroes: return "discard or write-zeroes"
        case .other: return "get-id or other"
        case .flushOrOther: return "flush or other"
        case .readOrWrite: return "read or write"
        }
    }
}

/// The status byte virtio-blk returns to the guest (VIRTIO_BLK_S_*).
enum VirtioBlkStatus: Sendable, Hashable {
    case ok, ioError, unsupported
    case other(Int64)

    public init(_ value: Int64) {
        switch value {
        case 0: self = .ok
        case 1: self = .ioError
        case 2: self = .unsupported
        default: self = .other(value)
        }
    }

    /// `OK`, `IOERR`, `UNSUPP`, or `STATUS n`.
    public var name: String {
        switch self {
        case .ok: return "OK"
        case .ioError: return "IOERR"
        case .unsupported: return "UNSUPP"
        case let .other(v): return "STATUS \(v)"
        }
    }
}

/// Why a request failed.
public enum VirtioBlkFailureCause: String, Sendable, Codable {
    /// `virtio_blk_rw_complete` with a negative ret: the storage under QEMU failed.
    case backendError = "backend-error"
    /// Non-zero status without any storage access: QEMU refused the request itself
    /// (sector out of range or misaligned, size not a multiple of the logical block size,
    /// unsupported request type).
    case rejected
    /// A flush, discard, write-zeroes or get-id failed (QEMU does not trace their storage access).
    case otherRequest = "other-request"
    /// The storage failed, the VM paused (werror/rerror=stop, or enospc) and the same request
    /// was submitted again after `cont`.
    case pausedRetried = "paused-retried"
}

/// One failed request, as reported in `failures[]`.
public struct VirtioBlkFailure: Sendable, Equatable, Codable {
    /// The virtio device (`vdev` pointer), or `vq:0x…` when the trace has no vdev (old QEMU).
    public var device: String
    /// The virtqueue pointer, when `virtqueue_pop` was traced.
    @NullEncoded public var queue: String? = nil
    /// The request pointer (`req` = `elem` in current QEMU).
    public var request: String
    public var operation: VirtioBlkOperation
    @NullEncoded public var sector: UInt64? = nil
    @NullEncoded public var sectors: UInt64? = nil
    /// Positive errno from the storage backend (ret -5 → 5), or nil when none was reported.
    @NullEncoded public var errno: Int? = nil
    @NullEncoded public var errnoName: String? = nil
    @NullEncoded public var errnoMessage: String? = nil
    /// What the guest was told: `IOERR`, `UNSUPP`, `OK` (error ignored, or retry succeeded),
    /// or nil when no status was ever sent.
    @NullEncoded public var guestStatus: String? = nil
    public var cause: VirtioBlkFailureCause
    /// For `paused-retried`: whether the last retry succeeded.
    @NullEncoded public var retrySucceeded: Bool? = nil
    /// How many times QEMU submitted the request to storage.
    public var attempts: Int
    /// For `paused-retried`: time between the failure and the retry, summed over retries.
    @NullEncoded public var waitedSeconds: Double? = nil
    /// When the failure happened (seconds, in the trace's clock), and since the trace started.
    @NullEncoded public var time: Double? = nil
    @NullEncoded public var sinceStart: Double? = nil
    /// One sentence for people.
    public var explanation: String

    enum CodingKeys: String, CodingKey {
        case device, queue, request, operation, sector, sectors, errno, errnoName, errnoMessage, guestStatus, cause
        case retrySucceeded, attempts, waitedSeconds, time, sinceStart = "sinceStartSeconds", explanation
    }
}

/// A request popped (or handled) and never returned to the guest by the end of the trace.
public struct VirtioBlkInFlightRequest: Sendable, Equatable, Codable {
    public var device: String
    @NullEncoded public var queue: String? = nil
    public var request: String
    @NullEncoded public var operation: VirtioBlkOperation? = nil
    @NullEncoded public var sector: UInt64? = nil
    @NullEncoded public var sectors: UInt64? = nil
    /// `popped, not yet handled`, `submitted to storage`, `waiting for retry after a backend
    /// error (VM paused)`, `completed, not yet returned to the guest`.
    public var state: String
    public var attempts: Int
    @NullEncoded public var errno: Int? = nil
    @NullEncoded public var errnoName: String? = nil
    /// Seconds from pop (or first sight) to the end of the trace; nil without timestamps.
    @NullEncoded public var ageSeconds: Double? = nil
    @NullEncoded public var since: Double? = nil
    /// Counted as a leak: older than the threshold, or waiting on a paused VM.
    public var leaked: Bool

    enum CodingKeys: String, CodingKey {
        case device, queue, request, operation, sector, sectors, state, attempts, errno, errnoName, ageSeconds
        case since = "sinceTime", leaked
    }
}

/// Identical failures, counted exactly however many there are.
public struct VirtioBlkFailureGroup: Sendable, Equatable, Codable {
    public var device: String
    public var operation: VirtioBlkOperation
    public var cause: VirtioBlkFailureCause
    @NullEncoded public var errno: Int? = nil
    @NullEncoded public var errnoName: String? = nil
    @NullEncoded public var guestStatus: String? = nil
    @NullEncoded public var retrySucceeded: Bool? = nil
    public var count: Int
    @NullEncoded public var firstTime: Double? = nil
    @NullEncoded public var lastTime: Double? = nil
    /// Lowest sector and highest sector+length of the group.
    @NullEncoded public var sectorMin: UInt64? = nil
    @NullEncoded public var sectorEnd: UInt64? = nil
}

/// Latency of one kind for one operation. Times in microseconds; percentiles from an HDR
/// histogram (3 significant digits), count/min/max/mean/stddev exact.
public struct LatencySummary: Sendable, Equatable, Codable {
    public var count: Int
    public var minUs: Double
    public var meanUs: Double
    public var maxUs: Double
    public var stddevUs: Double
    public var p50Us: Double
    public var p90Us: Double
    public var p99Us: Double
    public var p999Us: Double
}

/// Latency and volume of one operation.
public struct OperationLatency: Sendable, Equatable, Codable {
    /// Requests returned to the guest (any status).
    public var requests: Int
    /// Guest-visible: virtqueue_pop → virtqueue_fill (or req_complete when fill is not traced).
    @NullEncoded public var popToFill: LatencySummary? = nil
    /// Storage: virtio_blk_handle_read/write → virtio_blk_rw_complete, per submission.
    @NullEncoded public var handleToComplete: LatencySummary? = nil
    /// Bytes moved by successful requests.
    public var bytes: UInt64
}

/// Per virtio device.
public struct VirtioBlkDeviceSummary: Sendable, Equatable, Codable {
    public var device: String
    public var queues: [String]
    public var completed: Int
    public var failed: Int
    public var inFlightAtEnd: Int
    public var discardedAtReset: Int
    /// When a Linux guest's virtio driver finished setting the device up (first 64): the
    /// moment it logs the disk (`virtio_blk virtioN: [vda] … logical blocks`), which lets
    /// `explain` place the guest's uptime on the host's clock without any failed request.
    public var driverReadyTimes: [Double] = []
}

/// A VM stop seen in the trace (`runstate_set … new_state … (io-error)`).
public struct VMPause: Sendable, Equatable, Codable {
    public var start: Double
    @NullEncoded public var end: Double? = nil
    @NullEncoded public var seconds: Double? = nil
    public var reason: String

    enum CodingKeys: String, CodingKey { case start = "startTime", end = "endTime", seconds, reason }
}
