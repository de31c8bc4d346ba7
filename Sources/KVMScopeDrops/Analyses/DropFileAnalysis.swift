import KVMScopeTracefs
/// `kvmscope drops FILE`: a kfree_skb capture from this or another host, read in one pass.
/// Intervals (when asked for) follow the capture's own time stamps, so a trace taken
/// elsewhere reads the same as it did live.
public struct DropFileAnalysis {
    public var filter = DropFilter()
    public var grouping: DropGrouping = .location
    /// Seconds per interval block; nil = only the summary.
    public var interval: Double?
    /// The capturing kernel's `__print_symbolic` reason table, for numeric reasons.
    public var reasonNames: [UInt64: String] = [:]
    /// The capturing host's kallsyms, for bare addresses (perf/trace-cmd `%p`).
    public var symbols: KernelSymbolTable?

    public init() {}

    public struct Result {
        public var summary: DropRunSummary
        public var formatName: String?
    }

    /// Reads `stream`, calling `onInterval` for each closed interval that had drops.
    public func run(_ stream: ByteStream, onInterval: (DropTally) throws -> Void) throws -> Result {
        let peek = PeekableByteStream(stream)
        let sample = try peek.peek()
        let format = sample.withUnsafeBytes { DropFormats.list.detect(.packetDrops, sample: $0) }
        var reader = DropTraceReader(parser: KfreeSkbLineParser(reasonNames: reasonNames, wantComm: grouping == .comm))
        // A trace.dat is binary: its own reader, with the kallsyms stored in it unless --kallsyms gave one.
        var traceDat = format is TraceDatDropFormat ? try TraceDatDropReader(stream: peek, source: stream) : nil
        let symbolizer = LocationSymbolizer(table: symbols ?? traceDat?.symbols)
        var state = DropRunState(aggregator: DropAggregator(filter: filter, keepComm: grouping == .comm),
                                 interval: interval, symbolizer: symbolizer)
        var perf: PerfDataDropReader?
        if traceDat != nil {
            try traceDat!.read { try state.add($0, onInterval: onInterval) }
        } else if format is PerfDataDropFormat {
            var p = PerfDataDropReader(wantComm: grouping == .comm)
            defer { perf = p }
            let keepComm = grouping == .comm
            try p.readDrops(peek, names: state.perfNames) { try state.add($0, keepComm: keepComm, onInterval: onInterval) }
            state.addPerfCounts()
        } else {
            try reader.read(peek) { try state.add($0, onInterval: onInterval) }
        }
        if interval != nil, state.aggregator.current.total > 0 {
            let end = state.intervalStart.map { $0 + interval! }
            try onInterval(state.aggregator.closeInterval(end: end))
        } else {
            _ = state.aggregator.closeInterval(end: state.last)
        }
        let aggregator = state.aggregator, first = state.first, last = state.last
        var total = aggregator.total
        total.start = first
        total.end = last
        var stats = perf?.stats ?? reader.stats
        var notes: [String] = traceDat?.notes ?? []
        if let p = perf?.perf {
            if p.lostEvents + p.lostSamples > 0 {
                notes.append("perf lost \(p.lostEvents + p.lostSamples) events while recording (PERF_RECORD_LOST): the counts are a lower bound")
            }
            if p.reorderEarlyFlushes > 0 {
                notes.append("the perf.data's rounds outgrew kvmscope's reorder window \(p.reorderEarlyFlushes) times: some drops may be out of time order")
            }
        }
        if let t = traceDat?.stats {
            stats.drops = t.drops
            stats.consumed = t.consumed
            stats.otherEvents = t.otherEvents
        }
        if stats.drops == 0 && stats.lines > 0 && format == nil {
            notes.append("no skb:kfree_skb lines found: expected ftrace `trace`, `trace-cmd report` or `perf script` output")
        }
        if stats.hashedLocations > 0 {
            notes.append("\(stats.hashedLocations) drops have hashed locations (ftrace prints %p as a per-boot hash since Linux 4.15): record with trace-cmd or perf, or on 6.x kernels whose tracepoint prints %pS")
        }
        if stats.unnamedReasons > 0 {
            notes.append("\(stats.unnamedReasons) drops have numeric reasons: reason numbers differ between kernels, pass --format-file with the capturing host's events/skb/kfree_skb/format to name them")
        }
        if let symbols, symbols.addressesHidden {
            notes.append("\(symbols.name) has only zero addresses (kernel.kptr_restrict): read it as root on the capturing host")
        } else if symbols == nil, total.rows.contains(where: { $0.key.location.symbol == nil && $0.key.location.address != nil && !$0.key.location.hashed }) {
            notes.append("locations are bare addresses: pass --kallsyms with /proc/kallsyms of the capturing host (same boot) to name them")
        }
        if !symbolizer.unresolved.isEmpty {
            notes.append("\(symbolizer.unresolved.count) addresses are not in \(symbols?.name ?? "the symbol table") (another boot or host?)")
        }
        let detail = (format?.name ?? "kfree_skb text") + " from " + stream.name
        let summary = DropRunSummary(source: "file", sourceDetail: detail,
                                     seconds: first.flatMap { f in last.map { $0 - f } },
                                     tally: total, filteredOut: aggregator.filteredOut, notes: notes, input: stats)
        return Result(summary: summary, formatName: format?.name)
    }
}
