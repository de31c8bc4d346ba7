/// How a line of a guest kernel log was stamped. Detected per line, so a file may mix them
/// (a serial console capture followed by a `dmesg`, a kern.log with lines from other programs).
public enum KernelLogStyle: String, CaseIterable, Sendable, Codable {
    /// `[  439.490934] msg` — printk's own stamp (`[%5lu.%06lu]`): console, dmesg, dmesg -x, dmesg -r.
    case printk = "dmesg"
    /// `[    4.100000][   T123] msg` (console) or `[    4.100000] [  T123] msg` (dmesg):
    /// CONFIG_PRINTK_CALLER adds the thread (T) or CPU (C) that printed.
    case printkCaller = "printk-caller"
    /// `[Sat Nov 22 14:42:17 2026] msg` — dmesg -T.
    case dmesgWallClock = "dmesg-T"
    /// `[    3.210000 <    0.000010>] msg` — dmesg -d (`[%5ld.%06ld <%12.06f>] `, util-linux
    /// dmesg.c): printk's stamp, then the time since the previous message, which is not kept.
    case dmesgDelta = "dmesg-delta"
    /// `[Wed Dec  2 10:00:03 2026 <    0.000010>] msg` — dmesg -T -d: dmesg -T's wall clock, then
    /// the time since the previous message (not kept).
    case dmesgWallClockDelta = "dmesg-T-delta"
    /// `[Dec 2 10:00] msg` (`[%b%e %H:%M] `) for the first message of a minute, then
    /// `[  +0.000010] msg` (`[  %+8.06f] `, the time since the previous message) — dmesg -e
    /// (--reltime, and -H). Read without a time: the full stamp is only minute-precise and
    /// truncated (the message was at some second of it), a relative one only adds to that, and
    /// neither is an uptime. The lines are kernel messages all the same.
    case dmesgRelTime = "dmesg-reltime"
    /// `2026-11-22T14:42:17,123456+00:00 msg` — dmesg --time-format=iso.
    case dmesgISO = "dmesg-iso"
    /// `6,339,5140900,-;msg` — /dev/kmsg records (prio,seq,usec,flags;message).
    case kmsg = "kmsg"
    /// `Nov 22 14:42:17 host kernel: msg` — journalctl -k (short, short-precise, short-iso,
    /// short-monotonic `[  439.490934] host kernel: msg`).
    case journal = "journal"
    /// `Nov 22 14:42:17 host kernel: [  439.490934] msg` — syslog/kern.log (RFC 3164 or
    /// RFC 3339 stamps) with printk's stamp still inside the message.
    case syslog = "syslog"
    /// `{"__REALTIME_TIMESTAMP":"…","_BOOT_ID":"…","MESSAGE":"…",…}` — journalctl -o json,
    /// json-pretty, json-seq, json-sse (systemd's Journal JSON Format).
    case journalJSON = "journal-json"
    /// `MESSAGE=…` fields, records separated by an empty line — journalctl -o export.
    case journalExport = "journal-export"
    /// No recognised stamp: dmesg -t, a pasted excerpt, or serial-console text that is not a
    /// kernel message at all. Matchers still look at it; nothing about it is assumed.
    case bare = "bare"
}

/// Where the kernel message starts on a line and what the prefix said about time.
public struct KernelLinePrefix: Equatable, Sendable {
    public var style: KernelLogStyle
    /// Index of the first byte of the kernel message.
    public var messageStart: Int
    public var time: GuestLogTime

    public init(style: KernelLogStyle, messageStart: Int, time: GuestLogTime = .unknown) {
        self.style = style; self.messageStart = messageStart; self.time = time
    }
}

/// The per-line prefix parser. Each style is tried only when the line's first byte allows it,
/// so a line costs a few byte comparisons before its message is looked at.
public enum KernelLinePrefixParser {
    public enum Result: Equatable {
        /// A kernel message (possibly `bare`).
        case kernel(KernelLinePrefix)
        /// A line that is positively not a kernel message: a syslog/journal line from another
        /// program, a /dev/kmsg record from user space or a kmsg continuation line.
        case notKernel
    }

