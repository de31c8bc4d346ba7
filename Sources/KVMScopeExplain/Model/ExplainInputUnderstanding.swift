/// How much of one input explain understood, for the report's `inputs.understood[]`: an input
/// of which little was recognised is said so, instead of its silence being taken as evidence.
public struct ExplainInputUnderstanding: Sendable, Encodable, Equatable {
    /// `guest-log`, `qemu-trace` or `qmp-events`.
    public var role: String
    /// The input's name (path, `<stdin>`, or `<stdin> (QEMU trace lines)` for a split stream).
    public var source: String
    /// `gzip`, `xz`, `zstd`, or null when read as it is.
    public var compression: String?
    /// Lines read (simpletrace: 0; its records are counted below).
    public var lines: Int
    /// Lines (simpletrace: records) of the role's kind: kernel messages with a recognised
    /// stamp, QEMU trace events, QMP messages.
    public var linesRecognised: Int
    /// Non-blank lines (records) that were not.
    public var linesSkipped: Int
    /// The mixed input this role's lines were split from by content (null when given whole).
    public var splitFrom: String?

    public init(role: String, source: String, compression: String? = nil, lines: Int, linesRecognised: Int,
                linesSkipped: Int, splitFrom: String? = nil) {
        self.role = role; self.source = source; self.compression = compression; self.lines = lines
        self.linesRecognised = linesRecognised; self.linesSkipped = linesSkipped; self.splitFrom = splitFrom
    }

    enum CodingKeys: String, CodingKey { case role, source, compression, lines, linesRecognised, linesSkipped, splitFrom }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(role, forKey: .role)
        try c.encode(source, forKey: .source)
        try c.encode(compression, forKey: .compression)
        try c.encode(lines, forKey: .lines)
        try c.encode(linesRecognised, forKey: .linesRecognised)
        try c.encode(linesSkipped, forKey: .linesSkipped)
        try c.encode(splitFrom, forKey: .splitFrom)
    }

    /// "guest log console.log: 394 lines, 120 recognised, 274 skipped".
    public var summary: String {
        let what: String
        switch role {
        case "guest-log": what = "guest log"
        case "qemu-trace": what = "QEMU trace"
        case "host-kernel-log": what = "host kernel log"
        default: what = "QMP events"
        }
        var s = "\(what) \(source)"
        if let compression { s += " (\(compression))" }
        if lines == 0 && linesRecognised + linesSkipped > 0 {
            s += ": \(linesRecognised) records recognised, \(linesSkipped) skipped"
        } else {
            s += ": \(lines) lines, \(linesRecognised) recognised, \(linesSkipped) skipped"
        }
        return s
    }
}
