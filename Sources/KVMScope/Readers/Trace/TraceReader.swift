/// A reader of one QEMU trace format. Reads a stream once, in order, with memory bounded by
/// its buffers; hands every selected event to `body` and counts everything else in `stats`.
public protocol TraceReader {
    var stats: TraceReadStats { get }
    /// Called with the bytes read so far (progress display).
    var onProgress: ((Int64) -> Void)? { get set }
    mutating func read(_ stream: ByteStream, decoder: TraceEventDecoder,
                       _ body: (TraceEvent) throws -> Void) throws
}

/// A QEMU trace format: detectable from its first bytes, and able to make its reader.
public protocol TraceInputFormat: InputFormat {
    func makeReader() -> any TraceReader
}

/// Opens a trace input: detects its format (or uses the one named) and returns the stream to
/// read (the detection bytes are replayed, so `-` works for stdin).
public enum TraceInput {
    public static func open(_ stream: ByteStream, format name: String? = nil) throws
        -> (format: any TraceInputFormat, stream: ByteStream) {
        let traceFormats = FormatRegistry.formats(of: .qemuTrace).compactMap { $0 as? any TraceInputFormat }
        if let name {
            guard let f = traceFormats.first(where: { $0.name == name }) else {
                throw KVMScopeError.invalidInput("unknown trace format '\(name)' (known: \(traceFormats.map(\.name).joined(separator: ", ")))")
            }
            return (f, stream)
        }
        let peekable = PeekableByteStream(stream)
        let sample = try peekable.peek()
        let detected = sample.withUnsafeBytes { raw in
            traceFormats.first { $0.recognizes(raw) }
        }
        guard let format = detected else {
            throw KVMScopeError.unsupportedFormat(
                path: stream.name,
                detail: "not a QEMU trace: expected the log backend (`name args`, `TID@SEC.USEC:name args`), "
                    + "a simpletrace binary file or SystemTap log output (`PID@NS name args`)")
        }
        return (format, peekable)
    }
}