    /// `previousWasKmsg`: /dev/kmsg continuation lines (` SUBSYSTEM=block`) start with a space.
    /// Inlined, like `bracketed`: returned through memory, the prefix (a packed time of bytes
    /// and shorts) was read back in wider loads than it was written, a store-forwarding stall
    /// on every line that cost more cycles than the parsing.
    @inline(__always)
    public static func parse(_ line: LineBytes, previousWasKmsg: Bool = false) -> Result {
        let n = line.count
        guard n > 0 else { return .kernel(KernelLinePrefix(style: .bare, messageStart: 0)) }
        var i = 0
        // dmesg -r: "<3>[  439.490934] msg"; RFC 5424: "<4>1 2026-11-22T14:42:17.123456+00:00 host kernel - - - msg"
        if line[0] == UInt8(ascii: "<"), let (pri, end) = line.decimal(at: 1), end < n, line[end] == UInt8(ascii: ">") {
            i = end + 1
            if line.matches("1 ", at: i) { return rfc5424(line, i + 2, facility: pri >> 3) }
        }
        // dmesg -x: "kern  :err   : [  439.490934] msg" (facility and level padded to 6)
        if i < n, line[i] == UInt8(ascii: "k"), line.matches("kern  :", at: i),
           let colon = line.find(byte: UInt8(ascii: ":"), in: (i + 7)..<(i + 16)), line.matches(": ", at: colon) {
            i = colon + 2
        }
        // An excerpt pasted from journalctl or syslog with the date cut off: "kernel: [  439.490934] msg".
        if i < n, line[i] == UInt8(ascii: "k"), line.matches("kernel: ", at: i) {
            i = line.skipBlanks(i + 8)
        }
        guard i < n else { return .kernel(KernelLinePrefix(style: .bare, messageStart: i)) }
        let c = line[i]
        if c == UInt8(ascii: "[") {
            if let p = bracketed(line, i) { return .kernel(p) }
        } else if c &- 0x30 <= 9 {
            if let r = kmsg(line, i) { return r }
            if let r = iso(line, i) { return r }
            if let r = unixSeconds(line, i) { return r }
        } else if c >= 0x41 && c <= 0x5A {       // 'A'...'Z': "Nov 22 14:42:17 host kernel: "
            if let r = rfc3164(line, i) { return r }
            if let r = weekdayISO(line, i) { return r }
        } else if c == 0x20 && previousWasKmsg {
            return .notKernel
        }
        return .kernel(KernelLinePrefix(style: .bare, messageStart: i))
    }

    // MARK: - [uptime], [uptime][caller], [wall clock]

    @inline(__always)
    static func bracketed(_ line: LineBytes, _ start: Int) -> KernelLinePrefix? {
        let j = line.skipBlanks(start + 1)
        if line.isDigit(at: j) {
            guard let (us, stampEnd) = printkStamp(line, j) ?? otherUptimeStamp(line, j), stampEnd < line.count else { return nil }
            var end = stampEnd
            var style = KernelLogStyle.printk
            if line[end] != UInt8(ascii: "]") {
                // dmesg -d: " <    0.000010>]" after the uptime (out of line: not printk's shape).
                guard let e = deltaSuffix(line, end) else { return nil }
                end = e
                style = .dmesgDelta
            }
            var i = end + 1
            // CONFIG_PRINTK_CALLER: "[   T123]" right after, or after one space (dmesg).
            let k = line.skipBlanks(i)
            if k < line.count, line[k] == UInt8(ascii: "["), k - i <= 1 {
                let m = line.skipBlanks(k + 1)
                if m < line.count, line[m] == UInt8(ascii: "T") || line[m] == UInt8(ascii: "C"),
                   let (_, e) = line.decimal(at: m + 1), e < line.count, line[e] == UInt8(ascii: "]") {
                    i = e + 1
                    if style == .printk { style = .printkCaller }
                }
            }
            if i < line.count, line[i] == 0x20 { i += 1 }
            // journalctl -o short-monotonic: "[  439.490934] host kernel: msg"
            if let after = kernelTag(line, i) { i = after; style = .journal }
            return KernelLinePrefix(style: style, messageStart: i, time: GuestLogTime(uptimeMicroseconds: us))
        }
        return bracketedWallClock(line, j)
    }

