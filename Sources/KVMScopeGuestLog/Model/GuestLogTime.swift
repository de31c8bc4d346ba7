/// When a guest kernel message was logged, as far as its line says.
///
/// A line can carry the kernel's own uptime stamp (`[  439.490934]`, `/dev/kmsg`'s microseconds),
/// a wall-clock time added by dmesg -T, journald or syslog, or both (kern.log keeps the uptime
/// inside the message). Uptime is kept in microseconds because that is what printk prints:
/// a Double parsed from "439.490934" would not always print back the same digits.
public struct GuestLogTime: Equatable, Hashable, Sendable {
    // Stored packed (24 bytes): the reader makes one for every line, and copies of a large
    // struct of optionals were a measurable share of the time per line.
    private var uptime: Int64 = .min
    private var wall = WallClockTime.none

    public var uptimeMicroseconds: Int64? {
        get { uptime == .min ? nil : uptime }
        set { uptime = newValue ?? .min }
    }

    public var wallClock: WallClockTime? {
        get { wall.isNone ? nil : wall }
        set { wall = newValue ?? .none }
    }

    public init(uptimeMicroseconds: Int64? = nil, wallClock: WallClockTime? = nil) {
        self.uptime = uptimeMicroseconds ?? .min
        self.wall = wallClock ?? .none
    }

    public static let unknown = GuestLogTime()

    /// Seconds since the guest booted, when the line says.
    public var uptimeSeconds: Double? { uptimeMicroseconds.map { Double($0) / 1_000_000 } }

    /// How finely the line's stamp resolves time, in µs: 1 for an uptime stamp (printk,
    /// /dev/kmsg and the journal's monotonic timestamps are all µs), else the wall clock's
    /// (1 000 000 for `Nov 22 14:42:17`, 1 for `14:42:17.123456`); nil with no stamp. With
    /// 1-second stamps, messages within one second are ordered only by their line order.
    public var precisionMicroseconds: Int? {
        if uptimeMicroseconds != nil { return 1 }
        return wallClock?.precisionMicroseconds
    }

    /// Which clocks the line gave: `uptime`, `wall-clock`, `both` or `none`.
    public var clocks: String {
        switch (uptimeMicroseconds != nil, wallClock != nil) {
        case (true, true): return "both"
        case (true, false): return "uptime"
        case (false, true): return "wall-clock"
        case (false, false): return "none"
        }
    }

    /// "439.490934 s", "Nov 22 14:42:17", both, or "time unknown".
    public var description: String {
        var parts: [String] = []
        if let us = uptimeMicroseconds { parts.append(Self.formatUptime(us) + " s") }
        if let wc = wallClock { parts.append(wc.description) }
        return parts.isEmpty ? "time unknown" : parts.joined(separator: ", ")
    }

    /// Uptime the way printk prints it, without padding: 439.490934.
    public static func formatUptime(_ us: Int64) -> String {
        let sign = us < 0 ? "-" : ""
        let a = us.magnitude
        let frac = String(a % 1_000_000)
        return sign + String(a / 1_000_000) + "." + String(repeating: "0", count: 6 - frac.count) + frac
    }
}

/// A wall-clock time as a log line printed it. Syslog and journalctl's short format print no
/// year and no zone; dmesg -T prints a year but no zone; ISO stamps print both. Nothing is
/// guessed: missing parts stay nil.
public struct WallClockTime: Equatable, Hashable, Sendable, CustomStringConvertible {
    // Packed into 16 bytes; the optional parts use sentinels (year 0, microsecond -1,
    // offset Int16.min) and month 0 marks "no wall clock" inside GuestLogTime.
    private var y: Int16
    private var mo: UInt8, d: UInt8, h: UInt8, mi: UInt8, s: UInt8
    /// Fraction digits the stamp printed (0 when it had none): fills what was padding.
    private var digits: UInt8
    private var us: Int32
    private var off: Int16

