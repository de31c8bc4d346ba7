import Foundation

/// Reads QMP events from the two places users get them:
/// - the raw stream as a QMP client records it: one JSON object per line (greeting,
///   command replies and events mixed; only events are kept);
/// - libvirt's `virsh qemu-monitor-event [--pretty] [--timestamp]`, whose records are
///   `event NAME at SECS.MICROS for domain 'D': DETAILS` or, with --timestamp,
///   `YYYY-MM-DD HH:MM:SS.mmm+0000: event NAME for domain 'D': DETAILS`, where DETAILS is
///   the event's data as JSON (several lines with --pretty) or `<null>` (`(null)` and an
///   unquoted domain name in the first, 2014, release).
/// Anything else is skipped and counted.
public struct QMPEventReader {
    /// Lines that are neither an event, a QMP greeting/reply, nor part of a virsh record.
    public private(set) var skippedLines = 0
    /// Events (counted once, whatever their lines) whose timestamp is no host clock reading
    /// (QMPTimestamp): skipped, their lines also counted in `skippedLines`.
    public private(set) var badTimestamps = 0
    /// Events handed to the caller.
    public private(set) var events = 0
    /// Lines that are QMP: events (raw, or every line of a virsh record), the greeting and
    /// command replies. With `skippedLines` and blank lines, every line of the input.
    public private(set) var linesRecognised = 0
    /// Non-blank lines that were not read as QMP (the same count as `skippedLines`).
    public var linesSkipped: Int { skippedLines }
    /// virsh records that never closed (cut off by the next record or the end of the input).
    public private(set) var truncatedRecords = 0
    /// Bytes the virsh record scanner looked at: at most each byte of the input once.
    public private(set) var recordBytesScanned = 0
    public private(set) var lineStats = LineStats()
    /// Where each QEMU run after the first begins in a raw stream: the line of the greeting that
    /// follows a SHUTDOWN (QEMU exits on SHUTDOWN unless run with -no-shutdown; a greeting with
    /// no SHUTDOWN before it is the same QEMU's monitor connected again, as after `record`).
    public private(set) var runStartLines: [Int] = []
    /// Greetings (`{"QMP": ...}`): monitor connections, whichever QEMU they were to.
    public private(set) var greetings = 0
    private var shutdownSinceGreeting = false
    /// A QMP log is small (events are rare), but a runaway record must not eat memory.
    static let maxRecordBytes = 1 << 20

    public init() {}

    /// Calls `body` with each event in input order; nothing is kept between events but the one
    /// virsh record being read (at most `maxRecordBytes`).
    public mutating func read(_ stream: ByteStream, _ body: (QMPEvent) throws -> Void) throws {
        var splitter = LineSplitter()
        var pending: PendingVirshRecord?
        func finish(_ p: PendingVirshRecord) throws {
            recordBytesScanned += p.scanner.bytesScanned
            if p.badTime {
                badTimestamps += 1
                skippedLines += p.lines + 1
            } else if let event = p.finish() {
                events += 1
                linesRecognised += p.lines + 1
                try body(event)
            } else {
                skippedLines += p.lines + 1
            }
        }
        try splitter.forEachLine(in: stream) { line, number in
            if let p = pending, Self.startsRecord(line) {
                // A record cut short (virsh killed mid-print, a log rotated): what follows is a
                // new record, not more of it, and must not be swallowed with it.
                pending = nil
                truncatedRecords += 1
                recordBytesScanned += p.scanner.bytesScanned
                skippedLines += p.lines + 1
                if p.badTime { badTimestamps += 1 }
            }
            if var p = pending {
                pending = nil                  // p is now the record's only owner: appends do not copy it
                p.append(line.bytes)
                p.lines += 1
                if p.byteCount > Self.maxRecordBytes || p.isComplete { try finish(p) } else { pending = p }
                return
            }
            let text = Self.trimmed(line)
            if text.hasPrefix("{") {
                switch Self.parseRaw(text, line: number, run: runStartLines.count) {
                case let .event(event):
                    events += 1; linesRecognised += 1
                    if event.name == "SHUTDOWN" { shutdownSinceGreeting = true }
                    try body(event)
                case .badTimestamp: badTimestamps += 1; skippedLines += 1
                case .notEvent:
                    switch Self.nonEventKind(text) {
                    case .greeting?:
                        linesRecognised += 1
                        if greetings > 0 && shutdownSinceGreeting { runStartLines.append(number) }
                        greetings += 1
                        shutdownSinceGreeting = false
                    case .reply?: linesRecognised += 1
                    case nil: skippedLines += 1
                    }
                }
                return
            }
            if let p = PendingVirshRecord(header: text, line: number) {
                if p.isComplete { try finish(p) } else { pending = p }
                return
            }
            if !text.isEmpty { skippedLines += 1 }
        }
        if let p = pending {
            truncatedRecords += 1
            recordBytesScanned += p.scanner.bytesScanned
            skippedLines += p.lines + 1
            if p.badTime { badTimestamps += 1 }
        }
        lineStats = splitter.stats
    }

