/// Receives guest-log events as they are read. The analysis is one; tests collect into arrays.
public protocol GuestLogEventSink {
    mutating func consume(_ event: GuestLogEvent)
}

/// Collects every event, for tests and small inputs.
public struct GuestLogEventCollector: GuestLogEventSink {
    public var events: [GuestLogEvent] = []
    public init() {}
    public mutating func consume(_ event: GuestLogEvent) { events.append(event) }
}

/// What the reader saw besides the events, so that nothing is dropped silently.
public struct GuestLogInputStats: Equatable, Sendable {
    public var bytes: Int64 = 0
    public var lines = 0
    /// Lines per timestamp style (kernel messages only).
    public var styles: [KernelLogStyle: Int] = [:]
    /// Lines that are positively not kernel messages: other programs in a syslog or journal,
    /// user-space /dev/kmsg records, kmsg continuation lines.
    public var notKernelLines = 0
    /// Lines with bytes no text log has (NUL, control characters): skipped.
    public var binaryLines = 0
    /// Lines longer than the splitter's limit: skipped.
    public var overlongLines = 0
    /// Lines that began like a known message but whose fields could not be read (cut off,
    /// corrupted): skipped.
    public var malformedLines = 0
    public var firstMalformedLine: Int?
    /// Events whose line was already seen with the same uptime stamp (a serial console
    /// capture followed by a dmesg of the same boot, or a file concatenated twice): counted once.
    public var duplicateEvents = 0
    /// The input ended in the middle of a line (that line was still read).
    public var endedMidLine = false

    public init() {}

    /// Messages with a recognised timestamp (every style but `bare`).
    public var stampedLines: Int { styles.filter { $0.key != .bare }.reduce(0) { $0 + $1.value } }
}

/// Reads a guest kernel log in one pass: splits lines, recognises each line's prefix, hands the
/// message to the matcher for its family and passes events to a sink. Memory is bounded by the
/// line splitter's buffer and a fixed window of recent event keys for de-duplication.
public struct GuestLogReader {
    public private(set) var stats = GuestLogInputStats()
    /// Drop events whose line repeats an earlier one with the same uptime stamp.
    public var deduplicate: Bool
    private var recent = RecentKeyWindow(capacity: 1 << 16)
    private var styleCounts = [Int](repeating: 0, count: KernelLogStyle.allCases.count)
    private var previousWasKmsg = false

    public init(deduplicate: Bool = true) {
        self.deduplicate = deduplicate
    }

    /// Reads all of `stream`, calling `sink` for every event.
    public mutating func read<Sink: GuestLogEventSink>(_ stream: ByteStream, into sink: inout Sink,
                                                       progress: ((Int64) -> Void)? = nil) throws {
        var splitter = LineSplitter()
        splitter.onProgress = progress
        try splitter.forEachLine(in: stream) { line, number in
            consume(line: line, number: number, into: &sink)
        }
        stats.bytes = splitter.stats.bytes
        stats.lines = splitter.stats.lines
        stats.overlongLines = splitter.stats.overlongLines
        stats.endedMidLine = splitter.stats.endedMidLine
        finishStyles()
    }

    /// One line; for callers that split lines themselves. Call `finishStyles()` at the end.
    public mutating func consume<Sink: GuestLogEventSink>(line: LineBytes, number: Int, into sink: inout Sink) {
        let prefix: KernelLinePrefix
        switch KernelLinePrefixParser.parse(line, previousWasKmsg: previousWasKmsg) {
        case .notKernel:
            stats.notKernelLines += 1
            // A continuation line keeps the kmsg context; any other line ends it.
            previousWasKmsg = previousWasKmsg && line.count > 0 && line[0] == 0x20
            return
        case .kernel(let p):
            prefix = p
        }
        previousWasKmsg = prefix.style == .kmsg
        let ctx = MatchContext(line: line, start: prefix.messageStart, lineNumber: number, time: prefix.time)
        switch GuestLogMatchers.match(ctx) {
        case .noMatch:
            if prefix.style == .bare, line.looksBinary {
                stats.binaryLines += 1
                return
            }
            styleCounts[prefix.style.index] += 1
        case .malformed:
            if line.looksBinary { stats.binaryLines += 1; return }
            styleCounts[prefix.style.index] += 1
            stats.malformedLines += 1
            if stats.firstMalformedLine == nil { stats.firstMalformedLine = number }
        case .event(let event):
            styleCounts[prefix.style.index] += 1
            if deduplicate, let us = prefix.time.uptimeMicroseconds {
                let key = line.hash(prefix.messageStart..<line.count, seed: 0xcbf29ce484222325 ^ UInt64(bitPattern: us))
                if !recent.insert(key) {
                    stats.duplicateEvents += 1
                    return
                }
            }
            sink.consume(event)
        }
    }

    /// Folds the per-style counters into `stats.styles`.
    public mutating func finishStyles() {
        var styles: [KernelLogStyle: Int] = [:]
        for style in KernelLogStyle.allCases where styleCounts[style.index] > 0 {
            styles[style] = styleCounts[style.index]
        }
        stats.styles = styles
    }
}

extension KernelLogStyle {
    var index: Int {
        switch self {
        case .printk: return 0
        case .printkCaller: return 1
        case .dmesgWallClock: return 2
        case .dmesgISO: return 3
        case .kmsg: return 4
        case .journal: return 5
        case .syslog: return 6
        case .bare: return 7
        }
    }
}

/// The last `capacity` keys, as a set with FIFO eviction. A replayed dmesg can only repeat
/// what fits in the kernel's ring buffer (128 KiB–1 MiB by default, a few thousand lines of
/// errors), so a window of 65536 events finds every repeat while memory stays fixed.
struct RecentKeyWindow {
    private var set: Set<UInt64> = []
    private var ring: [UInt64]
    private var next = 0
    private var filled = false

    init(capacity: Int) {
        ring = [UInt64](repeating: 0, count: capacity)
        set.reserveCapacity(capacity)
    }

    /// Adds `key`; false when it was already there.
    mutating func insert(_ key: UInt64) -> Bool {
        if set.contains(key) { return false }
        if filled { set.remove(ring[next]) }
        ring[next] = key
        set.insert(key)
        next += 1
        if next == ring.count { next = 0; filled = true }
        return true
    }
}
