/// The two things `kvmscope trace` does with a trace, as library calls the CLI and the
/// benchmark share: rebuild every virtio-blk and SCSI request (and the NBD client's
/// connection) into a report, or dump the events.
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
        let decoder = TraceEventDecoder(catalog: catalog, selection: .names(analysedEventNames))
        var tracker = VirtioBlkRequestTracker(catalog: catalog, options: options)
        tracker.onNotice = onNotice
        var scsiOptions = ScsiRequestTracker.Options()
        scsiOptions.maxFailuresKept = options.maxFailuresKept
        scsiOptions.maxInFlightListed = options.maxInFlightListed
        var scsi = ScsiRequestTracker(catalog: catalog, options: scsiOptions)
        var nbd = NbdClientTracker(catalog: catalog, errnoTable: options.errnoTable)
        // Which analysis reads each definition, decided once: one array load per event.
        let owner: [UInt8] = catalog.definitions.map { d in
            scsi.reads(d.id) ? 1 : nbd.reads(d.id) ? 2 : 0
        }
        try reader.read(input, decoder: decoder) { event in
            let id = event.definition.id
            let analysis = id >= 0 && id < owner.count ? owner[id] : 0
            switch analysis {
            case 1: scsi.consume(event); tracker.noteTime(event.timestamp)
            case 2: nbd.consume(event); tracker.noteTime(event.timestamp)
            default: tracker.consume(event)
            }
        }
        try TraceRecognitionError.check(reader.stats, name: stream.name)
        var report = tracker.report(input: TraceReport.Input(name: stream.name, stats: reader.stats,
                                                             definitions: catalog.sources))
        report.scsi = scsi.report()
        report.backend = nbd.report(coverage: report.coverage, stats: reader.stats)
        if var account = report.backend.nbd {
            account.guestRequestsFailedWhileDisconnected = NbdClientTracker.failedWhileDisconnected(
                account, times: report.failures.compactMap(\.time) + report.scsi.failures.compactMap(\.time))
            report.backend.nbd = account
        }
        report.warnings += scsi.warnings
        return report
    }

    /// Every event the analyses read (virtio-blk requests, SCSI requests, the NBD client).
    public static let analysedEventNames = VirtioBlkRequestTracker.eventNames
        .union(ScsiRequestTracker.eventNames).union(NbdClientTracker.eventNames)

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