    /// An uptime stamp of another shape than printk's (fewer or more fraction digits, 13+ digits).
    @inline(never)
    static func otherUptimeStamp(_ line: LineBytes, _ j: Int) -> (value: Int64, end: Int)? {
        line.fixedPoint(at: j, fractionDigits: 6)
    }

    /// dmesg -d's ` <%12.06f>]` at `at` (right after the uptime): the index of its `]`, or nil.
    /// The delta itself is not kept (it is the time since the previous message).
    @inline(never)
    static func deltaSuffix(_ line: LineBytes, _ at: Int) -> Int? {
        guard line.matches(" <", at: at) else { return nil }
        var k = line.skipBlanks(at + 2)
        if line.matches("-", at: k) { k += 1 }
        guard line.isDigit(at: k), let (_, end) = line.fixedPoint(at: k, fractionDigits: 6),
              line.matches(">]", at: end) else { return nil }
        return end + 1
    }

    /// What follows a bracket that does not open an uptime (`j` after the bracket and any
    /// blanks): dmesg -T "[Sat Nov 22 14:42:17 2026] " (and -T -d "[... 2026 <    0.000010>] "),
    /// dmesg -e "[Nov22 14:42] " and "[  +0.000010] ". Out of line, so that `bracketed` stays
    /// small enough to inline into `parse`.
    @inline(never)
    static func bracketedWallClock(_ line: LineBytes, _ j: Int) -> KernelLinePrefix? {
        guard j < line.count else { return nil }
        if line[j] == UInt8(ascii: "+") { return relativeStamp(line, j) }
        return ctimeStamp(line, j) ?? shortCtimeStamp(line, j)
    }

    /// dmesg -T's `%a %b %e %H:%M:%S %Y`, with -d's ` <delta>` before the `]`.
    static func ctimeStamp(_ line: LineBytes, _ j: Int) -> KernelLinePrefix? {
        guard j + 24 <= line.count, line[j + 3] == 0x20,
              let month = monthNumber(line, j + 4), line[j + 7] == 0x20 else { return nil }
        var d = line.skipBlanks(j + 8)
        guard let (day, dayEnd) = line.decimal(at: d), line.matches(" ", at: dayEnd),
              let (h, m, s, _, afterTime) = clock(line, dayEnd + 1), line.matches(" ", at: afterTime),
              let (year, yearEnd) = line.decimal(at: afterTime + 1), yearEnd < line.count else { return nil }
        var close = yearEnd
        var style = KernelLogStyle.dmesgWallClock
        if line[yearEnd] != UInt8(ascii: "]") {
            guard let e = deltaSuffix(line, yearEnd) else { return nil }
            close = e
            style = .dmesgWallClockDelta
        }
        d = close + 1
        if d < line.count, line[d] == 0x20 { d += 1 }
        let wc = WallClockTime(year: Int(year), month: month, day: Int(day), hour: h, minute: m, second: s)
        return KernelLinePrefix(style: style, messageStart: d, time: GuestLogTime(wallClock: wc))
    }

    /// dmesg -e's full stamp, `%b%e %H:%M` ("Nov22 14:42", "Dec 2 10:00"): no time kept (see
    /// KernelLogStyle.dmesgRelTime).
    static func shortCtimeStamp(_ line: LineBytes, _ j: Int) -> KernelLinePrefix? {
        guard monthNumber(line, j) != nil else { return nil }
        let d = line.skipBlanks(j + 3)
        guard d - j <= 4, let (day, dayEnd) = line.decimal(at: d), dayEnd - d <= 2, (1...31).contains(day),
              line.matches(" ", at: dayEnd), let h = twoDigits(line, dayEnd + 1), h < 24,
              line.matches(":", at: dayEnd + 3), let m = twoDigits(line, dayEnd + 4), m < 60,
              line.matches("]", at: dayEnd + 6) else { return nil }
        var i = dayEnd + 7
        if i < line.count, line[i] == 0x20 { i += 1 }
        return KernelLinePrefix(style: .dmesgRelTime, messageStart: i)
    }