    public var year: Int? { get { y == 0 ? nil : Int(y) } set { y = Int16(clamping: newValue ?? 0) } }
    /// 1...12
    public var month: Int { get { Int(mo) } set { mo = UInt8(clamping: newValue) } }
    public var day: Int { get { Int(d) } set { d = UInt8(clamping: newValue) } }
    public var hour: Int { get { Int(h) } set { h = UInt8(clamping: newValue) } }
    public var minute: Int { get { Int(mi) } set { mi = UInt8(clamping: newValue) } }
    public var second: Int { get { Int(s) } set { s = UInt8(clamping: newValue) } }
    public var microsecond: Int? {
        get { us < 0 ? nil : Int(us) }
        set { us = Int32(clamping: newValue ?? -1); digits = newValue == nil ? 0 : max(digits, 1) }
    }
    /// Digits of second fraction the stamp printed, 0...6 (more are read as 6: µs is kept).
    public var fractionDigits: Int { Int(digits) }
    /// The stamp's resolution in µs: 1 000 000 for whole seconds, 1 000 for ms, 1 for µs.
    public var precisionMicroseconds: Int {
        var p = 1_000_000
        for _ in 0..<min(6, Int(digits)) { p /= 10 }
        return p
    }
    /// Seconds since 1970-01-01 UTC, when year and zone are known (within year 1...9999).
    public var unixSeconds: Double? {
        guard let year, let off = utcOffsetMinutes, (1...12).contains(month), day >= 1 else { return nil }
        // Days from civil (Howard Hinnant's algorithm), proleptic Gregorian.
        let yy = month <= 2 ? year - 1 : year
        let era = (yy >= 0 ? yy : yy - 399) / 400
        let yoe = yy - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        let secs = days * 86_400 + hour * 3600 + minute * 60 + second - off * 60
        return Double(secs) + Double(microsecond ?? 0) / 1_000_000
    }
    /// Offset from UTC in minutes, when the stamp had a zone (`Z`, `+01:00`, `+0100`).
    public var utcOffsetMinutes: Int? {
        get { off == .min ? nil : Int(off) }
        set { off = newValue.map { Int16(clamping: $0) } ?? .min }
    }

    /// `fractionDigits`: how many digits of fraction the stamp printed (default: 6 when
    /// `microsecond` is given, 0 otherwise).
    public init(year: Int?, month: Int, day: Int, hour: Int, minute: Int, second: Int,
                microsecond: Int? = nil, utcOffsetMinutes: Int? = nil, fractionDigits: Int? = nil) {
        y = Int16(clamping: year ?? 0)
        mo = UInt8(clamping: month); d = UInt8(clamping: day)
        h = UInt8(clamping: hour); mi = UInt8(clamping: minute); s = UInt8(clamping: second)
        digits = microsecond == nil ? 0 : UInt8(clamping: max(1, min(6, fractionDigits ?? 6)))
        us = Int32(clamping: microsecond ?? -1)
        off = utcOffsetMinutes.map { Int16(clamping: $0) } ?? .min
    }

    /// A UTC time from seconds and µs since the epoch (journal `__REALTIME_TIMESTAMP`,
    /// `journalctl -o short-unix`); nil outside years 1970...9999.
    public init?(unixMicroseconds seconds: UInt64, _ micro: UInt64) {
        // 253402300800 = 10000-01-01T00:00:00Z: beyond it the year does not fit the stamp formats.
        guard seconds < 253_402_300_800, micro < 1_000_000 else { return nil }
        let secs = Int(seconds)
        let days = secs / 86_400, rem = secs % 86_400
        // Civil from days (Howard Hinnant's algorithm), proleptic Gregorian.
        let z = days + 719_468
        let era = z / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        let y = yoe + era * 400 + (m <= 2 ? 1 : 0)
        self.init(year: y, month: m, day: d, hour: rem / 3600, minute: rem % 3600 / 60, second: rem % 60,
                  microsecond: Int(micro), utcOffsetMinutes: 0, fractionDigits: 6)
    }

    static let none = WallClockTime(year: nil, month: 0, day: 0, hour: 0, minute: 0, second: 0)
    var isNone: Bool { mo == 0 }

    static let monthNames = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// `2026-11-22T14:42:17.123456+01:00` when the year is known, `Nov 22 14:42:17` otherwise.
    public var description: String {
        func two(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
        var s: String
        if let year {
            s = "\(year)-\(two(month))-\(two(day))T\(two(hour)):\(two(minute)):\(two(second))"
        } else {
            s = "\(Self.monthNames[max(0, min(11, month - 1))]) \(two(day)) \(two(hour)):\(two(minute)):\(two(second))"
        }
        if let us = microsecond {
            // As many digits as the stamp printed: "14:42:17.123" stays millisecond-precise.
            let f = String(us)
            let padded = String(repeating: "0", count: max(0, 6 - f.count)) + f
            s += "." + padded.prefix(max(1, fractionDigits))
        }
        if let off = utcOffsetMinutes {
            if off == 0 { s += "Z" } else {
                let a = abs(off)
                s += (off < 0 ? "-" : "+") + two(a / 60) + ":" + two(a % 60)
            }
        }
        return s
    }
}

/// Where an event came from: the 1-based line number in the input, the line's time and the
/// boot of the guest it belongs to (1-based, see GuestBoot).
public struct GuestLogLocation: Equatable, Hashable, Sendable {
    public var line: Int
    public var time: GuestLogTime
    public var boot: Int

    public init(line: Int, time: GuestLogTime = .unknown, boot: Int = 1) {
        self.line = line
        self.time = time
        self.boot = boot
    }
}
