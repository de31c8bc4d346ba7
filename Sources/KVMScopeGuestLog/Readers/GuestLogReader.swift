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
    /// Uptime of the first and last kernel message that had one (µs): the period the log
    /// covers, which `explain` needs to tell "the guest did not log it" from "not in this log".
    public var firstUptimeMicroseconds: Int64?
    public var lastUptimeMicroseconds: Int64?
    /// Lines recognised as kernel messages: every stamped kernel line, and unstamped lines
    /// that read as a known kernel message. Zero means the input is not a kernel log.
    public var recognisedKernelLines = 0
    /// Lines with no kernel stamp that are no known kernel message: user-space output on a
    /// serial console, or text that is no log at all. Not skipped, just not understood.
    public var unrecognisedLines = 0
    /// The guest's boots, in log order (the first GuestBootTracker.bootLimit in detail).
    public var boots: [GuestBoot] = []
    /// Boots counted, including any beyond the detail limit.
    public var bootCount = 0

    public init() {}

    /// Lines skipped unread: binary, overlong or malformed.
    public var skippedLines: Int { binaryLines + overlongLines + malformedLines }

    /// Messages with a recognised timestamp (every style but `bare`).
    public var stampedLines: Int { styles.filter { $0.key != .bare }.reduce(0) { $0 + $1.value } }
}

/// Reads a guest kernel log in one pass: splits lines, recognises each line's prefix, hands the
/// message to the matcher for its family and passes events to a sink. Memory is bounded by the
/// line splitter's buffer and a fixed window of recent event keys for de-duplication.
public struct GuestLogReader {
    public private(set) var stats = GuestLogInputStats()
    /// Drop events whose line repeats one of the last 32 768–65 536 events with the same uptime stamp.
    public var deduplicate: Bool
    private var recent = RecentKeyWindow(capacity: 1 << 15)
    private var styleCounts = [Int](repeating: 0, count: KernelLogStyle.allCases.count)
    private var previousWasKmsg = false
    private var latestEventUptime = Int64.min
    private var bootTracker = GuestBootTracker()
    /// Events of a candidate boot (see GuestBootTracker), with their de-duplication stamp and
    /// key, until it is decided. Bounded: at the limit the candidate is decided as it stands.
    private var pendingEvents: [PendingEvent] = []
    struct PendingEvent {
        var event: GuestLogEvent
        var us: Int64?
        var key: UInt64
    }
    static let pendingEventLimit = 4096

    public init(deduplicate: Bool = true) {
        self.deduplicate = deduplicate
    }

    /// Reads all of `stream`, calling `sink` for every event. Reading several streams with one
    /// reader adds up the statistics (line numbers restart with each stream).
    public mutating func read<Sink: GuestLogEventSink>(_ stream: ByteStream, into sink: inout Sink,
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
        finish(into: &sink)
    }

    /// Decides a boot still open and publishes the statistics; `read` calls it. Callers that
    /// split lines themselves call it once at the end.
    public mutating func finish<Sink: GuestLogEventSink>(into sink: inout Sink) {
        flushPending(bootTracker.finish(), into: &sink)
        stats.boots = bootTracker.boots
        stats.bootCount = bootTracker.count
        finishStyles()
    }

