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
    /// Kernel lines found after other output on the same console line.
    public var midLineStamps = 0
    /// journalctl -o json*/export records read (each counts as one line above when it is a
    /// kernel message or another program's), and those skipped: unreadable or over the size limit.
    public var journalRecords = 0
    public var skippedJournalRecords = 0
    /// Lines read as parts of journal records (a json-pretty object or an export record
    /// spans many): `lines` = styled + notKernel + binary + overlong + journalLines −
    /// (journalRecords − skippedJournalRecords).
    public var journalLines = 0

    public init() {}

    /// Lines skipped unread: binary, overlong or malformed.
    public var skippedLines: Int { binaryLines + overlongLines + malformedLines + skippedJournalRecords }

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
    private var styleCounts = KernelLogStyleCounts()
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
    private var journal = JournalRecordReader()
    private var ansiScratch: [UInt8] = []

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
        var j = journal
        journal = JournalRecordReader()
        j.finish(reader: &self, into: &sink)
        flushPending(bootTracker.finish(), into: &sink)
        stats.boots = bootTracker.boots
        stats.bootCount = bootTracker.count
        finishStyles()
    }

    /// One line; for callers that split lines themselves. Call `finish(into:)` at the end.
    public mutating func consume<Sink: GuestLogEventSink>(line raw: LineBytes, number: Int, into sink: inout Sink) {
        var line = raw
        // pty captures end lines with "\r\r\n" (the tty's ONLCR after the kernel's own "\r\n");
        // the splitter took one "\r".
        if line.count > 0, line[line.count - 1] == 0x0D {
            var n = line.count
            while n > 0, line[n - 1] == 0x0D { n -= 1 }
            line = LineBytes(UnsafeBufferPointer(rebasing: line.bytes[0..<n]))
        }
        if journal.active || (line.count > 0 && JournalRecordReader.mayStart(line)) {
            var j = journal
            journal = JournalRecordReader()
            let handled = j.consume(line, number: number, reader: &self, into: &sink)
            journal = j
            if handled { stats.journalLines += 1; return }
        }
        consumeText(line, number: number, into: &sink, stripped: false)
    }

    /// Colour and cursor sequences (systemd's console status, a terminal capture) are looked
    /// for only on lines that did not start with a kernel stamp: searching every line for
    /// ESC cost a memchr per line, and a kernel line is never coloured by the kernel.
    private mutating func consumeStripped<Sink: GuestLogEventSink>(_ line: LineBytes, number: Int, into sink: inout Sink) {
        var buf = ansiScratch
        ansiScratch = []
        buf.removeAll(keepingCapacity: true)
        Self.stripANSI(line, into: &buf)
        buf.withUnsafeBufferPointer { consumeText(LineBytes($0), number: number, into: &sink, stripped: true) }
        ansiScratch = buf
    }

    private mutating func consumeText<Sink: GuestLogEventSink>(_ line: LineBytes, number: Int, into sink: inout Sink,
                                                             stripped: Bool) {
        if line.count >= 8, line[0] == 0x2D, line.matches("-- ", at: 0), journalSeparator(line, number: number, into: &sink) {
            return
        }
        var prefix: KernelLinePrefix
        let parsed = KernelLinePrefixParser.parse(line, previousWasKmsg: previousWasKmsg)
        if !stripped, case .kernel(let p) = parsed, p.style == .bare, line.find(byte: 0x1B) != nil {
            consumeStripped(line, number: number, into: &sink)
            return
        }
        switch parsed {
        case .notKernel:
            stats.notKernelLines += 1
            // A continuation line keeps the kmsg context; any other line ends it.
            previousWasKmsg = previousWasKmsg && line.count > 0 && line[0] == 0x20
            return
        case .kernel(let p):
            prefix = p
        }
        // A serial console: user space wrote without a newline and the kernel's line follows
        // ("...Starting journal.service...[    2.327010] I/O error, dev vda, ...").
        if prefix.style == .bare, let q = Self.midLineStamp(line, after: prefix.messageStart) {
            prefix = q
            stats.midLineStamps += 1
        }
        if let us = prefix.time.uptimeMicroseconds {
            if stats.firstUptimeMicroseconds == nil { stats.firstUptimeMicroseconds = us }
            if us > (stats.lastUptimeMicroseconds ?? .min) { stats.lastUptimeMicroseconds = us }
        }
        previousWasKmsg = prefix.style == .kmsg
        kernelMessage(line, start: prefix.messageStart, style: prefix.style, time: prefix.time,
                      number: number, bootId: nil, into: &sink)
    }

    /// journalctl between boots: "-- Boot 6c7c6013a26343b29e964691ff25d04c --" (journalctl-show.c),
    /// or "-- No entries --". Out of line: rare, and it kept consumeText too large to inline into.
    @inline(never)
    private mutating func journalSeparator<Sink: GuestLogEventSink>(_ line: LineBytes, number: Int,
                                                                    into sink: inout Sink) -> Bool {
        if line.count == 43, line.matches("-- Boot ", at: 0), line.matches(" --", at: 40) {
            let id = line.string(8..<40)
            if id.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }) {
                if bootTracker.pending { flushPending(bootTracker.finish(), into: &sink) }
                if bootTracker.separator(bootId: id, line: number) == .newBoot { resetDeduplication() }
                stats.notKernelLines += 1
                return true
            }
        }
        if line.matches(" --", at: line.count - 3) { stats.notKernelLines += 1; return true }
        return false
    }

    /// A kernel message, from whichever format carried it: matched, counted, placed in its
    /// boot and handed to the sink (or held while its boot is undecided). Inlined into its two
    /// callers: the text path passes constants (no boot id) that the compiler then folds.
    @inline(__always)
    mutating func kernelMessage<Sink: GuestLogEventSink>(_ line: LineBytes, start: Int, style: KernelLogStyle,
                                                         time: GuestLogTime, number: Int, bootId: String?,
                                                         into sink: inout Sink) {
        let ctx = MatchContext(line: line, start: start, lineNumber: number, time: time)
        let outcome = GuestLogMatchers.match(ctx)
        switch outcome {
        case .noMatch:
            if style == .bare {
                if line.looksBinary { stats.binaryLines += 1; return }
                styleCounts.add(style)
                // An unstamped line is a kernel message only if it reads as one.
                guard line.matches("Linux version ", at: start) else { stats.unrecognisedLines += 1; return }
            } else {
                styleCounts.add(style)
            }
        case .malformed:
            if line.looksBinary { stats.binaryLines += 1; return }
            styleCounts.add(style)
            stats.malformedLines += 1
            if stats.firstMalformedLine == nil { stats.firstMalformedLine = number }
        case .event:
            styleCounts.add(style)
        }
        stats.recognisedKernelLines += 1
        if bootId != nil || bootTracker.rebootPrinted, bootTracker.pending { flushPending(bootTracker.finish(), into: &sink) }
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

    /// A whole journal record (JournalRecordReader): its kernel message, or a count.
    mutating func journalRecord<Sink: GuestLogEventSink>(_ f: JournalFields, style: KernelLogStyle, number: Int,
                                                         into sink: inout Sink) {
        stats.journalRecords += 1
        guard f.hasMessage, f.isKernel else { stats.notKernelLines += 1; return }
        var message = f.message
        // journald keeps a kernel message's text as printk wrote it, without the newline.
        while let last = message.last, last == 0x0A || last == 0x0D { message.removeLast() }
        message.withUnsafeBufferPointer { m in
            kernelMessage(LineBytes(m), start: 0, style: style, time: f.time, number: number, bootId: f.bootId, into: &sink)
        }
    }

    mutating func skippedJournalRecord() {
        stats.journalRecords += 1
        stats.skippedJournalRecords += 1
    }

    /// Removes ANSI escape sequences (ECMA-48: CSI `ESC [ params final`, OSC `ESC ] … BEL/ST`,
    /// and two-byte `ESC x`).
    static func stripANSI(_ line: LineBytes, into out: inout [UInt8]) {
        var i = 0
        let n = line.count
        while i < n {
            let c = line[i]
            if c != 0x1B { out.append(c); i += 1; continue }
            guard i + 1 < n else { break }
            let k = line[i + 1]
            if k == 0x5B {                                             // CSI: parameters, then 0x40...0x7E
                var j = i + 2
                while j < n, !(line[j] >= 0x40 && line[j] <= 0x7E) { j += 1 }
                i = j + 1
            } else if k == 0x5D {                                      // OSC: up to BEL or ESC \
                var j = i + 2
                while j < n, line[j] != 0x07, !(line[j] == 0x1B && j + 1 < n && line[j + 1] == 0x5C) { j += 1 }
                i = j < n && line[j] == 0x07 ? j + 1 : j + 2
            } else {
                i += 2
            }
        }
    }

    /// A printk stamp after other text on the line, as a prefix starting there.
    static func midLineStamp(_ line: LineBytes, after start: Int) -> KernelLinePrefix? {
        var from = start + 1
        while from < line.count, let j = line.find(byte: UInt8(ascii: "["), from: from) {
            // Only printk's own "[%5lu.%06lu]": "Slot [2]" or "IOAPIC[0]" is text.
            if let close = line.find(byte: UInt8(ascii: "]"), in: (j + 1)..<min(line.count, j + 24)), close - j >= 9,
               line[close - 7] == UInt8(ascii: "."), (1...6).allSatisfy({ line.isDigit(at: close - $0) }),
               let p = KernelLinePrefixParser.bracketed(line, j), p.time.uptimeMicroseconds != nil,
               p.style == .printk || p.style == .printkCaller {
                return p
            }
            from = j + 1
        }
        return nil
    }

    private mutating func resetDeduplication() {
        // Stamps restart: the previous boot's events cannot repeat in this one. The boot is
        // mixed into every key (emit), so the window itself needs no clearing (1 MiB per boot).
        latestEventUptime = .min
    }

    private mutating func flushPending<Sink: GuestLogEventSink>(_ resolution: GuestBootTracker.Resolution,
                                                                into sink: inout Sink) {
        if resolution == .newBoot { resetDeduplication() }
        guard !pendingEvents.isEmpty else { return }
        // Taken out and put back emptied: a copy (`let events = pendingEvents`) made
        // removeAll(keepingCapacity:) allocate a fresh buffer of the full capacity on every
        // decided candidate. emit does not touch pendingEvents.
        var events: [PendingEvent] = []
        swap(&events, &pendingEvents)
        for e in events { emit(e.event, us: e.us, key: e.key, into: &sink) }
        events.removeAll(keepingCapacity: true)
        pendingEvents = events
    }

    @inline(__always)
    private mutating func emit<Sink: GuestLogEventSink>(_ event: GuestLogEvent, us: Int64?, key: UInt64,
                                                        into sink: inout Sink) {
        let boot = bootTracker.current
        if deduplicate, let us {
            let key = boot == 1 ? key : key ^ (UInt64(truncatingIfNeeded: boot) &* 0x9E37_79B9_7F4A_7C15)
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
        sink.consume(boot == 1 ? event : event.inBoot(boot))
    }

    /// Folds the per-style counters into `stats.styles`.
    public mutating func finishStyles() {
        stats.styles = styleCounts.nonZero
    }
}

/// Recently seen keys in bounded memory. A replayed dmesg can only repeat what fits in the
/// kernel's ring buffer (128 KiB–1 MiB by default: at most ~10 000 lines), so it is enough to
/// remember the last `generation`–2×`generation` events (32 768–65 536 here, at most 1 MiB of
/// tables): two open-addressing tables of already-hashed keys, the older one dropped wholesale
/// when the newer holds a generation. No per-key deletion, no rehashing of keys that are hashes
/// already. The newer table starts small and doubles as it fills (load factor ≤ 0.5): most logs
/// have a few hundred events, and zeroing 1 MiB per reader was a third of the guest-log fuzz
/// target's time on small inputs.
struct RecentKeyWindow {
    private var tables: KeyTables
    private let generation: Int
    /// Slots of a full table: the smallest power of two ≥ 2 × generation.
    private let fullSlots: Int
    static let initialSlots = 64

    init(capacity generation: Int) {
        self.generation = max(1, generation)
        var slots = 1
        while slots < self.generation * 2 { slots <<= 1 }
        fullSlots = slots
        tables = KeyTables(slots: min(slots, Self.initialSlots))
    }

    /// Adds `key`; false when it was already there.
    mutating func insert(_ rawKey: UInt64) -> Bool {
        let key = rawKey == 0 ? 1 : rawKey       // 0 marks an empty slot
        let (found, slot) = tables.current.probe(key)
        if found || (tables.previous?.probe(key).found ?? false) { return false }
        add(key, at: slot)
        return true
    }

    /// Adds a key known not to be present (skips looking in the older table).
    mutating func insertNew(_ rawKey: UInt64) {
        let key = rawKey == 0 ? 1 : rawKey
        let (found, slot) = tables.current.probe(key)
        if !found { add(key, at: slot) }
    }

    private mutating func add(_ key: UInt64, at slot: Int) {
        // Value semantics: a copied reader must not share its window.
        if !isKnownUniquelyReferenced(&tables) { tables = tables.copy() }
        let current = tables.current
        if current.count == generation {
            tables.rotate(newSlots: min(fullSlots, Self.initialSlots))
            tables.current.store(key, at: tables.current.probe(key).slot)
        } else if (current.count + 1) * 2 > current.slots && current.slots < fullSlots {
            tables.growCurrent()
            tables.current.store(key, at: tables.current.probe(key).slot)
        } else {
            current.store(key, at: slot)
        }
    }
}

/// The window's two tables; a class so that a copied window can tell it must copy them.
final class KeyTables {
    private(set) var current: KeyTable
    private(set) var previous: KeyTable?

    init(slots: Int) { current = KeyTable(slots: slots) }
    private init(current: KeyTable, previous: KeyTable?) { self.current = current; self.previous = previous }

    func copy() -> KeyTables { KeyTables(current: current.copy(), previous: previous?.copy()) }

    /// The current table becomes the previous one, the old previous is dropped.
    func rotate(newSlots: Int) {
        previous = current
        current = KeyTable(slots: newSlots)
    }

    /// The current table at twice its size, its keys placed again.
    func growCurrent() { current = current.grown() }
}

/// One open-addressing table of hashed keys (0 = empty). Raw memory: this sits on the
/// per-event path, where array uniqueness and bounds checks showed up in profiles.
final class KeyTable {
    let storage: UnsafeMutablePointer<UInt64>
    let mask: Int
    private(set) var count = 0
    var slots: Int { mask + 1 }

    init(slots: Int) {
        mask = slots - 1
        storage = UnsafeMutablePointer<UInt64>.allocate(capacity: slots)
        storage.initialize(repeating: 0, count: slots)
    }

    deinit { storage.deallocate() }

    func copy() -> KeyTable {
        let c = KeyTable(slots: slots)
        c.storage.update(from: storage, count: slots)
        c.count = count
        return c
    }

    func grown() -> KeyTable {
        let g = KeyTable(slots: slots * 2)
        for i in 0..<slots where storage[i] != 0 { g.store(storage[i], at: g.probe(storage[i]).slot) }
        return g
    }

    /// Whether `key` is here, and the slot where it is or would go.
    @inline(__always)
    func probe(_ key: UInt64) -> (found: Bool, slot: Int) {
        var i = Int(truncatingIfNeeded: key) & mask
        while true {
            let v = storage[i]
            if v == key { return (true, i) }
            if v == 0 { return (false, i) }
            i = (i + 1) & mask
        }
    }

    /// Puts a key not yet here in its empty slot (from `probe`).
    @inline(__always)
    func store(_ key: UInt64, at slot: Int) {
        storage[slot] = key
        count += 1
    }
}
