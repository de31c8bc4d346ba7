/// How much of a sample is QEMU trace lines. `kvmscope trace` accepts any input that has one
/// (it is told the input is a trace); `explain`, which sorts unnamed files by kind, needs to
/// tell a trace from a file that merely mentions trace events (a command line, a README).
extension LogBackendTraceFormat {
    /// Share (0...1) of the sample's non-empty lines that are log-backend trace lines.
    public func traceLineShare(_ sample: UnsafeRawBufferPointer) -> Double {
        let lines = TraceFormatSniffer.lines(sample)
        var total = 0
        var trace = 0
        for line in lines where !line.isEmpty {
            total += 1
            line.withUnsafeBufferPointer { b in
                guard let p = b.baseAddress else { return }
                let parsed = TraceLinePrefix.parse(p, b.count)
                switch parsed.style {
                case .logTimestamp: trace += 1
                case .iso:
                    // rsyslog's RFC 3339 stamp looks like QEMU's ISO prefix; its next words are
                    // `HOST TAG[PID]:` where a trace has `event_name arg ...`.
                    if !Self.looksLikeSyslogTag(p, b.count, from: parsed.nameStart) { trace += 1 }
                case .systemTap: break
                case .none: if TraceFormatSniffer.looksLikeBareEvent(p, b.count) { trace += 1 }
                }
            }
        }
        return total == 0 ? 0 : Double(trace) / Double(total)
    }

    /// Whether the second word from `from` ends with `:` (syslog's `TAG:` / `TAG[PID]:`).
    static func looksLikeSyslogTag(_ p: UnsafePointer<UInt8>, _ n: Int, from: Int) -> Bool {
        var i = from
        while i < n, p[i] != 0x20 { i += 1 }          // HOST (or the event name)
        while i < n, p[i] == 0x20 { i += 1 }
        let start = i
        while i < n, p[i] != 0x20 { i += 1 }          // TAG[PID]: (or the first argument)
        return i > start && p[i - 1] == 0x3A
    }
}
