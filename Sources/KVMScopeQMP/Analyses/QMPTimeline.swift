/// What a QMP event stream says about disk errors: every BLOCK_IO_ERROR, and every pause the
/// VM took because of one (werror/rerror=stop or enospc), with how long it lasted and whether
/// the retried request failed again.
///
/// QMP's STOP and RESUME carry no reason; a STOP is an I/O-error pause when a BLOCK_IO_ERROR
/// with `action: stop` came just before it (QEMU emits the error, then stops the VM).
public struct QMPTimeline: Sendable, Encodable {
    enum CodingKeys: String, CodingKey {
        case ioErrors, pauses, otherEvents, ioErrorsTotal, pausesTotal, otherEventsTotal, detailLimit, skippedLines, badTimestamps
        case eventsTotal, firstEventTime, lastEventTime, runStateAtEnd
    }

    /// What the VM was doing when the stream ended, from its last STOP/RESUME/SHUTDOWN:
    /// `explain` advises `cont` only for a VM that is still paused.
    public enum RunState: String, Sendable, Encodable {
        case running, paused, shutdown
    }

    public struct IOError: Sendable, Encodable, Equatable {
        public let time: Double?
        public let line: Int
        public let device: String
        public let nodeName: String?
        public let operation: QMPIOOperation
        public let action: QMPErrorAction
        public let nospace: Bool
        /// strerror() text as QEMU sent it.
        public let reason: String?
        /// The errno behind `reason`, decoded with the errno table ("No such process" → ESRCH).
        public let errnoName: String?
        public let errno: Int32?
    }

    public struct Pause: Sendable, Encodable, Equatable {
        /// When the VM stopped (QMP wall clock, seconds since the epoch).
        public let start: Double?
        /// How long it stayed paused; nil when the stream ends while paused.
        public let seconds: Double?
        public let device: String
        public let operation: QMPIOOperation
        public let reason: String?
        public let nospace: Bool
        /// False when the retried request failed again right after RESUME (another
        /// BLOCK_IO_ERROR with action stop before anything else); true when the VM ran on;
        /// nil when the stream ends before it can tell.
        public let retrySucceeded: Bool?
        public let stopLine: Int
        public let resumeLine: Int?
    }

    public struct Lifecycle: Sendable, Encodable, Equatable {
        public let time: Double?
        public let line: Int
        public let event: String
    }

    /// The first `detailLimit` of each kind, in stream order; the totals below stay exact.
    public var ioErrors: [IOError] = []
    public var pauses: [Pause] = []
    /// STOPs with no BLOCK_IO_ERROR before them (a user or management pause), and SHUTDOWN,
    /// RESET, DEVICE_DELETED: context for the verdict.
    public var otherEvents: [Lifecycle] = []
    public private(set) var ioErrorsTotal = 0
    public private(set) var pausesTotal = 0
    public private(set) var otherEventsTotal = 0
    /// How many of each list are kept (the guest log's and the trace's detail limit in explain).
    public let detailLimit: Int
    /// What the reader skipped (set by `finish(reader:)`): lines it did not understand, and
    /// events whose timestamp was no clock reading.
    public private(set) var skippedLines = 0
    public private(set) var badTimestamps = 0
    /// Every event of the stream, and the first and last event time (QMP wall clock): the
    /// period the stream covers, in which a missing BLOCK_IO_ERROR means QEMU saw no storage error.
    public private(set) var eventsTotal = 0
    @NullEncoded public private(set) var firstEventTime: Double? = nil
    @NullEncoded public private(set) var lastEventTime: Double? = nil
    /// nil when the stream has no STOP, RESUME or SHUTDOWN.
    @NullEncoded public private(set) var runStateAtEnd: RunState? = nil

    /// How close a STOP must follow its BLOCK_IO_ERROR to be caused by it, in seconds.
    static let stopWindow = 1.0

    // Streaming state: the last stop-error, the pause in progress, and the kept pauses whose
    // retry verdict waits for the next event of their device. Bounded: at most one open pause,
    // and the waiting list holds only kept pauses.
    private let errnoTable: ErrnoTable
    private var pendingStopCause: IOError?
    private var openPause: (stop: Lifecycle, cause: IOError)?
    private var closedAwaitingVerdict: [Int] = []

    public init(detailLimit: Int = 10_000, errnoTable: ErrnoTable = .standard) {
        self.detailLimit = max(0, detailLimit)
        self.errnoTable = errnoTable
    }

    /// Every event at once (tests, small inputs); the same as consuming them one by one.
    public init(events: [QMPEvent], detailLimit: Int = 10_000, errnoTable: ErrnoTable = .standard) {
        self.init(detailLimit: detailLimit, errnoTable: errnoTable)
        for e in events { consume(e) }
        finish()
    }