    /// dmesg -e's relative stamp, `+%8.06f` (`j` at the `+`): no time kept (the time since the
    /// previous message is not an uptime).
    static func relativeStamp(_ line: LineBytes, _ j: Int) -> KernelLinePrefix? {
        guard line.isDigit(at: j + 1), let (_, end) = line.fixedPoint(at: j + 1, fractionDigits: 6),
              end > j + 2, line[end - 7] == UInt8(ascii: "."), line.matches("]", at: end) else { return nil }
        var i = end + 1
        if i < line.count, line[i] == 0x20 { i += 1 }
        return KernelLinePrefix(style: .dmesgRelTime, messageStart: i)
    }

    // MARK: - /dev/kmsg "prio,seq,usec,flags[,...];msg"

    static func kmsg(_ line: LineBytes, _ start: Int) -> KernelLinePrefixParser.Result? {
        guard let (prio, e1) = line.decimal(at: start), line.matches(",", at: e1),
              let (_, e2) = line.decimal(at: e1 + 1), line.matches(",", at: e2),
              let (usec, e3) = line.decimal(at: e2 + 1), line.matches(",", at: e3),
              let semi = line.find(byte: UInt8(ascii: ";"), in: (e3 + 1)..<(e3 + 64)) else { return nil }
        // Facility 0 is the kernel; user space writes to /dev/kmsg with its own facility.
        if prio >> 3 != 0 { return .notKernel }
        guard usec <= UInt64(Int64.max) else { return nil }
        return .kernel(KernelLinePrefix(style: .kmsg, messageStart: semi + 1,
                                        time: GuestLogTime(uptimeMicroseconds: Int64(usec))))
    }

    // MARK: - ISO 8601: dmesg --time-format=iso, journalctl -o short-iso, rsyslog RFC 3339

    static func iso(_ line: LineBytes, _ start: Int) -> KernelLinePrefixParser.Result? {
        guard let (wc, i, commaFraction) = isoTime(line, start) else { return nil }
        // dmesg's ISO stamp uses a comma before the fraction and is followed by the message itself;
        // journald and rsyslog use a dot (or no fraction) and are followed by "host tag: ".
        if commaFraction {
            return .kernel(KernelLinePrefix(style: .dmesgISO, messageStart: i, time: GuestLogTime(wallClock: wc)))
        }
        return hostAndTag(line, i, wallClock: wc)
    }

    /// The ISO 8601 stamp at `start`: its time, where what follows it starts, and whether the
    /// fraction had a comma (dmesg's).
    @inline(__always)
    static func isoTime(_ line: LineBytes, _ start: Int) -> (WallClockTime, Int, Bool)? {
        guard let (year, ye) = line.decimal(at: start), ye - start == 4, line.matches("-", at: ye),
              let (month, me) = line.decimal(at: ye + 1), me - ye == 3, line.matches("-", at: me),
              let (day, de) = line.decimal(at: me + 1), de - me == 3, de < line.count,
              line[de] == UInt8(ascii: "T") || line[de] == 0x20,
              (1...12).contains(month),
              let (h, m, s, fraction, afterTime) = clock(line, de + 1) else { return nil }
        var i = afterTime
        var commaFraction = false
        var micro: Int? = nil
        var digits = 0
        if let f = fraction { micro = f.value; commaFraction = f.comma; digits = f.digits }
        var offset: Int? = nil
        if i < line.count, line[i] == UInt8(ascii: "Z") { offset = 0; i += 1 }
        else if i < line.count, line[i] == UInt8(ascii: "+") || line[i] == UInt8(ascii: "-") {
            // "+01:00" (RFC 3339) or "+0100" (journalctl short-iso)
            let negative = line[i] == UInt8(ascii: "-")
            guard let hh = twoDigits(line, i + 1) else { return nil }
            var end = i + 3
            var mm = 0
            if line.matches(":", at: end), let v = twoDigits(line, end + 1) { mm = v; end += 3 }
            else if let v = twoDigits(line, end) { mm = v; end += 2 }
            offset = (negative ? -1 : 1) * (hh * 60 + mm)
            i = end
        }
        guard i < line.count, line[i] == 0x20 else { return nil }
        i += 1
        let wc = WallClockTime(year: Int(year), month: Int(month), day: Int(day), hour: h, minute: m, second: s,
                               microsecond: micro, utcOffsetMinutes: offset, fractionDigits: digits)
        return (wc, i, commaFraction)
    }

