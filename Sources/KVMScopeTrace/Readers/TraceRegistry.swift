extension InputKind {
    /// QEMU's trace events (`kvmscope trace`, explain's trace).
    public static let qemuTrace = InputKind("qemu-trace")
}

/// This domain's formats, in detection order: the binary format with a magic number first,
/// then the SystemTap log, then the lenient log-backend text.
public enum TraceFormats {
    public static let list = InputFormatList([SimpleTraceFormat(), SystemTapLogTraceFormat(), LogBackendTraceFormat()])
    public static var all: [any InputFormat] { list.all }
    /// The same list with each format's reader factory.
    public static var traceFormats: [any TraceInputFormat] { all.compactMap { $0 as? any TraceInputFormat } }
}
