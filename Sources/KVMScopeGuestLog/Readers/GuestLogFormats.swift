/// The guest-log timestamp styles as registry formats. GuestLogReader recognises the style of
/// every line by itself (files mix them); these entries let `GuestLogFormats.list.detect(.guestLog, ...)`
/// say what an input mostly looks like, and list the styles in `--help` and the README.
struct GuestKernelLogFormat: InputFormat {
    public let style: KernelLogStyle
    public var name: String { "kernel-log/\(style.rawValue)" }
    public var kind: InputKind { .guestLog }

    public var summary: String {
        switch style {
        case .printk: return "guest kernel log with printk stamps: dmesg, serial console (`[  439.490934] msg`)"
        case .printkCaller: return "printk stamps with CONFIG_PRINTK_CALLER (`[    4.100000][  T123] msg`)"
        case .dmesgWallClock: return "dmesg -T (`[Sat Nov 22 14:42:17 2026] msg`)"
        case .dmesgDelta: return "dmesg -d (`[  439.490934 <    0.000010>] msg`: the uptime is kept, the delta not)"
        case .dmesgWallClockDelta: return "dmesg -T -d (`[Sat Nov 22 14:42:17 2026 <    0.000010>] msg`: the wall clock is kept)"
        case .dmesgRelTime: return "dmesg -e (`[Nov22 14:42] msg`, `[  +0.000010] msg`): read without a time"
        case .dmesgISO: return "dmesg --time-format=iso (`2026-11-22T14:42:17,123456+00:00 msg`)"
        case .kmsg: return "/dev/kmsg records (`6,339,5140900,-;msg`)"
        case .journal: return "journalctl -k short/short-precise/short-iso/short-monotonic (`Nov 22 14:42:17 host kernel: msg`)"
        case .syslog: return "syslog/kern.log with the printk stamp inside (`Nov 22 14:42:17 host kernel: [  439.49] msg`)"
        case .bare: return "kernel messages without stamps (dmesg -t, journalctl -o cat, pasted excerpts)"
        case .journalJSON: return "journalctl -k -o json, json-pretty, json-seq (`{\"_TRANSPORT\":\"kernel\",\"MESSAGE\":...}`)"
        case .journalExport: return "journalctl -k -o export (`__CURSOR=...`, `MESSAGE=...`, records separated by an empty line)"
        }
    }

    public init(style: KernelLogStyle) { self.style = style }

    /// True when some complete line of the sample is a kernel message stamped in this style.
    public func recognizes(_ sample: UnsafeRawBufferPointer) -> Bool {
        let bytes = sample.bindMemory(to: UInt8.self)
        if style == .journalJSON || style == .journalExport {
            // A kernel entry's fields (the journal writes "_TRANSPORT":"kernel" / _TRANSPORT=kernel).
            var r = GuestLogReader()
            var sink = GuestLogEventCollector()
            var start = 0, checked = 0
            while start < bytes.count, checked < 400 {
                guard let nl = bytes[start...].firstIndex(of: 0x0A) else { break }
                r.consume(line: LineBytes(UnsafeBufferPointer(rebasing: bytes[start..<nl])), number: checked + 1, into: &sink)
                start = nl + 1
                checked += 1
            }
            r.finish(into: &sink)
            return (r.stats.styles[style] ?? 0) > 0
        }
        var start = 0
        var previousWasKmsg = false
        var checked = 0
        while start < bytes.count, checked < 200 {
            guard let nl = bytes[start...].firstIndex(of: 0x0A) else { break }   // whole lines only
            let line = LineBytes(UnsafeBufferPointer(rebasing: bytes[start..<nl]))
            if case .kernel(let p) = KernelLinePrefixParser.parse(line, previousWasKmsg: previousWasKmsg) {
                if p.style == style { return style != .bare || GuestLogMatchers.match(
                    MatchContext(line: line, start: p.messageStart, lineNumber: 0, time: p.time)) != .noMatch }
                previousWasKmsg = p.style == .kmsg
            }
            start = nl + 1
            checked += 1
        }
        return false
    }
}