    /// The line without leading and trailing blanks, as `trimmingCharacters(in: .whitespaces)`
    /// gives it; ASCII blanks are cut from the bytes (NSString's trim cost a fifth of the read),
    /// a non-ASCII byte at either end leaves it to Foundation (Unicode spaces).
    static func trimmed(_ line: LineBytes) -> String {
        let b = line.bytes
        var lo = 0, hi = b.count
        while lo < hi, b[lo] == 0x20 || b[lo] == 0x09 { lo += 1 }
        while hi > lo, b[hi - 1] == 0x20 || b[hi - 1] == 0x09 { hi -= 1 }
        if lo < hi, b[lo] >= 0x80 || b[hi - 1] >= 0x80 {
            return line.string.trimmingCharacters(in: .whitespaces)
        }
        return String(decoding: UnsafeBufferPointer(rebasing: b[lo..<hi]), as: UTF8.self)
    }

    /// Whether a line begins a new record rather than continuing a `--pretty` one: libvirt
    /// indents every continuation line of the JSON but the final `}`, and JSON strings hold no
    /// raw newline, so a line at column 0 that is a virsh header (`event NAME …`,
    /// `YYYY-MM-DD …: event NAME …`) or a raw QMP object (`{"…`) starts something new.
    static func startsRecord(_ line: LineBytes) -> Bool {
        guard line.count >= 6 else { return false }
        let b = line.bytes
        if b[0] == UInt8(ascii: "{") { return b[1] == UInt8(ascii: "\"") }
        if line.find("event ") == 0 { return PendingVirshRecord(header: line.string, line: 0) != nil }
        if b[0] >= 0x30 && b[0] <= 0x39, line.find(": event ") != nil {
            return PendingVirshRecord(header: line.string, line: 0) != nil
        }
        return false
    }

    /// Reads every event of an input into an array (for tests and small inputs; explain streams).
    public static func readAll(_ stream: ByteStream) throws -> (events: [QMPEvent], skipped: Int) {
        var reader = QMPEventReader()
        var events: [QMPEvent] = []
        try reader.read(stream) { events.append($0) }
        return (events, reader.skippedLines)
    }

    static func decode(_ json: String) -> JSONValue? {
        JSONValueParser.parse(json)
    }

    /// Bytes that are not UTF-8 are no JSON (RFC 8259 section 8.1), as JSONDecoder said.
    static func decode(_ json: [UInt8]) -> JSONValue? {
        String(validating: json, as: UTF8.self).flatMap(JSONValueParser.parse)
    }

    enum RawLine { case event(QMPEvent), badTimestamp, notEvent }

    static func parseRaw(_ text: String, line: Int, run: Int = 0) -> RawLine {
        guard let object = decode(text), let name = object["event"]?.stringValue else { return .notEvent }
        var time: Double?
        if let ts = object["timestamp"], let s = ts["seconds"]?.numberValue {
            guard let t = QMPTimestamp.seconds(s, microseconds: ts["microseconds"]?.numberValue ?? 0) else { return .badTimestamp }
            time = t
        }
        return .event(QMPEvent(name: name, time: time, data: object["data"], line: line, run: run))
    }

    static func parseRawEvent(_ text: String, line: Int) -> QMPEvent? {
        if case let .event(e) = parseRaw(text, line: line) { return e }
        return nil
    }

    enum NonEvent { case greeting, reply }

    /// The greeting, command replies and errors are part of the stream, not junk.
    static func nonEventKind(_ text: String) -> NonEvent? {
        guard let object = decode(text) else { return nil }
        if object["QMP"] != nil { return .greeting }
        return object["return"] != nil || object["error"] != nil ? .reply : nil
    }

    static func isQMPNonEvent(_ text: String) -> Bool { nonEventKind(text) != nil }
}

/// A virsh record whose JSON may continue over the following lines (`--pretty`).
struct PendingVirshRecord {
    let name: String
    let time: Double?
    let domain: String
    /// The header's time is no host clock reading (QMPTimestamp): the record is skipped whole.
    let badTime: Bool
    let line: Int
    /// The JSON so far (lines joined with "\n"); nil for `<null>`.
    private var json: [UInt8]?
    private(set) var scanner = JSONBoundaryScanner()
    /// Lines after the header (the record spans `lines + 1`).
    var lines = 0