    // MARK: - journalctl -o short-unix: "1795363566.123456 host kernel: "

    /// systemd's logs-show.c prints `%10llu.%06llu` seconds.µs since the epoch (UTC).
    static func unixSeconds(_ line: LineBytes, _ start: Int) -> KernelLinePrefixParser.Result? {
        guard let (wc, i) = unixTime(line, start) else { return nil }
        return hostAndTag(line, i, wallClock: wc)
    }

    @inline(__always)
    static func unixTime(_ line: LineBytes, _ start: Int) -> (WallClockTime, Int)? {
        guard let (secs, se) = line.decimal(at: start), se - start >= 9, se - start <= 11,
              line.matches(".", at: se), let (usec, ue) = line.decimal(at: se + 1), ue - se == 7,
              line.matches(" ", at: ue), let wc = WallClockTime(unixMicroseconds: secs, usec) else { return nil }
        return (wc, ue + 1)
    }

    // MARK: - journalctl -o short-full / with-unit: "Sun 2026-11-22 14:42:17 UTC host kernel: "

    /// format_timestamp()'s `%a %Y-%m-%d %H:%M:%S %Z`: the zone is an abbreviation, which
    /// says the offset only for UTC/GMT (others, like CET, are ambiguous without the tz database).
    static func weekdayISO(_ line: LineBytes, _ start: Int) -> KernelLinePrefixParser.Result? {
        guard let (wc, i) = weekdayISOTime(line, start) else { return nil }
        return hostAndTag(line, i, wallClock: wc)
    }

    @inline(__always)
    static func weekdayISOTime(_ line: LineBytes, _ start: Int) -> (WallClockTime, Int)? {
        guard start + 24 <= line.count, line[start + 3] == 0x20, line.isDigit(at: start + 4),
              let (year, ye) = line.decimal(at: start + 4), ye - start == 8, line.matches("-", at: ye),
              let (month, me) = line.decimal(at: ye + 1), me - ye == 3, (1...12).contains(month), line.matches("-", at: me),
              let (day, de) = line.decimal(at: me + 1), de - me == 3, line.matches(" ", at: de),
              let (h, m, s, fraction, afterTime) = clock(line, de + 1), line.matches(" ", at: afterTime) else { return nil }
        let zone = line.token(at: afterTime + 1)
        guard !zone.isEmpty, zone.count <= 8, zone.upperBound < line.count else { return nil }
        let utc = line.matches("UTC ", at: zone.lowerBound) || line.matches("GMT ", at: zone.lowerBound)
        let wc = WallClockTime(year: Int(year), month: Int(month), day: Int(day), hour: h, minute: m, second: s,
                               microsecond: fraction?.value, utcOffsetMinutes: utc ? 0 : nil, fractionDigits: fraction?.digits)
        return (wc, zone.upperBound + 1)
    }

    // MARK: - RFC 5424: "<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG"

