/// The prefixes QEMU's text trace outputs put before `name args`:
/// - log backend, no timestamps: nothing;
/// - log backend with `-msg timestamp=on` (QEMU ≤ 5.2 always, 6.0–10.0 with the option):
///   `TID@SECONDS.MICROS:` — TID is `qemu_get_thread_id()`, time from gettimeofday;
/// - log backend of QEMU ≥ 10.1 with timestamps: `2025-07-21T18:43:28.089797Z ` (ISO 8601);
/// - SystemTap `log` tapset (`qemu-trace-stap`, scripts/tracetool/format/log_stap.py):
///   `PID@NANOSECONDS ` — no dot, no colon.
///
/// A stamp that does not fit TraceTimestamp's range (non-negative Int64 nanoseconds: 1970 to
/// April 2262) is not wrapped: the line parses with `badTimestamp` set, and the reader skips it.
enum TraceLinePrefix {
    enum Style: UInt8 { case none, logTimestamp, iso, systemTap }

    struct Parsed {
        var style: Style
        var timestamp: TraceTimestamp?
        var thread: Int64?
        /// Index where the event name starts.
        var nameStart: Int
        /// The prefix has a timestamp, but outside `TraceTimestamp.validNanoseconds`.
        var badTimestamp = false
    }

    @inline(__always)
    static func parse(_ p: UnsafePointer<UInt8>, _ n: Int) -> Parsed {
        if let parsed = parseLogTimestamp(p, n) { return parsed }
        return parseGeneral(p, n)
    }

    /// Every style, byte by byte (`parseLogTimestamp` reads the commonest one faster).
    @inline(__always)
    static func parseGeneral(_ p: UnsafePointer<UInt8>, _ n: Int) -> Parsed {
        guard n > 0, p[0] &- 0x30 < 10 else { return Parsed(style: .none, nameStart: 0) }
        var i = 0
        var a: UInt64 = 0
        while i < n, p[i] &- 0x30 < 10, i < 19 { a = a &* 10 &+ UInt64(p[i] &- 0x30); i += 1 }
        if i < n, p[i] == 0x40 {                                    // '@'
            var j = i + 1
            var b: UInt64 = 0
            let bStart = j
            while j < n, p[j] &- 0x30 < 10, j - bStart < 19 { b = b &* 10 &+ UInt64(p[j] &- 0x30); j += 1 }
            guard j > bStart, j < n else { return Parsed(style: .none, nameStart: 0) }
            if p[j] == 0x2E {                                       // '.': SEC.USEC:
                var k = j + 1
                var frac: Int64 = 0
                var digits = 0
                while k < n, p[k] &- 0x30 < 10 {
                    if digits < 9 { frac = frac * 10 + Int64(p[k] &- 0x30); digits += 1 }
                    k += 1
                }
                guard digits > 0, k < n, p[k] == 0x3A else { return Parsed(style: .none, nameStart: 0) }
                while digits < 9 { frac *= 10; digits += 1 }
                // b has at most 19 digits, so it fits UInt64; seconds * 1e9 + frac must fit Int64.
                guard let ns = TraceTimestamp.nanoseconds(seconds: b, fraction: frac) else {
                    return Parsed(style: .logTimestamp, thread: Int64(truncatingIfNeeded: a), nameStart: k + 1, badTimestamp: true)
                }
                return Parsed(style: .logTimestamp, timestamp: TraceTimestamp(nanoseconds: ns, clock: .wall),
                              thread: Int64(truncatingIfNeeded: a), nameStart: k + 1)
            }
            if p[j] == 0x20 {                                       // ' ': SystemTap PID@NS
                guard b <= UInt64(Int64.max) else {
                    return Parsed(style: .systemTap, thread: Int64(truncatingIfNeeded: a), nameStart: j + 1, badTimestamp: true)
                }
                return Parsed(style: .systemTap,
                              timestamp: TraceTimestamp(nanoseconds: Int64(b), clock: .wall),
                              thread: Int64(truncatingIfNeeded: a), nameStart: j + 1)
            }
            return Parsed(style: .none, nameStart: 0)
        }
        if i == 4, n > 20, p[4] == 0x2D, let (ns, end) = iso8601(p, n) {
            guard let ns else { return Parsed(style: .iso, nameStart: end, badTimestamp: true) }
            return Parsed(style: .iso, timestamp: TraceTimestamp(nanoseconds: ns, clock: .wall), nameStart: end)
        }
        return Parsed(style: .none, nameStart: 0)
    }

    /// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM) ` → nanoseconds since the epoch (nil when outside
    /// `TraceTimestamp.validNanoseconds`: before 1970, after April 2262), index after the space.
    static func iso8601(_ p: UnsafePointer<UInt8>, _ n: Int) -> (Int64?, Int)? {
        func num(_ at: Int, _ len: Int) -> Int? {
            guard at + len <= n else { return nil }
            var v = 0
            for k in at..<(at + len) {
                let d = p[k] &- 0x30
                guard d < 10 else { return nil }
                v = v * 10 + Int(d)
            }
            return v
        }
        guard let y = num(0, 4), p[4] == 0x2D, let mo = num(5, 2), p[7] == 0x2D, let d = num(8, 2),
              p[10] == 0x54 || p[10] == 0x20, let h = num(11, 2), p[13] == 0x3A, let mi = num(14, 2),
              p[16] == 0x3A, let s = num(17, 2), (1...12).contains(mo), (1...31).contains(d) else { return nil }
        var i = 19
        var frac: Int64 = 0
        if i < n, p[i] == 0x2E {
            i += 1
            var digits = 0
            while i < n, p[i] &- 0x30 < 10 {
                if digits < 9 { frac = frac * 10 + Int64(p[i] &- 0x30); digits += 1 }
                i += 1
            }
            while digits < 9 { frac *= 10; digits += 1 }
        }
        var offsetSeconds = 0
        if i < n, p[i] == 0x5A { i += 1 }
        else if i < n, p[i] == 0x2B || p[i] == 0x2D, let oh = num(i + 1, 2), i + 3 < n, p[i + 3] == 0x3A,
                let om = num(i + 4, 2) {
            offsetSeconds = (oh * 3600 + om * 60) * (p[i] == 0x2D ? -1 : 1)
            i += 6
        } else { return nil }
        guard i < n, p[i] == 0x20 else { return nil }
        let days = daysFromCivil(y, mo, d)
        // Four-digit years keep this within ±3.2e11 s: no overflow before the range check.
        let seconds = Int64(days) * 86_400 + Int64(h * 3600 + mi * 60 + s - offsetSeconds)
        guard seconds >= 0 else { return (nil, i + 1) }
        return (TraceTimestamp.nanoseconds(seconds: UInt64(seconds), fraction: frac), i + 1)
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    static func daysFromCivil(_ year: Int, _ month: Int, _ day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }
}
