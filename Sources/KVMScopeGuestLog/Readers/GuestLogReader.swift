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

    public init() {}

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
        if let us = prefix.time.uptimeMicroseconds {
            if stats.firstUptimeMicroseconds == nil { stats.firstUptimeMicroseconds = us }
            if us > (stats.lastUptimeMicroseconds ?? .min) { stats.lastUptimeMicroseconds = us }
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
