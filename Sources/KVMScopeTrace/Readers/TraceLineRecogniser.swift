/// Whether one text line is a QEMU trace line, judged the way TextTraceReader reads it: a
/// log-backend (`TID@SEC.USEC:`, ISO 8601) or SystemTap (`PID@NS `) prefix, or a bare line
/// whose first word is an event the definitions know. For splitting a stream that mixes a
/// trace with other inputs (`cat console.log trace.log | kvmscope explain -`) by content.
public struct TraceLineRecogniser {
    private let decoder: TraceEventDecoder

    public init(catalog: TraceEventCatalog) {
        decoder = TraceEventDecoder(catalog: catalog, selection: .names([]))
    }

    public func isTraceLine(_ line: LineBytes) -> Bool { format(of: line) != nil }

    /// The text trace format the line is in (`qemu-log` or `qemu-stap-log`), or nil.
    public func format(of line: LineBytes) -> String? {
        guard let p = line.bytes.baseAddress, line.count > 0 else { return nil }
        let n = line.count
        let prefix = TraceLinePrefix.parse(p, n)
        switch prefix.style {
        case .logTimestamp: return Self.log
        case .systemTap: return Self.stap
        case .iso:
            // rsyslog's RFC 3339 stamp looks the same; its next words are `HOST TAG:`.
            return LogBackendTraceFormat.looksLikeSyslogTag(p, n, from: prefix.nameStart) ? nil : Self.log
        case .none:
            var e = 0
            while e < n, p[e] != 0x20 {
                guard TraceFormatString.isIdentifier(p[e]) else { return nil }
                e += 1
            }
            return e > 0 && decoder.nameIndex(p, e) >= 0 ? Self.log : nil
        }
    }

    static let log = LogBackendTraceFormat().name
    static let stap = SystemTapLogTraceFormat().name
}
