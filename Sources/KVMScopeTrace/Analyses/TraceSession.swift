/// The two things `kvmscope trace` does with a trace, as library calls the CLI and the
/// benchmark share: rebuild every virtio-blk request into a report, or dump the events.
/// Both read the input once, in order, in memory bounded by what is in flight.
public enum TraceSession {
    /// Detects the format (unless named), reads every event the request tracker needs and
    /// returns the report.
    public static func analyse(_ stream: ByteStream, catalog: TraceEventCatalog, format: String? = nil,
                               options: VirtioBlkRequestTracker.Options = .init(),
                               onNotice: ((VirtioBlkRequestTracker.Notice) -> Void)? = nil,
                               onProgress: ((Int64) -> Void)? = nil, live: Bool = false) throws -> TraceReport {
        let (detected, input) = try TraceInput.open(stream, format: format, live: live)
        var reader = detected.makeReader()
        reader.onProgress = onProgress
        let decoder = TraceEventDecoder(catalog: catalog, selection: .names(VirtioBlkRequestTracker.eventNames))
        var tracker = VirtioBlkRequestTracker(catalog: catalog, options: options)
        tracker.onNotice = onNotice
        try reader.read(input, decoder: decoder) { tracker.consume($0) }
        try TraceRecognitionError.check(reader.stats, name: stream.name)
        return tracker.report(input: TraceReport.Input(name: stream.name, stats: reader.stats,
                                                       definitions: catalog.sources))
    }

    /// Prints every selected event that matches all `matches` through `renderer` into `output`;
    /// returns what the reader saw.
    public static func dump(_ stream: ByteStream, catalog: TraceEventCatalog, format: String? = nil,
                            selection: TraceEventSelection = .all, matches: [TraceFieldMatch] = [],
                            style: TraceEventDumpRenderer.Style, output: BufferedOutput,
                            flushEachLine: Bool = false, onProgress: ((Int64) -> Void)? = nil) throws -> (stats: TraceReadStats, printed: Int) {
        let (detected, input) = try TraceInput.open(stream, format: format, live: flushEachLine)
        var reader = detected.makeReader()
        reader.onProgress = onProgress
        let decoder = TraceEventDecoder(catalog: catalog, selection: selection)
        var renderer = TraceEventDumpRenderer(style: style, threadLabel: detected.name == LogBackendTraceFormat().name ? "tid" : "pid")
        var printed = 0
        try reader.read(input, decoder: decoder) { event in
            // simpletrace's "dropped events" records are shown unless a --filter leaves them out.
            if event.definition.id < 0 && !selection.contains(event.name) { return }
            for m in matches where !m.matches(event) { return }
            renderer.append(event, to: &output.buffer)
            printed += 1
            if flushEachLine { try output.flush() } else { try output.maybeFlush() }
        }
        try output.flush()
        try TraceRecognitionError.check(reader.stats, name: stream.name)
        return (reader.stats, printed)
    }
}
