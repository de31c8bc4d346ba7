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
enum TraceInput {
    /// `live`: the input may stay open without data for a long time (`--follow`, a pipe from
    /// `tail -f`): detect from the first line instead of waiting for 64 KiB.
    public static func open(_ stream: ByteStream, format name: String? = nil, live: Bool = false) throws
        -> (format: any TraceInputFormat, stream: ByteStream) {
        let traceFormats = TraceFormats.traceFormats
        if let name {
            guard let f = traceFormats.first(where: { $0.name == name }) else {
                throw TraceInputError.unknownFormat(name: name, known: traceFormats.map(\.name))
            }
            return (f, stream)
        }
        let peekable = PeekableByteStream(stream)
        var sample: [UInt8]
        if live {
            sample = try peekable.peek(1)
            while !sample.contains(0x0A) && sample.count < 4096 {
                let more = try peekable.peek(sample.count + 1)
                if more.count == sample.count { break }        // end of input
                sample = more
            }
        } else {
            sample = try peekable.peek()
        }
        let detected = sample.withUnsafeBytes { raw in
            traceFormats.first { $0.recognizes(raw) }
        }
        if let format = detected { return (format, peekable) }
        // Text whose first 64 KiB hold no trace line (QEMU's stderr under libvirt starts with
        // warnings and the command line) is still read with the log backend's reader: the
        // lines it recognises decide, and none at all is refused after reading
        // (TraceRecognitionError.check). Binary junk is refused at once.
        if !live, !sample.isEmpty, !sample.contains(0),
           let text = traceFormats.first(where: { $0 is LogBackendTraceFormat }) {
            return (text, peekable)
        }
        throw TraceRecognitionError.noTraceEvents(path: stream.name)
    }
}