    static func rfc5424(_ line: LineBytes, _ start: Int, facility: UInt64) -> KernelLinePrefixParser.Result {
        // RFC 5424 §6: the header is space-separated; "-" is the nil value.
        var wc: WallClockTime? = nil
        var i = start
        if line.matches("- ", at: i) { i += 2 } else if case .kernel(let p)? = iso5424(line, i) {
            wc = p.time.wallClock; i = p.messageStart
        } else { return .kernel(KernelLinePrefix(style: .bare, messageStart: start)) }
        let host = line.token(at: i)
        let app = line.token(at: host.upperBound + 1)
        guard !host.isEmpty, !app.isEmpty, app.upperBound < line.count else {
            return .kernel(KernelLinePrefix(style: .bare, messageStart: start))
        }
        let isKernel = facility == 0 && line.matches("kernel ", at: app.lowerBound)
        if !isKernel { return .notKernel }
        let proc = line.token(at: app.upperBound + 1)
        let msgid = line.token(at: proc.upperBound + 1)
        var j = msgid.upperBound + 1
        if j < line.count, line[j] == UInt8(ascii: "[") {
            // Structured data: "[id k=\"v\"]..." — skip to the last "] ".
            while j < line.count, line[j] == UInt8(ascii: "[") {
                guard let close = line.find(byte: UInt8(ascii: "]"), from: j) else { break }
                j = close + 1
            }
        } else if line.matches("-", at: j) { j += 1 }
        if j < line.count, line[j] == 0x20 { j += 1 }
        // Some relays keep printk's stamp in the message, as kern.log does.
        var time = wc.map { GuestLogTime(wallClock: $0) } ?? .unknown
        var style = KernelLogStyle.journal
        if j < line.count, line[j] == UInt8(ascii: "["), let inner = bracketed(line, j), inner.time.uptimeMicroseconds != nil {
            time.uptimeMicroseconds = inner.time.uptimeMicroseconds
            j = inner.messageStart
            style = .syslog
        }
        return .kernel(KernelLinePrefix(style: style, messageStart: min(j, line.count), time: time))
    }

    /// The RFC 3339 stamp of an RFC 5424 header, up to the blank after it.
    static func iso5424(_ line: LineBytes, _ start: Int) -> KernelLinePrefixParser.Result? {
        // iso() reads "stamp host tag: "; here only the stamp is wanted.
        guard let (year, ye) = line.decimal(at: start), ye - start == 4, line.matches("-", at: ye),
              let (month, me) = line.decimal(at: ye + 1), me - ye == 3, (1...12).contains(month), line.matches("-", at: me),
              let (day, de) = line.decimal(at: me + 1), de - me == 3, line.matches("T", at: de),
              let (h, m, s, fraction, afterTime) = clock(line, de + 1) else { return nil }
        var i = afterTime
        var offset: Int? = nil
        if line.matches("Z", at: i) { offset = 0; i += 1 }
        else if i < line.count, line[i] == UInt8(ascii: "+") || line[i] == UInt8(ascii: "-"),
                let hh = twoDigits(line, i + 1), line.matches(":", at: i + 3), let mm = twoDigits(line, i + 4) {
            offset = (line[i] == UInt8(ascii: "-") ? -1 : 1) * (hh * 60 + mm)
            i += 6
        }
        guard line.matches(" ", at: i) else { return nil }
        let wc = WallClockTime(year: Int(year), month: Int(month), day: Int(day), hour: h, minute: m, second: s,
                               microsecond: fraction?.value, utcOffsetMinutes: offset, fractionDigits: fraction?.digits)
        return .kernel(KernelLinePrefix(style: .journal, messageStart: i + 1, time: GuestLogTime(wallClock: wc)))
    }

    // MARK: - RFC 3164: "Nov 22 14:42:17 host kernel: "

    static func rfc3164(_ line: LineBytes, _ start: Int) -> KernelLinePrefixParser.Result? {
        guard let (wc, i) = rfc3164Time(line, start) else { return nil }
        return hostAndTag(line, i, wallClock: wc)
    }

    @inline(__always)
    static func rfc3164Time(_ line: LineBytes, _ start: Int) -> (WallClockTime, Int)? {
        guard let month = monthNumber(line, start), line.matches(" ", at: start + 3) else { return nil }
        let d = line.skipBlanks(start + 4)
        guard let (day, de) = line.decimal(at: d), de - d <= 2, line.matches(" ", at: de),
              let (h, m, s, fraction, afterTime) = clock(line, de + 1), line.matches(" ", at: afterTime)
        else { return nil }
        let wc = WallClockTime(year: nil, month: month, day: Int(day), hour: h, minute: m, second: s,
                               microsecond: fraction?.value, fractionDigits: fraction?.digits)
        return (wc, afterTime + 1)
    }

