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
                switch TraceLinePrefix.parse(p, b.count).style {
                case .logTimestamp, .iso: trace += 1
                case .systemTap: break
                case .none: if TraceFormatSniffer.looksLikeBareEvent(p, b.count) { trace += 1 }
                }
            }
        }
        return total == 0 ? 0 : Double(trace) / Double(total)
    }
}
