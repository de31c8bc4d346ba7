/// What a trace reader saw besides the events it delivered: nothing is dropped silently.
/// JSON keys are documented in the README (`input` object of `kvmscope trace --json`).
public struct TraceReadStats: Sendable, Equatable, Codable {
    /// Name of the detected or chosen format (`qemu-log`, `qemu-simpletrace`, `qemu-stap-log`).
    public var format: String
    public var bytes: Int64 = 0
    /// Text formats: lines read (simpletrace: 0).
    public var lines = 0
    /// Events decoded and handed to the analysis or the dump.
    public var events = 0
    /// Known events not asked for (counted by name in `eventCounts`, not decoded).
    public var skippedEvents = 0
    /// Every known event seen, by name, decoded or not.
    public var eventCounts: [String: Int] = [:]
    /// Lines or records naming an event no definition knows (bounded list of names below).
    public var unknownEvents = 0
    public var unknownEventNames: [String: Int] = [:]
    /// Known events whose arguments did not match any of their definitions.
    public var malformedEvents = 0
    public var malformedEventNames: [String: Int] = [:]
    /// Text that is not a trace line (QEMU warnings, shell noise) and binary junk lines.
    public var otherLines = 0
    public var binaryLines = 0
    /// Lines over the 64 KiB limit, skipped whole.
    public var overlongLines = 0
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
