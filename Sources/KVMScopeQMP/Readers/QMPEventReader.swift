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
    public private(set) var skippedLines = 0
    public private(set) var lineStats = LineStats()
    /// A QMP log is small (events are rare), but a runaway record must not eat memory.
    static let maxRecordBytes = 1 << 20

    public init() {}

    public mutating func read(_ stream: ByteStream, _ body: (QMPEvent) throws -> Void) throws {
        var splitter = LineSplitter()
        var pending: PendingVirshRecord?
        try splitter.forEachLine(in: stream) { line, number in
            if var p = pending {
                p.json += "\n" + line.string
                if p.json.utf8.count > Self.maxRecordBytes || p.isComplete {
                    pending = nil
                    if let event = p.finish() { try body(event) } else { skippedLines += p.lines + 1 }
                } else {
                    p.lines += 1
                    pending = p
                }
                return
            }
            let text = line.string.trimmingCharacters(in: .whitespaces)
            if text.hasPrefix("{") {
                if let event = Self.parseRawEvent(text, line: number) { try body(event) }
                else if !Self.isQMPNonEvent(text) { skippedLines += 1 }
                return
            }
            if let p = PendingVirshRecord(header: text, line: number) {
                if p.isComplete {
                    if let event = p.finish() { try body(event) } else { skippedLines += 1 }
                } else {
                    pending = p
                }
                return
            }
            if !text.isEmpty { skippedLines += 1 }
        }
        if let p = pending { skippedLines += p.lines + 1 }
        lineStats = splitter.stats
    }

    /// Reads every event of an input into an array (QMP logs are small).
    public static func readAll(_ stream: ByteStream) throws -> (events: [QMPEvent], skipped: Int) {
        var reader = QMPEventReader()
        var events: [QMPEvent] = []
        try reader.read(stream) { events.append($0) }
        return (events, reader.skippedLines)
    }

    static func decode(_ json: String) -> JSONValue? {
        try? JSONDecoder().decode(JSONValue.self, from: Data(json.utf8))
    }

    static func parseRawEvent(_ text: String, line: Int) -> QMPEvent? {
        guard let object = decode(text), let name = object["event"]?.stringValue else { return nil }
        var time: Double?
        if let ts = object["timestamp"], let s = ts["seconds"]?.numberValue {
            time = s + (ts["microseconds"]?.numberValue ?? 0) / 1e6
        }
        return QMPEvent(name: name, time: time, data: object["data"], line: line)
    }

    /// The greeting, command replies and errors are part of the stream, not junk.
    static func isQMPNonEvent(_ text: String) -> Bool {
        guard let object = decode(text) else { return false }
        return object["QMP"] != nil || object["return"] != nil || object["error"] != nil
    }
}

/// A virsh record whose JSON may continue over the following lines (`--pretty`).
struct PendingVirshRecord {
    let name: String
    let time: Double?
    let line: Int
    var json: String
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
        self.time = time
        self.line = line
        json = String(rest[sep.upperBound...])
        if json == "(null)" { json = "<null>" }   // glibc's printf of a NULL details string
    }

    /// `<null>` (no data) or a JSON object whose braces balance.
    var isComplete: Bool {
        if json == "<null>" { return true }
        var depth = 0
        var inString = false
        var escaped = false
        for c in json.utf8 {
            if escaped { escaped = false; continue }
            if inString {
                if c == UInt8(ascii: "\\") { escaped = true } else if c == UInt8(ascii: "\"") { inString = false }
                continue
            }
            switch c {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"): depth -= 1
            default: break
            }
        }
        return depth <= 0 && !json.isEmpty
    }

    func finish() -> QMPEvent? {
        if json == "<null>" { return QMPEvent(name: name, time: time, data: nil, line: line) }
        guard let data = QMPEventReader.decode(json) else { return nil }
        return QMPEvent(name: name, time: time, data: data, line: line)
    }

    /// virTimeStringNowRaw: `2026-11-22 14:42:17.123+0000` (UTC).
    static func parseVirshTimestamp(_ s: String) -> Double? {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyy-MM-dd HH:mm:ss.SSSZ"
        return f.date(from: s)?.timeIntervalSince1970
    }
}

/// Detection for the registry: raw QMP JSON lines or virsh event records.
public struct QMPEventFormat: InputFormat {
    public let name = "qmp"
    public let kind = InputKind.qmpEvents
    public let summary = "QMP events: raw JSON lines, or `virsh qemu-monitor-event [--pretty] [--timestamp]`"
    public init() {}
    public func recognizes(_ sample: UnsafeRawBufferPointer) -> Bool {
        let text = String(decoding: sample.prefix(8192), as: UTF8.self)
        return text.contains("\"event\"") && text.contains("\"timestamp\"")
            || text.contains("{\"QMP\"")
            || (text.contains("event ") && text.contains(" for domain '"))
    }
}
