import KVMScopeGuestLog

/// Receives what HostKernelLogReader finds, line by line (a streaming analysis keeps only what
/// it needs, so memory does not grow with the input).
public protocol HostKernelEventSink {
    mutating func consume(_ event: HostKernelEvent)
    /// Whether the next finding's `message` (the line's text) is wanted. Making it is most of
    /// the cost of a finding; an analysis that lists only its first N findings says no after N.
    var wantsMessages: Bool { get }
}

extension HostKernelEventSink {
    public var wantsMessages: Bool { true }
}

/// What the reader saw of its input, for the report and for refusing a file that is not a
/// kernel log at all.
public struct HostKernelInputStats: Equatable, Sendable {
    public var bytes: Int64 = 0
    public var lines = 0
    /// Lines per stamp style (`dmesg-iso`, `journal`, `bare`, ...).
    public var styles: [KernelLogStyle: Int] = [:]
    /// Lines that are positively not kernel messages (other programs' syslog/journal lines).
    public var notKernelLines = 0
    /// Unstamped lines that matched no message: not counted as kernel messages.
    public var unrecognisedBareLines = 0
    public var binaryLines = 0
    public var overlongLines = 0
    /// Lines that start like a known message but whose fields cannot be read (cut off, garbled).
    public var malformedLines = 0
    public var firstMalformedLine: Int?
    /// Messages the kernel's rate limiter dropped (`%s: %d callbacks suppressed`), summed.
    public var suppressedMessages: UInt64 = 0
    public var endedMidLine = false
    /// `block:block_rq_error` tracepoint records read (BlockRequestErrorTracepoint).
    public var blockTracepointRecords = 0
    /// The block_rq_error tracepoint was recorded over the whole span with no record lost
    /// (`kvmscope record`'s host-block-errors.log): every failed host block request is in
    /// the input, so the kernel log's rate limiter hides none of them.
    public var blockTracepointComplete = false
    /// Kernel messages `I/O error, dev …` left out because a tracepoint record is the same
    /// failed request (both come from one branch of blk_update_request).
    public var blockErrorsAlsoTraced = 0
    public var first: GuestLogTime?
    public var last: GuestLogTime?

    public init() {}

    /// Lines that are kernel messages: stamped kernel lines, and unstamped ones that matched.
    public var kernelMessages: Int {
        styles.reduce(0) { $0 + $1.value } - unrecognisedBareLines
    }

    /// Lines read as evidence: kernel messages and block_rq_error tracepoint records.
    public var recognisedLines: Int { kernelMessages + blockTracepointRecords }
}

/// Reads a host kernel log (dmesg in all its time formats, journalctl -k, kern.log/syslog,
/// /dev/kmsg records: the guest log's KernelLinePrefixParser finds where each message starts)
/// and turns the messages about the host's storage stack into HostKernelEvents. Host-only
/// messages (HostKernelMatchers) are tried first; then the messages a guest prints too
/// (GuestLogMatchers: block-layer errors on any device, buffer errors, ext4/XFS, SCSI).
/// One pass, constant memory; unlike the guest reader it keeps repeated lines (a host log is
/// not a console capture followed by its own dmesg).
public struct HostKernelLogReader {
    public private(set) var stats = HostKernelInputStats()
    /// How to read block_rq_error tracepoint records' device numbers and clock.
    public var tracepointContext = BlockTracepointContext()
    private var styleCounts = KernelLogStyleCounts()
    private var previousWasKmsg = false

    public init() {}

    public mutating func read<Sink: HostKernelEventSink>(_ stream: ByteStream, into sink: inout Sink,
                                                         progress: ((Int64) -> Void)? = nil) throws {
        var splitter = LineSplitter()
        splitter.onProgress = progress
        try splitter.forEachLine(in: stream) { line, number in
            consume(line: line, number: number, into: &sink)
        }
        stats.bytes += splitter.stats.bytes
        stats.lines += splitter.stats.lines
        stats.overlongLines += splitter.stats.overlongLines
        stats.endedMidLine = stats.endedMidLine || splitter.stats.endedMidLine
        finishStyles()
    }

