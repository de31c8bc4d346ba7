/// Picks the matcher for a kernel message from its first byte, so that the ordinary noise of a
/// kernel log (USB, ACPI, network...) costs a switch and at most one bounded memchr.
public enum GuestLogMatchers {
    public static func match(_ ctx: MatchContext) -> MatchOutcome {
        let line = ctx.line
        let s = ctx.start
        guard s < line.count else { return .noMatch }
        let first = line[s]
        var outcome = MatchOutcome.noMatch
        switch first {
        case UInt8(ascii: "B"):
            outcome = s + 1 < line.count && line[s + 1] == UInt8(ascii: "T") ? BtrfsMatcher.match(ctx)
                                                                          : BufferErrorMatcher.matchBuffer(ctx)
        case UInt8(ascii: "l"): outcome = BufferErrorMatcher.matchLostPageWrite(ctx)
        case UInt8(ascii: "E"), UInt8(ascii: "F"): outcome = ExtFilesystemMatcher.match(ctx)
        case UInt8(ascii: "J"), UInt8(ascii: "A"): outcome = JournalMatcher.match(ctx)
        case UInt8(ascii: "X"): outcome = XFSMatcher.match(ctx)
        case UInt8(ascii: "s"): outcome = SCSIMatcher.match(ctx)
        case UInt8(ascii: "v"): outcome = CapacityMatcher.match(ctx)
        case UInt8(ascii: "I"): outcome = HungTaskMatcher.match(ctx)
        case UInt8(ascii: "n"): outcome = NVMeMatcher.match(ctx)
        default: break
        }
        // Pattern match, not `!=`: Equatable would compare whole event payloads.
        if case .noMatch = outcome {} else { return outcome }

        // "name: ..." — a block error with its caller (≤5.15) or a rate-limit report.
        let id = line.identifier(at: s)
        if !id.isEmpty, line.matches(": ", at: id.upperBound) {
            let after = id.upperBound + 2
            if line.isDigit(at: after) { return SuppressedMatcher.match(ctx, function: id, at: after) }
            return BlockErrorMatcher.match(ctx, at: after, caller: id)
        }
        // 5.16+: the message starts with the error name ("I/O error, dev ...", "critical medium error, ...").
        if first == UInt8(ascii: "I") || (first >= 0x61 && first <= 0x7A) {
            return BlockErrorMatcher.match(ctx, at: s, caller: nil)
        }
        return .noMatch
    }
}
