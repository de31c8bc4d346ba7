/// How text reports group their lines (`--by`).
public enum DropGrouping: String, CaseIterable, Sendable {
    case location, reason, `protocol`, comm
}

/// What is counted together: one place, one reason, one protocol, one origin (and the
/// task's command name when grouping by it).
public struct DropKey: Hashable, Sendable {
    public var location: DropLocation
    public var reason: DropReason?
    public var protocolNumber: UInt16?
    public var origin: DropOrigin
    public var comm: String?
    public var hardwareTrap: String?
}

/// Drops counted over one interval (or the whole run).
public struct DropTally: Sendable {
    public var start: Double?
    public var end: Double?
    /// What `start`/`end` are measured on: the capture's trace clock for files, the wall
    /// clock for live monitoring.
    public var clock: ReportClock = .trace
    public private(set) var counts: [DropKey: Int] = [:]
    public private(set) var total = 0
    /// Events the source lost (ring-buffer overruns, netlink ENOBUFS) in this span.
    public var lost: UInt64 = 0
    /// Losses happened whose number the kernel did not report.
    public var lostUnknown = false

    public init(start: Double? = nil) { self.start = start }

    mutating func add(_ key: DropKey, count: Int) {
        counts[key, default: 0] += count
        total += count
    }

    public mutating func merge(_ other: DropTally) {
        for (k, v) in other.counts { counts[k, default: 0] += v }
        total += other.total
        lost += other.lost
        lostUnknown = lostUnknown || other.lostUnknown
        if let s = other.start { start = min(start ?? s, s) }
        if let e = other.end { end = max(end ?? e, e) }
    }

    /// Every (location, reason, protocol, origin[, comm]) with its count, most first; ties in
    /// a fixed order so reports are reproducible.
    public var rows: [(key: DropKey, count: Int)] {
        counts.map { ($0.key, $0.value) }.sorted { a, b in
            if a.count != b.count { return a.count > b.count }
            return DropTally.sortText(a.key) < DropTally.sortText(b.key)
        }
    }

    /// A total order over keys: every field that tells two keys apart is in it, and "absent" is
    /// spelled apart from every value (a missing protocol is not protocol 0), so equal counts
    /// never fall back to the dictionary's order (found by fuzzing: the same capture gave two
    /// different reports).
    static func sortText(_ k: DropKey) -> String {
        func opt(_ s: String?) -> String { s.map { "+" + $0 } ?? "-" }
        return [opt(k.hardwareTrap), k.location.displayText, opt(k.location.addressText), opt(k.location.module),
                opt(k.reason?.displayName), opt(k.reason?.code.map { String($0) }), opt(k.protocolNumber.map { String($0) }),
                k.origin.rawValue, opt(k.comm)].joined(separator: "|")
    }

    /// Counts summed by a label, most first.
    func grouped<L: Hashable>(_ label: (DropKey) -> L, order: (L) -> String) -> [(label: L, count: Int)] {
        var sums: [L: Int] = [:]
        for (k, v) in counts { sums[label(k), default: 0] += v }
        return sums.map { ($0.key, $0.value) }.sorted { a, b in
            a.count != b.count ? a.count > b.count : order(a.label) < order(b.label)
        }
    }

    public var byReason: [(label: DropReason?, count: Int)] {
        grouped({ $0.reason }, order: { r in r.map { "+\($0.displayName)|\($0.code.map { String($0) } ?? "-")" } ?? "-" })
    }

    public var byProtocol: [(label: UInt16?, count: Int)] {
        grouped({ $0.protocolNumber }, order: { $0.map { "+" + EtherType.hex($0) } ?? "-" })
    }

    public var byComm: [(label: String?, count: Int)] {
        grouped({ $0.comm }, order: { $0 ?? "" })
    }

    /// Location, reason and origin only (dropwatch's lines): protocols and comms summed.
    public var byLocation: [(label: DropKey, count: Int)] {
        grouped({ k in DropKey(location: k.location, reason: k.reason, protocolNumber: nil, origin: k.origin,
                               comm: nil, hardwareTrap: k.hardwareTrap) }, order: DropTally.sortText)
    }
}

/// Counts drops per interval and over the whole run. Pure: the caller decides where intervals
/// end (wall clock for live sources, trace time stamps for files).
public struct DropAggregator: Sendable {
    public let filter: DropFilter
    /// Keep the task's command name in keys (only when grouping by it: it multiplies rows).
    public let keepComm: Bool
    private var tally: DropTally
    /// The last few keys with their not-yet-added counts: floods repeat a handful of keys,
    /// and comparing interned strings is cheaper than hashing them for every drop.
    private var recentKeys: [DropKey] = []
    private var recentCounts: [Int] = []
    static let recentCapacity = 8
    public private(set) var total = DropTally()
    /// Drops the filters excluded.
    public private(set) var filteredOut = 0

    public init(filter: DropFilter = DropFilter(), keepComm: Bool = false, start: Double? = nil) {
        self.filter = filter
        self.keepComm = keepComm
        tally = DropTally(start: start)
        total.start = start
    }

    /// The interval being counted.
    public var current: DropTally {
        var t = tally
        for (k, n) in zip(recentKeys, recentCounts) { t.add(k, count: n) }
        return t
    }

    private mutating func flushRecent() {
        for (k, n) in zip(recentKeys, recentCounts) { tally.add(k, count: n) }
        recentKeys.removeAll(keepingCapacity: true)
        recentCounts.removeAll(keepingCapacity: true)
    }

    /// Counts a drop if the filter accepts it; returns whether it did.
    @discardableResult
    public mutating func add(_ e: DropEvent) -> Bool {
        guard filter.accepts(e) else { filteredOut += e.count; return false }
        let key = DropKey(location: e.location, reason: e.reason, protocolNumber: e.protocolNumber,
                          origin: e.origin, comm: keepComm ? e.comm : nil, hardwareTrap: e.hardwareTrap)
        for i in recentKeys.indices where recentKeys[i] == key {
            recentCounts[i] += e.count
            return true
        }
        if recentKeys.count == Self.recentCapacity { flushRecent() }
        recentKeys.append(key)
        recentCounts.append(e.count)
        return true
    }

    public mutating func noteLost(_ n: UInt64, unknown: Bool = false) {
        tally.lost += n
        tally.lostUnknown = tally.lostUnknown || unknown
    }

    /// Sets when the current interval (and, if unset, the run) began.
    public mutating func begin(at start: Double) {
        tally.start = start
        if total.start == nil { total.start = start }
    }

    /// Adds drops counted elsewhere (events that arrived ahead of their interval) to the
    /// current interval.
    public mutating func absorb(_ other: DropAggregator) {
        flushRecent()
        for (k, v) in other.current.counts { tally.add(k, count: v) }
        filteredOut += other.filteredOut
    }

    /// Ends the current interval at `end` and starts the next one there.
    public mutating func closeInterval(end: Double?) -> DropTally {
        flushRecent()
        var closed = tally
        closed.end = end
        total.merge(closed)
        tally = DropTally(start: end)
        return closed
    }
}