    init?(header: String, line: Int) {
        var rest = Substring(header)
        var time: Double?
        if let r = rest.range(of: ": event "), rest.hasPrefix("20") || rest.first?.isNumber == true {
            time = Self.parseVirshTimestamp(String(rest[..<r.lowerBound]))
            guard time != nil else { return nil }
            rest = rest[r.upperBound...]
        } else if rest.hasPrefix("event ") {
            rest = rest.dropFirst(6)
        } else {
            return nil
        }
        guard let space = rest.firstIndex(of: " ") else { return nil }
        name = String(rest[..<space])
        // `virsh event` (libvirt's own domain events, not QMP) quotes the name: `event
        // 'io-error' for domain 'D': PATH (ALIAS) report` (tools/virsh-domain-event.c);
        // qemu-monitor-event prints the QMP name bare.
        guard !name.hasPrefix("'") else { return nil }
        rest = rest[space...].drop(while: { $0 == " " })
        if rest.hasPrefix("at ") {
            let value = rest.dropFirst(3).prefix(while: { $0.isNumber || $0 == "." })
            time = Double(value)
            guard time != nil else { return nil }
            rest = rest.dropFirst(3 + value.count).drop(while: { $0 == " " })
        }
        // libvirt ≥ 1.2.x quotes the domain ('vm1'); the first release (2014) did not.
        guard rest.hasPrefix("for domain ") else { return nil }
        rest = rest.dropFirst("for domain ".count)
        let separator = rest.hasPrefix("'") ? "': " : ": "
        guard let sep = rest.range(of: separator) else { return nil }
        self.domain = String(rest[..<sep.lowerBound].dropFirst(separator == "': " ? 1 : 0))
        self.time = time
        self.badTime = time.map { !QMPTimestamp.isPlausible($0) } ?? false
        self.line = line
        let details = rest[sep.upperBound...]
        if details == "<null>" || details == "(null)" {        // (null): glibc's printf of a NULL details string
            json = nil
            scanner.scan(Array("<null>".utf8))
        } else {
            let bytes = Array(details.utf8)
            json = bytes
            scanner.scan(bytes)
        }
    }

    /// Adds the next line of the record; only its bytes are scanned.
    mutating func append(_ line: UnsafeBufferPointer<UInt8>) {
        guard json != nil else { return }
        let newline: [UInt8] = [0x0A]
        json!.append(0x0A)
        json!.append(contentsOf: line)
        scanner.scan(newline)
        scanner.scan(line)
    }

    var byteCount: Int { scanner.bytesScanned }

    /// `<null>` (no data) or a JSON value whose braces and brackets balance.
    var isComplete: Bool { json == nil || scanner.isComplete }

    func finish() -> QMPEvent? {
        guard let json else { return QMPEvent(name: name, time: time, data: nil, line: line, domain: domain) }
        guard let data = QMPEventReader.decode(json) else { return nil }
        return QMPEvent(name: name, time: time, data: data, line: line, domain: domain)
    }

    /// virTimeStringNowRaw: `2026-11-22 14:42:17.123+0000` (UTC; libvirt src/util/virtime.c
    /// prints exactly this shape, milliseconds and a ±HHMM zone). Read by hand, field by field
    /// with ranges checked: Foundation's DateFormatter hands the text to ICU, which dies of
    /// SIGFPE on a long run of fraction digits (found by fuzz-qmp-virsh).
    static func parseVirshTimestamp(_ s: String) -> Double? {
        let b = Array(s.utf8)
        guard b.count == 28, b[4] == 0x2D, b[7] == 0x2D, b[10] == 0x20, b[13] == 0x3A, b[16] == 0x3A,
              b[19] == 0x2E, b[23] == 0x2B || b[23] == 0x2D else { return nil }
        func number(_ from: Int, _ count: Int) -> Int? {
            var v = 0
            for c in b[from..<(from + count)] {
                guard c >= 0x30 && c <= 0x39 else { return nil }
                v = v * 10 + Int(c - 0x30)
            }
            return v
        }
        guard let year = number(0, 4), let month = number(5, 2), let day = number(8, 2),
              let hour = number(11, 2), let minute = number(14, 2), let second = number(17, 2),
              let millis = number(20, 3), let zoneHours = number(24, 2), let zoneMinutes = number(26, 2),
              (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year),
              hour <= 23, minute <= 59, second <= 59, zoneHours <= 23, zoneMinutes <= 59 else { return nil }
        let offset = (zoneHours * 3600 + zoneMinutes * 60) * (b[23] == 0x2D ? -1 : 1)
        let seconds = daysFromCivil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset
        return Double(seconds) + Double(millis) / 1000
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (years 0...9999 here): count days
    /// in eras of 400 years, with March as the first month so that leap days come last.
    static func daysFromCivil(_ year: Int, _ month: Int, _ day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }
}

/// Detection for the registry: raw QMP JSON lines or virsh event records.
struct QMPEventFormat: InputFormat {
    public let name = "qmp"
    public let kind = InputKind.qmpEvents
    public let summary = "QMP events: raw JSON lines, or `virsh qemu-monitor-event [--pretty] [--timestamp]`"
    public init() {}
    public func recognizes(_ sample: UnsafeRawBufferPointer) -> Bool {
        let text = String(decoding: sample.prefix(8192), as: UTF8.self)
        return text.contains("\"event\"") && text.contains("\"timestamp\"")
            || text.contains("{\"QMP\"")
            // A virsh qemu-monitor-event header; not `virsh event`'s `event 'lifecycle' for domain`.
            || text.components(separatedBy: "event ").dropFirst().contains { !$0.hasPrefix("'") && $0.contains(" for domain '") }
    }
}