    /// The wall clock of a syslog or journal line from any program (`Dec  1 10:00:03 host
    /// multipathd[812]: msg`, and the ISO, short-unix and short-full styles), which `parse`
    /// calls not a kernel line: user-space storage daemons' messages keep their time.
    public static func programLineTime(_ line: LineBytes) -> GuestLogTime? {
        guard !line.isEmpty else { return nil }
        let c = line[0]
        if c &- 0x30 <= 9 {
            if let (wc, _, comma) = isoTime(line, 0), !comma { return GuestLogTime(wallClock: wc) }
            if let (wc, _) = unixTime(line, 0) { return GuestLogTime(wallClock: wc) }
        } else if c >= 0x41 && c <= 0x5A {
            if let (wc, _) = rfc3164Time(line, 0) { return GuestLogTime(wallClock: wc) }
            if let (wc, _) = weekdayISOTime(line, 0) { return GuestLogTime(wallClock: wc) }
        }
        return nil
    }

    /// After a syslog/journal time: "host kernel: msg" is a kernel line (with printk's stamp
    /// possibly inside, as kern.log keeps it); "host other[123]: msg" is not.
    static func hostAndTag(_ line: LineBytes, _ start: Int, wallClock: WallClockTime) -> KernelLinePrefixParser.Result? {
        guard let afterTag = kernelTag(line, start) else {
            // A well-formed "host tag: " from another program.
            let host = line.token(at: start)
            if !host.isEmpty, host.upperBound < line.count {
                let tag = line.token(at: host.upperBound + 1, stop: UInt8(ascii: ":"))
                if !tag.isEmpty, line.matches(": ", at: tag.upperBound) || line.matches(":", at: tag.upperBound) {
                    return .notKernel
                }
            }
            return nil
        }
        var time = GuestLogTime(wallClock: wallClock)
        var i = afterTag
        var style = KernelLogStyle.journal
        if i < line.count, line[i] == UInt8(ascii: "["), let inner = bracketed(line, i), inner.time.uptimeMicroseconds != nil {
            time.uptimeMicroseconds = inner.time.uptimeMicroseconds
            i = inner.messageStart
            style = .syslog
        }
        return .kernel(KernelLinePrefix(style: style, messageStart: i, time: time))
    }

    /// "host kernel: " (or "host kernel[0]: ") starting at `start`: index after it, or nil.
    @inline(__always)
    static func kernelTag(_ line: LineBytes, _ start: Int) -> Int? {
        // journalctl --no-hostname
        if line.matches("kernel: ", at: start) { return start + 8 }
        // The host: what token(at:) reads (up to a blank or tab), scanned in place. This runs
        // for every printk-stamped line (short-monotonic puts "host kernel: " after the stamp),
        // so a line whose second word does not start with "k" is turned down before any
        // string comparison.
        guard start >= 0, let base = line.bytes.baseAddress else { return nil }
        let n = line.count
        var e = start
        // Eight bytes at a time while none is a blank or a tab (the classic "has a zero byte"
        // test on x ^ 0x2020…, x ^ 0x0909…), then byte by byte.
        let raw = UnsafeRawPointer(base)
        while e &+ 8 <= n {
            let x = raw.loadUnaligned(fromByteOffset: e, as: UInt64.self)
            let a = x ^ 0x2020_2020_2020_2020, b = x ^ 0x0909_0909_0909_0909
            let zeroA = (a &- 0x0101_0101_0101_0101) & ~a & 0x8080_8080_8080_8080
            let zeroB = (b &- 0x0101_0101_0101_0101) & ~b & 0x8080_8080_8080_8080
            if zeroA | zeroB != 0 { break }
            e &+= 8
        }
        while e < n, base[e] != 0x20, base[e] != 0x09 { e += 1 }
        guard e > start, e + 1 < n, base[e] == 0x20, base[e + 1] == UInt8(ascii: "k") else { return nil }
        let t = e + 1
        if line.matches("kernel: ", at: t) { return t + 8 }
        if line.matches("kernel:", at: t), t + 7 == line.count { return t + 7 }
        if line.matches("kernel[", at: t), let close = line.find(byte: UInt8(ascii: "]"), in: (t + 7)..<(t + 20)),
           line.matches("]: ", at: close) { return close + 3 }
        return nil
    }

    // MARK: - pieces