    /// One line; for callers that split lines themselves. Call `finishStyles()` at the end.
    public mutating func consume<Sink: HostKernelEventSink>(line: LineBytes, number: Int, into sink: inout Sink) {
        let prefix: KernelLinePrefix
        switch KernelLinePrefixParser.parse(line, previousWasKmsg: previousWasKmsg) {
        case .notKernel:
            previousWasKmsg = previousWasKmsg && line.count > 0 && line[0] == 0x20
            if tracepoint(line, number, into: &sink) { return }
            stats.notKernelLines += 1
            if let event = Self.multipathd(line, number) { sink.consume(event) }
            return
        case .kernel(let p):
            prefix = p
        }
        previousWasKmsg = prefix.style == .kmsg
        let ctx = MatchContext(line: line, start: prefix.messageStart, lineNumber: number, time: prefix.time)
        // Each event goes to the sink from where it was made: a finding is a large value, and
        // carrying it through optionals cost a copy per line (measured: ~10 % of the time).
        switch HostKernelMatchers.match(ctx) {
        case .event(let e):
            account(prefix, line, number, matched: true, malformed: false)
            deliver(e, ctx, into: &sink)
            return
        case .malformed:
            account(prefix, line, number, matched: false, malformed: true)
            return
        case .noMatch:
            break
        }
        switch GuestLogMatchers.match(ctx) {
        case .noMatch:
            if prefix.style == .bare, tracepoint(line, number, into: &sink) { return }
            account(prefix, line, number, matched: false, malformed: false)
        case .malformed:
            account(prefix, line, number, matched: false, malformed: true)
        case .event(let g):
            if case .suppressed(let s) = g {
                // Saturating: a garbled count must not trap.
                let (sum, overflow) = stats.suppressedMessages.addingReportingOverflow(s.count)
                stats.suppressedMessages = overflow ? .max : sum
            }
            account(prefix, line, number, matched: true, malformed: false)
            if let e = Self.hostEvent(g, ctx) { deliver(e, ctx, into: &sink) }
        }
    }

    /// A `block:block_rq_error` record (trace_pipe, trace-cmd report or perf script output):
    /// a block-layer failure like blk_print_req_error's message, but from the tracepoint.
    private mutating func tracepoint<Sink: HostKernelEventSink>(_ line: LineBytes, _ number: Int, into sink: inout Sink) -> Bool {
        guard line.count > 30, let r = BlockRequestErrorTracepoint.parse(line) else { return false }
        stats.blockTracepointRecords += 1
        let time = tracepointContext.time(of: r)
        if stats.first == nil { stats.first = time }
        stats.last = time
        var f = HostKernelFinding(kind: .blockError, device: tracepointContext.deviceNames[r.deviceNumber] ?? r.deviceNumber,
                                  time: time, line: number, message: "")
        f.source = .blockTracepoint
        f.sector = r.sector
        f.operation = r.operation
        f.errno = ErrnoTable.standard.entry(number: Int64(r.errno))?.name ?? "errno \(r.errno)"
        if sink.wantsMessages, let at = line.find("block_rq_error: ") { f.message = line.string(from: at) }
        sink.consume(.finding(f))
        return true
    }

    @inline(__always)
    private func deliver<Sink: HostKernelEventSink>(_ e: HostKernelEvent, _ ctx: MatchContext, into sink: inout Sink) {
        if case .finding(var f) = e, sink.wantsMessages {
            f.message = ctx.message
            sink.consume(.finding(f))
        } else {
            sink.consume(e)
        }
    }

    /// The line's share of the statistics: binary junk and unmatched unstamped text are not
    /// kernel messages; everything else counts under its stamp style.
    @inline(__always)
    private mutating func account(_ prefix: KernelLinePrefix, _ line: LineBytes, _ number: Int, matched: Bool, malformed: Bool) {
        if prefix.style == .bare, !matched {
            if line.looksBinary { stats.binaryLines += 1; return }
            stats.unrecognisedBareLines += 1
        }
        if malformed {
            if line.looksBinary { stats.binaryLines += 1; return }
            stats.malformedLines += 1
            if stats.firstMalformedLine == nil { stats.firstMalformedLine = number }
        }
        styleCounts.add(prefix.style)
        if prefix.style != .bare {
            if stats.first == nil { stats.first = prefix.time }
            stats.last = prefix.time
        }
    }

    /// Folds the per-style counters into `stats.styles`.
    public mutating func finishStyles() {
        for (style, n) in styleCounts.nonZero { stats.styles[style, default: 0] += n }
        styleCounts = KernelLogStyleCounts()
    }

