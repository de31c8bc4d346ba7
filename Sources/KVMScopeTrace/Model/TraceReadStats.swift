/// What a trace reader saw besides the events it delivered: nothing is dropped silently.
/// JSON keys are documented in the README (`input` object of `kvmscope trace --json`).
public struct TraceReadStats: Sendable, Equatable, Codable {
    /// Name of the detected or chosen format (`qemu-log`, `qemu-simpletrace`, `qemu-stap-log`).
    public var format: String
    public var bytes: Int64 = 0
    /// Text formats: lines read (simpletrace: 0).
    public var lines = 0
    /// Lines (simpletrace: records) that are QEMU trace events: a known event's name, or an
    /// unknown name behind a trace prefix (a newer QEMU's event). What `trace` understood.
    public var linesRecognised = 0
    /// Non-blank lines (simpletrace: records) that are not: QEMU warnings, other text,
    /// binary junk, overlong lines, bad timestamps, bare words that name no known event.
    public var linesSkipped = 0
    /// Events decoded and handed to the analysis or the dump.
    public var events = 0
    /// Known events not asked for (counted by name in `eventCounts`, not decoded).
    public var skippedEvents = 0
    /// Every known event seen, by name, decoded or not.
    public var eventCounts: [String: Int] = [:]
    /// Lines or records naming an event no definition knows (bounded list of names below).
    public var unknownEvents = 0
    public var unknownEventNames: [String: Int] = [:]
    /// Unknown events per `TraceCoverage.countedPatterns` pattern (`pci_nvme_*` …), exact even
    /// past the names kept in `unknownEventNames`: what the report's `coverage` counts them by.
    public var unknownEventsByPattern: [String: Int] = [:]
    /// Known events whose arguments did not match any of their definitions.
    public var malformedEvents = 0
    public var malformedEventNames: [String: Int] = [:]
    /// Text that is not a trace line (QEMU warnings, shell noise) and binary junk lines.
    public var otherLines = 0
    public var binaryLines = 0
    /// Lines over the 64 KiB limit, skipped whole.
    public var overlongLines = 0
    /// Lines or records whose timestamp is outside `TraceTimestamp.validNanoseconds` (beyond
    /// Int64 nanoseconds, before 1970): skipped whole rather than wrapped around.
    public var badTimestamps = 0
    /// simpletrace: records whose event id had no mapping record.
    public var unmappedEvents = 0
    /// simpletrace: "dropped events" records QEMU wrote when its trace buffer was full, and
    /// the number of events they say were lost.
    public var droppedEventRecords = 0
    public var droppedEvents: UInt64 = 0
    /// simpletrace: a record cut short by the end of the file.
    public var truncatedRecords = 0
    /// simpletrace: byte offset where the file stopped making sense (reading stopped there).
    public var corruptAtOffset: Int64?

    /// Names kept in `unknownEventNames` (the count stays exact).
    public static let maxUnknownNames = 50

    public init(format: String) { self.format = format }

    mutating func noteUnknown(_ name: String) {
        unknownEvents += 1
        if unknownEventNames[name] != nil || unknownEventNames.count < Self.maxUnknownNames {
            unknownEventNames[name, default: 0] += 1
        }
    }
}

extension TraceReadStats {
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(format, forKey: .format)
        try c.encode(bytes, forKey: .bytes)
        try c.encode(lines, forKey: .lines)
        try c.encode(linesRecognised, forKey: .linesRecognised)
        try c.encode(linesSkipped, forKey: .linesSkipped)
        try c.encode(events, forKey: .events)
        try c.encode(skippedEvents, forKey: .skippedEvents)
        try c.encode(eventCounts, forKey: .eventCounts)
        try c.encode(unknownEvents, forKey: .unknownEvents)
        try c.encode(unknownEventNames, forKey: .unknownEventNames)
        try c.encode(unknownEventsByPattern, forKey: .unknownEventsByPattern)
        try c.encode(malformedEvents, forKey: .malformedEvents)
        try c.encode(malformedEventNames, forKey: .malformedEventNames)
        try c.encode(otherLines, forKey: .otherLines)
        try c.encode(binaryLines, forKey: .binaryLines)
        try c.encode(overlongLines, forKey: .overlongLines)
        try c.encode(badTimestamps, forKey: .badTimestamps)
        try c.encode(unmappedEvents, forKey: .unmappedEvents)
        try c.encode(droppedEventRecords, forKey: .droppedEventRecords)
        try c.encode(droppedEvents, forKey: .droppedEvents)
        try c.encode(truncatedRecords, forKey: .truncatedRecords)
        try c.encode(corruptAtOffset, forKey: .corruptAtOffset)
    }
}
