/// What a matcher sees: the line, where the kernel message starts, and where to say it came from.
public struct MatchContext {
    public let line: LineBytes
    public let start: Int
    public let lineNumber: Int
    public let time: GuestLogTime

    public init(line: LineBytes, start: Int, lineNumber: Int, time: GuestLogTime) {
        self.line = line; self.start = start; self.lineNumber = lineNumber; self.time = time
    }

    public var location: GuestLogLocation { GuestLogLocation(line: lineNumber, time: time) }

    /// The message text (after the timestamp), for evidence.
    public var message: String { line.string(from: start) }
}

/// A matcher's verdict on one line.
public enum MatchOutcome: Equatable {
    /// Not this matcher's family.
    case noMatch
    case event(GuestLogEvent)
    /// The line starts like this family's message but its fields cannot be read (cut off,
    /// corrupted): skipped and counted, never guessed.
    case malformed
}

extension LineBytes {
    /// A kernel device name (`vda`, `dm-0`, `nvme0n1p2`, `cciss!c0d0`, `?`) from `at` up to
    /// `stop`, a blank or the end. Nil when empty, over 32 bytes or not a plausible name.
    func deviceName(at: Int, stop: UInt8) -> (name: String, end: Int)? {
        var i = at
        while i < count {
            let c = self[i]
            if c == stop || c == 0x20 || c == 0x09 { break }
            let ok = (c >= 0x61 && c <= 0x7A) || (c >= 0x41 && c <= 0x5A) || (c >= 0x30 && c <= 0x39)
                || c == 0x2D || c == 0x5F || c == 0x2E || c == 0x21 || c == 0x3A || c == 0x3F || c == 0x2B
            if !ok { return nil }
            i += 1
            if i - at > 32 { return nil }
        }
        guard i > at else { return nil }
        return (string(at..<i), i)
    }
}
