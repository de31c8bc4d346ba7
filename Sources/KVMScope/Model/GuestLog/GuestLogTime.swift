/// When a guest kernel message was logged, as far as its line says.
///
/// A line can carry the kernel's own uptime stamp (`[  439.490934]`, `/dev/kmsg`'s microseconds),
/// a wall-clock time added by dmesg -T, journald or syslog, or both (kern.log keeps the uptime
/// inside the message). Uptime is kept in microseconds because that is what printk prints:
/// a Double parsed from "439.490934" would not always print back the same digits.
public struct GuestLogTime: Equatable, Hashable, Sendable {
    public var uptimeMicroseconds: Int64?
    public var wallClock: WallClockTime?

    public init(uptimeMicroseconds: Int64? = nil, wallClock: WallClockTime? = nil) {
        self.uptimeMicroseconds = uptimeMicroseconds
        self.wallClock = wallClock
    }

    public static let unknown = GuestLogTime()

    /// Seconds since the guest booted, when the line says.
    public var uptimeSeconds: Double? { uptimeMicroseconds.map { Double($0) / 1_000_000 } }

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
    public var year: Int?
    public var month: Int          // 1...12
    public var day: Int
    public var hour: Int
    public var minute: Int
    public var second: Int
    public var microsecond: Int?
    /// Offset from UTC in minutes, when the stamp had a zone (`Z`, `+01:00`, `+0100`).
    public var utcOffsetMinutes: Int?

    public init(year: Int?, month: Int, day: Int, hour: Int, minute: Int, second: Int,
                microsecond: Int? = nil, utcOffsetMinutes: Int? = nil) {
        self.year = year; self.month = month; self.day = day
        self.hour = hour; self.minute = minute; self.second = second
        self.microsecond = microsecond; self.utcOffsetMinutes = utcOffsetMinutes
    }

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
            let f = String(us)
            s += "." + String(repeating: "0", count: max(0, 6 - f.count)) + f
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

/// Where an event came from: the 1-based line number in the input and the line's time.
public struct GuestLogLocation: Equatable, Hashable, Sendable {
    public var line: Int
    public var time: GuestLogTime

    public init(line: Int, time: GuestLogTime = .unknown) {
        self.line = line
        self.time = time
    }
}