    /// multipathd (user space, multipathd/main.c): `multipathd[PID]: %s: remaining active paths: %d`
    /// in a syslog or journal file. Only the count 0 is a finding: the map has lost every path.
    static func multipathd(_ line: LineBytes, _ number: Int) -> HostKernelEvent? {
        guard line.count > 40, let tag = line.find("multipathd", from: 0), tag < 64,
              let r = line.find(": remaining active paths: ", from: tag + 10),
              let (n, end) = line.decimal(at: r + 26), end == line.count, n == 0 else { return nil }
        // The map's alias is the word before ": remaining".
        var a = r
        while a > tag, line[a - 1] != 0x20 { a -= 1 }
        guard a < r else { return nil }
        var f = HostKernelFinding(kind: .multipathNoPaths, device: line.string(a..<r), time: .unknown, line: number,
                                  message: line.string(from: tag))
        if let t = KernelLinePrefixParser.programLineTime(line) { f.time = t }
        f.status = "remaining active paths: 0"
        return .finding(f)
    }

    /// A guest-log event, as the host sees it (nil for what the host report does not keep).
    static func hostEvent(_ g: GuestLogEvent, _ ctx: MatchContext) -> HostKernelEvent? {
        func make(_ kind: HostFindingKind, _ device: String?) -> HostKernelFinding {
            HostKernelFinding(kind: kind, device: device, time: ctx.time, line: ctx.lineNumber, message: "")
        }
        switch g {
        case .blockError(let e):
            // mkfs, fstrim and the filesystems try these on every device and fall back when the
            // device lacks them (block/blk-lib.c): not a failure of the device.
            if e.errorType == .notSupported, let op = e.operation, Self.optionalOperations.contains(op) {
                return .noise(.unsupportedOptionalOperation, device: e.device, line: ctx.lineNumber)
            }
            var f = make(.blockError, e.device)
            f.sector = e.sector
            f.operation = e.operation?.rawValue
            f.flags = e.flags
            f.status = e.errorType.text
            f.errno = e.errorType.errnoName
            return .finding(f)
        case .bufferError(let b):
            var f = make(.bufferIOError, b.device)
            f.status = b.loss?.rawValue
            f.errno = "EIO"
            return .finding(f)
        case .filesystem(let fe):
            let kind: HostFindingKind
            switch fe.kind {
            case .mounted: return .noise(.filesystemMounted, device: fe.device, line: ctx.lineNumber)
            case .remountedReadOnly: kind = .filesystemReadOnly
            case .shutdown: kind = .filesystemShutdown
            default: kind = .filesystemError
            }
            var f = make(kind, fe.device)
            f.status = fe.filesystem.rawValue
            if case .metadataIOError(let daddr, _, let errno, _) = fe.kind {
                f.sector = daddr
                if errno == 5 { f.errno = "EIO" }
            }
            return .finding(f)
        case .scsi(let se):
            // "sd H:C:T:L: msg" lines without "[sdX]" name the SCSI address only.
            let device = se.device == "?" || se.device.isEmpty ? se.address : se.device
            // Each line of a SCSI command carries its tag: HostFailureGrouping ties them by it.
            func scsi(_ kind: HostFindingKind) -> HostKernelFinding {
                var f = make(kind, device)
                f.tag = se.tag
                return f
            }
            switch se.kind {
            case .result(let host, let driver):
                var f = scsi(.scsiResult)
                f.status = "hostbyte=\(host) driverbyte=\(driver)"
                return .finding(f)
            case .senseKey(let k):
                var f = scsi(.scsiSense)
                f.status = "Sense Key : " + k
                return .finding(f)
            case .additionalSense(let a):
                var f = scsi(.scsiSense)
                f.status = "Add. Sense: " + a
                return .finding(f)
            case .unhandled:
                return .finding(scsi(.scsiResult))
            case .offline:
                var f = scsi(.scsiOffline)
                f.errno = "EIO"
                return .finding(f)
            case .cdb:
                // The command of a failure already reported by its Result/Sense lines.
                return nil
            }
        case .capacity(let c):
            return .noise(.capacityChange, device: c.device, line: ctx.lineNumber)
        case .suppressed:
            return nil
        case .hungTask, .deviceTimeout:
            // The host reader's own matchers report these with the QEMU process they name.
            return nil
        }
    }

    static let optionalOperations: Set<BlockIOOperation> = [
        .discard, .secureErase, .writeZeroes, .writeSame, .zoneReport, .zoneReset, .zoneResetAll,
        .zoneOpen, .zoneClose, .zoneFinish, .zoneAppend,
    ]
}