    /// Takes the next event of the stream; nothing of it is kept unless it goes into a list.
    public mutating func consume(_ event: QMPEvent) {
        eventsTotal += 1
        if let t = event.time {
            if firstEventTime == nil || t < firstEventTime! { firstEventTime = t }
            if lastEventTime == nil || t > lastEventTime! { lastEventTime = t }
        }
        switch event.name {
        case "STOP": runStateAtEnd = .paused
        case "RESUME": runStateAtEnd = .running
        case "SHUTDOWN": runStateAtEnd = .shutdown
        default: break
        }
        switch event.name {
        case "BLOCK_IO_ERROR":
            guard let e = event.blockIOError else { return }
            let decoded = e.reason.flatMap { errnoTable.entry(message: $0) }
            let record = IOError(time: event.time, line: event.line, device: e.device, nodeName: e.nodeName,
                                 operation: e.operation, action: e.action, nospace: e.nospace, reason: e.reason,
                                 errnoName: decoded?.name, errno: decoded?.number)
            ioErrorsTotal += 1
            if ioErrors.count < detailLimit { ioErrors.append(record) }
            // A stop-error right after a RESUME means the retry failed again.
            for i in closedAwaitingVerdict where pauses[i].device == e.device {
                close(i, succeeded: e.action != .stop ? nil : false)
            }
            closedAwaitingVerdict.removeAll { pauses[$0].device == e.device }
            if e.action == .stop { pendingStopCause = record }
        case "STOP":
            if let cause = pendingStopCause, Self.within(cause.time, event.time, Self.stopWindow) {
                openPause = (Lifecycle(time: event.time, line: event.line, event: "STOP"), cause)
            } else {
                addOther(Lifecycle(time: event.time, line: event.line, event: "STOP"))
            }
            pendingStopCause = nil
        case "RESUME":
            if let (stop, cause) = openPause {
                let seconds = (stop.time != nil && event.time != nil) ? event.time! - stop.time! : nil
                if addPause(Pause(start: stop.time, seconds: seconds, device: cause.device,
                                  operation: cause.operation, reason: cause.reason, nospace: cause.nospace,
                                  retrySucceeded: nil, stopLine: stop.line, resumeLine: event.line)) {
                    closedAwaitingVerdict.append(pauses.count - 1)
                }
                openPause = nil
            } else {
                addOther(Lifecycle(time: event.time, line: event.line, event: "RESUME"))
            }
        case "SHUTDOWN", "RESET", "DEVICE_DELETED", "POWERDOWN", "GUEST_PANICKED":
            // The VM ran on past the resume without the error coming back.
            for i in closedAwaitingVerdict { close(i, succeeded: true) }
            closedAwaitingVerdict.removeAll()
            addOther(Lifecycle(time: event.time, line: event.line, event: event.name))
        default:
            return
        }
    }

    /// The end of the stream. A pause still open: the VM was still stopped when the capture ended.
    public mutating func finish() {
        if let (stop, cause) = openPause {
            addPause(Pause(start: stop.time, seconds: nil, device: cause.device, operation: cause.operation,
                           reason: cause.reason, nospace: cause.nospace, retrySucceeded: nil,
                           stopLine: stop.line, resumeLine: nil))
            openPause = nil
        }
    }

    /// `finish()`, plus what the reader skipped.
    public mutating func finish(reader: QMPEventReader) {
        finish()
        skippedLines = reader.skippedLines
        badTimestamps = reader.badTimestamps
    }

    private mutating func close(_ index: Int, succeeded: Bool?) {
        let p = pauses[index]
        pauses[index] = Pause(start: p.start, seconds: p.seconds, device: p.device, operation: p.operation,
                              reason: p.reason, nospace: p.nospace, retrySucceeded: succeeded,
                              stopLine: p.stopLine, resumeLine: p.resumeLine)
    }

    @discardableResult
    private mutating func addPause(_ p: Pause) -> Bool {
        pausesTotal += 1
        guard pauses.count < detailLimit else { return false }
        pauses.append(p)
        return true
    }

    private mutating func addOther(_ l: Lifecycle) {
        otherEventsTotal += 1
        if otherEvents.count < detailLimit { otherEvents.append(l) }
    }

    static func within(_ a: Double?, _ b: Double?, _ window: Double) -> Bool {
        guard let a, let b else { return true }   // no clock: trust the order
        return b >= a && b - a <= window
    }
}

// JSON: every documented key is always present, `null` where unknown (synthesized encoders
// would leave such keys out).
extension QMPTimeline.IOError {
    enum CodingKeys: String, CodingKey { case time, line, device, nodeName, operation, action, nospace, reason, errnoName, errno }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(time, forKey: .time); try c.encode(line, forKey: .line)
        try c.encode(device, forKey: .device); try c.encode(nodeName, forKey: .nodeName)
        try c.encode(operation, forKey: .operation); try c.encode(action, forKey: .action)
        try c.encode(nospace, forKey: .nospace); try c.encode(reason, forKey: .reason)
        try c.encode(errnoName, forKey: .errnoName); try c.encode(errno, forKey: .errno)
    }
}

extension QMPTimeline.Pause {
    enum CodingKeys: String, CodingKey { case start = "startTime", seconds, device, operation, reason, nospace, retrySucceeded, stopLine, resumeLine }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(start, forKey: .start); try c.encode(seconds, forKey: .seconds)
        try c.encode(device, forKey: .device); try c.encode(operation, forKey: .operation)
        try c.encode(reason, forKey: .reason); try c.encode(nospace, forKey: .nospace)
        try c.encode(retrySucceeded, forKey: .retrySucceeded)
        try c.encode(stopLine, forKey: .stopLine); try c.encode(resumeLine, forKey: .resumeLine)
    }
}

extension QMPTimeline.Lifecycle {
    enum CodingKeys: String, CodingKey { case time, line, event }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(time, forKey: .time); try c.encode(line, forKey: .line); try c.encode(event, forKey: .event)
    }
}