    /// One line; for callers that split lines themselves. Call `finish(into:)` at the end.
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
        if let us = prefix.time.uptimeMicroseconds {
            if stats.firstUptimeMicroseconds == nil { stats.firstUptimeMicroseconds = us }
            if us > (stats.lastUptimeMicroseconds ?? .min) { stats.lastUptimeMicroseconds = us }
        }
        previousWasKmsg = prefix.style == .kmsg
        kernelMessage(line, start: prefix.messageStart, style: prefix.style, time: prefix.time,
                      number: number, bootId: nil, into: &sink)
    }

    /// A kernel message, from whichever format carried it: matched, counted, placed in its
    /// boot and handed to the sink (or held while its boot is undecided).
    mutating func kernelMessage<Sink: GuestLogEventSink>(_ line: LineBytes, start: Int, style: KernelLogStyle,
                                                         time: GuestLogTime, number: Int, bootId: String?,
                                                         into sink: inout Sink) {
        let ctx = MatchContext(line: line, start: start, lineNumber: number, time: time)
        let outcome = GuestLogMatchers.match(ctx)
        switch outcome {
        case .noMatch:
            if style == .bare {
                if line.looksBinary { stats.binaryLines += 1; return }
                styleCounts[style.index] += 1
                // An unstamped line is a kernel message only if it reads as one.
                guard line.matches("Linux version ", at: start) else { stats.unrecognisedLines += 1; return }
            } else {
                styleCounts[style.index] += 1
            }
        case .malformed:
            if line.looksBinary { stats.binaryLines += 1; return }
            styleCounts[style.index] += 1
            stats.malformedLines += 1
            if stats.firstMalformedLine == nil { stats.firstMalformedLine = number }
        case .event:
            styleCounts[style.index] += 1
        }
        stats.recognisedKernelLines += 1
        let resolution = bootTracker.observe(line, start: start, number: number, time: time, bootId: bootId)
        if resolution != .none { flushPending(resolution, into: &sink) }
        guard case .event(let event) = outcome else { return }
        var key: UInt64 = 0
        let us = time.uptimeMicroseconds
        if deduplicate, let us {
            key = line.hash(start..<line.count, seed: 0xcbf29ce484222325 ^ UInt64(bitPattern: us))
        }
        if bootTracker.pending {
            pendingEvents.append(PendingEvent(event: event, us: us, key: key))
            if pendingEvents.count >= Self.pendingEventLimit { flushPending(bootTracker.finish(), into: &sink) }
            return
        }
        emit(event, us: us, key: key, into: &sink)
    }

    private mutating func flushPending<Sink: GuestLogEventSink>(_ resolution: GuestBootTracker.Resolution,
                                                                into sink: inout Sink) {
        if resolution == .newBoot {
            // Stamps restart: the previous boot's events cannot repeat in this one.
            recent = RecentKeyWindow(capacity: 1 << 15)
            latestEventUptime = .min
        }
        guard !pendingEvents.isEmpty else { return }
        let events = pendingEvents
        pendingEvents.removeAll(keepingCapacity: true)
        for e in events { emit(e.event, us: e.us, key: e.key, into: &sink) }
    }

    @inline(__always)
    private mutating func emit<Sink: GuestLogEventSink>(_ event: GuestLogEvent, us: Int64?, key: UInt64,
                                                        into sink: inout Sink) {
        if deduplicate, let us {
            // A repeat has the stamp of a line already seen, so it cannot be later than all
            // of them: events moving forward in time (nearly all) skip the lookup.
            if us <= latestEventUptime {
                if !recent.insert(key) {
                    stats.duplicateEvents += 1
                    return
                }
            } else {
                recent.insertNew(key)
                latestEventUptime = us
            }
        }
        let boot = bootTracker.current
        sink.consume(boot == 1 ? event : event.inBoot(boot))
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

/// Recently seen keys in fixed memory. A replayed dmesg can only repeat what fits in the
/// kernel's ring buffer (128 KiB–1 MiB by default: at most ~10 000 lines), so it is enough to
/// remember the last `generation`–2×`generation` events (32 768–65 536 here, 1 MiB of tables): two open-addressing tables
/// of already-hashed keys, the older one dropped wholesale when the newer fills. No per-key
/// deletion, no rehashing of keys that are hashes already.
struct RecentKeyWindow {
    private var tables: KeyTables
    private var count = 0
    private let generation: Int

    init(capacity generation: Int) {
        self.generation = max(1, generation)
        var slots = 1
        while slots < self.generation * 2 { slots <<= 1 }   // load factor ≤ 0.5
        tables = KeyTables(slots: slots)
    }

    /// Adds `key`; false when it was already there.
    mutating func insert(_ rawKey: UInt64) -> Bool {
        let key = rawKey == 0 ? 1 : rawKey       // 0 marks an empty slot
        let (found, slot) = tables.probe(tables.current, key)
        if found || tables.contains(tables.previous, key) { return false }
        add(key, at: slot)
        return true
    }

    /// Adds a key known not to be present (skips looking in the older table).
    mutating func insertNew(_ rawKey: UInt64) {
        let key = rawKey == 0 ? 1 : rawKey
        let (found, slot) = tables.probe(tables.current, key)
        if !found { add(key, at: slot) }
    }

    private mutating func add(_ key: UInt64, at slot: Int) {
        // Value semantics: a copied reader must not share its window.
        if !isKnownUniquelyReferenced(&tables) { tables = tables.copy() }
        if count == generation {
            tables.rotate()
            count = 0
            tables.current[tables.probe(tables.current, key).slot] = key
        } else {
            tables.current[slot] = key
        }
        count += 1
    }
}

/// Two open-addressing tables of hashed keys in one allocation; `current` and `previous`
/// swap roles when the current one holds a full generation. Raw memory: this sits on the
/// per-event path, where array uniqueness and bounds checks showed up in profiles.
final class KeyTables {
    private(set) var current: UnsafeMutablePointer<UInt64>
    private(set) var previous: UnsafeMutablePointer<UInt64>
    let mask: Int
    private let storage: UnsafeMutablePointer<UInt64>

    init(slots: Int) {
        mask = slots - 1
        storage = UnsafeMutablePointer<UInt64>.allocate(capacity: slots * 2)
        storage.initialize(repeating: 0, count: slots * 2)
        current = storage
        previous = storage + slots
    }

    deinit { storage.deallocate() }

    func copy() -> KeyTables {
        let c = KeyTables(slots: mask + 1)
        c.current.update(from: current, count: mask + 1)
        c.previous.update(from: previous, count: mask + 1)
        return c
    }

    /// Whether `key` is in `table`, and the slot where it is or would go.
    @inline(__always)
    func probe(_ table: UnsafeMutablePointer<UInt64>, _ key: UInt64) -> (found: Bool, slot: Int) {
        var i = Int(truncatingIfNeeded: key) & mask
        while true {
            let v = table[i]
            if v == key { return (true, i) }
            if v == 0 { return (false, i) }
            i = (i + 1) & mask
        }
    }

    @inline(__always)
    func contains(_ table: UnsafeMutablePointer<UInt64>, _ key: UInt64) -> Bool { probe(table, key).found }

    /// The current table becomes the previous one; the old previous is emptied for reuse.
    func rotate() {
        swap(&current, &previous)
        current.update(repeating: 0, count: mask + 1)
    }
}
