/// What a file's run has counted so far: the aggregator, the interval being filled, the first
/// and last time stamps. One value, so that a reader's callback mutates it with one access
/// (a var captured by several closures is checked at run time on every access).
struct DropRunState {
    var aggregator: DropAggregator
    let interval: Double?
    let symbolizer: LocationSymbolizer
    var intervalStart: Double?
    var first: Double?
    var last: Double?
    /// A perf.data's drops, counted by key until their interval closes (PerfDropTally).
    let perfNames = PerfDropNames()
    private var perfCounts = PerfDropTally()
    /// Where the interval being filled ends (-infinity before the first): a drop before it
    /// closes nothing.
    private var intervalEnd = -Double.infinity

    init(aggregator: DropAggregator, interval: Double?, symbolizer: LocationSymbolizer) {
        self.aggregator = aggregator
        self.interval = interval
        self.symbolizer = symbolizer
    }

    /// A drop of a text or trace.dat input.
    mutating func add(_ raw: DropEvent, onInterval: (DropTally) throws -> Void) throws {
        var e = raw
        e.location = symbolizer.resolve(e.location)
        if let t = e.time { try advance(to: t, onInterval: onInterval) }
        aggregator.add(e)
    }

    /// A perf.data's drops, in order: the same as `add` of each one's DropEvent, but a drop
    /// that closes no interval costs its time stamp and a key comparison.
    mutating func add(_ drops: UnsafeBufferPointer<PerfDataDropReader.Drop>, keepComm: Bool,
                      onInterval: (DropTally) throws -> Void) throws {
        for d in drops {
            if let ns = d.timeNs {
                let t = Double(ns) / 1e9
                if interval != nil, !(t < intervalEnd) {
                    try advance(to: t, onInterval: onInterval)
                    intervalEnd = intervalStart.map { $0 + interval! } ?? -.infinity
                } else {
                    if first == nil { first = t }
                    last = t
                }
            }
            perfCounts.add(PerfDropTally.Key(location: d.location, reasonID: d.reasonID,
                                             protocolNumber: d.protocolNumber, commID: keepComm ? d.commID : -1))
        }
    }

    /// Hands the perf.data drops counted so far to the aggregator, made DropEvents once per key.
    mutating func addPerfCounts() {
        for (key, n) in perfCounts.drain() {
            var e = DropEvent(location: symbolizer.resolve(DropLocation(address: key.location)),
                              protocolNumber: key.protocolNumber, reason: perfNames.reason(key.reasonID), count: n)
            e.comm = perfNames.comm(key.commID)
            aggregator.add(e)
        }
    }

    mutating func closeInterval(end: Double?) -> DropTally {
        addPerfCounts()
        return aggregator.closeInterval(end: end)
    }

    /// A drop at `t`: the run's first and last times, and the intervals it closes.
    mutating func advance(to t: Double, onInterval: (DropTally) throws -> Void) throws {
        if first == nil { first = t }
        last = t
        guard let interval else { return }
        if intervalStart == nil { intervalStart = t; aggregator.begin(at: t) }
        while let s = intervalStart, t >= s + interval {
            let closed = closeInterval(end: s + interval)
            if closed.total > 0 { try onInterval(closed) }
            // Empty intervals print nothing: go straight to the one holding t, so a
            // gap of days or a corrupt stamp (1e17 s) costs one step, not one per
            // interval. Where `interval` is below a Double's resolution at this
            // time, s + interval == s: start the next interval at t instead.
            let next = s + max(1, ((t - s) / interval).rounded(.down)) * interval
            guard next > s else { intervalStart = t; break }
            intervalStart = next
        }
    }
}