    /// printk's own stamp, `%5lu.%06lu` followed by `]` (kernel/printk/printk.c print_time()),
    /// read in one pass: what `fixedPoint(at:fractionDigits: 6)` returns for it, without its
    /// general loops (scale, overflow guard, any number of fraction digits). It ran on every
    /// line. Nil for any other shape (fewer or more fraction digits, a comma, 13+ digits of
    /// seconds), which the caller reads with `fixedPoint` as before.
    @inline(__always)
    static func printkStamp(_ line: LineBytes, _ at: Int) -> (value: Int64, end: Int)? {
        guard at >= 0, let base = line.bytes.baseAddress else { return nil }
        let n = line.count
        var i = at
        var whole: Int64 = 0
        // At most 12 digits: below Int64.max / 1_000_000 (fixedPoint's bound), so the
        // arithmetic cannot overflow and is written unchecked (the checks were this loop's cost).
        let end = min(n, at &+ 12)
        while i < end {
            let d = base[i] &- 0x30
            if d > 9 { break }
            whole = whole &* 10 &+ Int64(d)
            i &+= 1
        }
        guard i > at, i + 7 < n, base[i] == UInt8(ascii: "."), base[i + 7] == UInt8(ascii: "]") else { return nil }
        var frac: Int64 = 0
        for k in 1...6 {
            let d = base[i &+ k] &- 0x30
            if d > 9 { return nil }
            frac = frac &* 10 &+ Int64(d)
        }
        return (whole &* 1_000_000 &+ frac, i + 7)
    }

    @inline(__always)
    static func twoDigits(_ line: LineBytes, _ at: Int) -> Int? {
        guard line.isDigit(at: at), line.isDigit(at: at + 1) else { return nil }
        return Int(line[at] - 0x30) * 10 + Int(line[at + 1] - 0x30)
    }

    /// "Jan".."Dec" at `at` → 1...12.
    @inline(__always)
    static func monthNumber(_ line: LineBytes, _ at: Int) -> Int? {
        guard at + 3 <= line.count else { return nil }
        let a = line[at], b = line[at + 1], c = line[at + 2]
        switch (a, b, c) {
        case (0x4A, 0x61, 0x6E): return 1   // Jan
        case (0x46, 0x65, 0x62): return 2   // Feb
        case (0x4D, 0x61, 0x72): return 3   // Mar
        case (0x41, 0x70, 0x72): return 4   // Apr
        case (0x4D, 0x61, 0x79): return 5   // May
        case (0x4A, 0x75, 0x6E): return 6   // Jun
        case (0x4A, 0x75, 0x6C): return 7   // Jul
        case (0x41, 0x75, 0x67): return 8   // Aug
        case (0x53, 0x65, 0x70): return 9   // Sep
        case (0x4F, 0x63, 0x74): return 10  // Oct
        case (0x4E, 0x6F, 0x76): return 11  // Nov
        case (0x44, 0x65, 0x63): return 12  // Dec
        default: return nil
        }
    }

    /// "hh:mm:ss" with an optional ".ffffff" or ",ffffff" fraction.
    static func clock(_ line: LineBytes, _ at: Int)
        -> (h: Int, m: Int, s: Int, fraction: (value: Int, comma: Bool, digits: Int)?, end: Int)? {
        guard let (h, he) = line.decimal(at: at), he - at == 2, h < 24, line.matches(":", at: he),
              let (m, me) = line.decimal(at: he + 1), me - he == 3, m < 60, line.matches(":", at: me),
              let (s, se) = line.decimal(at: me + 1), se - me == 3, s <= 60 else { return nil }
        var fraction: (value: Int, comma: Bool, digits: Int)? = nil
        var end = se
        if se < line.count, line[se] == UInt8(ascii: ".") || line[se] == UInt8(ascii: ","), line.isDigit(at: se + 1) {
            var v = 0, digits = 0, i = se + 1
            while i < line.count, line.isDigit(at: i) {
                if digits < 6 { v = v * 10 + Int(line[i] - 0x30); digits += 1 }
                i += 1
            }
            let printed = digits
            while digits < 6 { v *= 10; digits += 1 }
            fraction = (v, line[se] == UInt8(ascii: ","), printed)
            end = i
        }
        return (Int(h), Int(m), Int(s), fraction, end)
    }
}
