import Foundation
import KVMScopeTracefs

/// Runs a live source interval by interval: drains it every tick, attributes each drop to its
/// task's namespace and command when asked, symbolizes, filters, counts, and closes intervals
/// on the clock — by the drops' own time stamps when the source's clock is CLOCK_MONOTONIC, so
/// a drop read a few milliseconds late still lands in the second it happened.
public final class LiveDropMonitor {
    public enum Source {
        case tracefs(TracefsDropSource)
        case netdm(NetDropMonitorSource)
    }

    public struct Options {
        public var interval: Double = 1
        /// Stop after this many seconds; nil = until SIGINT/SIGTERM.
        public var duration: Double?
        public var filter = DropFilter()
        public var grouping: DropGrouping = .location
        /// Count only drops in tasks of this network namespace (inode).
        public var netnsInode: UInt64?
        /// How often the buffers are drained (the ring buffer must not fill in between).
        public var tick: Double = 0.05
        public init() {}
    }

    public let source: Source
    public let options: Options
    public let symbolizer: LocationSymbolizer
    public let tasks: TaskContextResolver
    /// Called once the source is reading (tests start their traffic here).
    public var onReady: (() -> Void)?

    public private(set) var unattributed = 0
    public private(set) var otherNamespaces = 0

    public init(source: Source, symbols: KernelSymbolTable?, options: Options, procRoot: String = "/proc") {
        self.source = source
        self.options = options
        symbolizer = LocationSymbolizer(table: symbols)
        if case let .tracefs(t) = source {
            tasks = TaskContextResolver(procRoot: procRoot, savedCmdlinesPath: t.tracefs.path("saved_cmdlines"))
        } else {
            tasks = TaskContextResolver(procRoot: procRoot)
        }
    }

    static func monotonicNow() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    static func realtimeNow() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    public var sourceName: String {
        switch source {
        case let .tracefs(t): return t.binary ? "tracefs" : "tracefs-text"
        case .netdm: return "netdm"
        }
    }

    public var sourceDetail: String {
        switch source {
        case let .tracefs(t): return t.description
        case let .netdm(n): return "NET_DM drop monitor (generic netlink family \(n.family.id)\(n.startedByUs ? "" : ", started by another program"))"
        }
    }

    /// Monitors until the duration ends or a signal arrives; `onInterval` gets each closed
    /// interval (times as Unix epoch seconds). Returns the run's summary.
    public func run(onInterval: (DropTally) throws -> Void) throws -> DropRunSummary {
        StopSignals.install(reset: false)
        let keepComm = options.grouping == .comm
        var main = DropAggregator(filter: options.filter, keepComm: keepComm)
        var ahead = DropAggregator(filter: options.filter, keepComm: keepComm)
        let start = Self.monotonicNow()
        let epochOffset = Self.realtimeNow() - start
        let deadline = options.duration.map { start + $0 }
        var intervalStart = start
        var intervalEnd = start + options.interval
        let byTimestamp: Bool
        if case let .tracefs(t) = source { byTimestamp = t.monotonicClock } else { byTimestamp = false }
        // Drops stamped just before the interval end may still be in a buffer page: wait this
        // long past the end before closing.
        let grace = byTimestamp ? min(options.tick * 2, options.interval / 4) : 0
        var lostSoFar: UInt64 = 0
        var lostUnknownSeen = 0

        func process(_ raw: DropEvent) {
            var e = raw
            if let target = options.netnsInode {
                guard let pid = e.pid, let ns = tasks.netnsInode(pid) else { unattributed += e.count; return }
                guard ns == target else { otherNamespaces += e.count; return }
            }
            if keepComm, e.comm == nil, let pid = e.pid { e.comm = tasks.comm(pid) }
            e.location = symbolizer.resolve(e.location)
            if byTimestamp, let t = e.time, t >= intervalEnd { ahead.add(e) } else { main.add(e) }
        }

        func drain() throws {
            switch source {
            case let .tracefs(t): try t.drain(process)
            case let .netdm(n):
                while true {
                    let events = try n.poll(timeoutMs: 0)
                    if events.isEmpty { break }
                    events.forEach(process)
                }
            }
        }

        func noteLosses() {
            switch source {
            case let .tracefs(t):
                let now = t.lostEvents()
                if now > lostSoFar { main.noteLost(now - lostSoFar); lostSoFar = now }
                // Pages flagged as following a loss whose count the stats file did not show.
                if t.pageStats.pagesAfterLoss > lostUnknownSeen {
                    lostUnknownSeen = t.pageStats.pagesAfterLoss
                    if main.current.lost == 0 { main.noteLost(0, unknown: true) }
                }
            case let .netdm(n):
                if n.overruns > lostUnknownSeen { lostUnknownSeen = n.overruns; main.noteLost(0, unknown: true) }
            }
        }

        func close(at end: Double) throws {
            noteLosses()
            var closed = main.closeInterval(end: end + epochOffset)
            closed.start = intervalStart + epochOffset
            closed.clock = .wall
            main.absorb(ahead)
            ahead = DropAggregator(filter: options.filter, keepComm: keepComm)
            tasks.clear()
            try onInterval(closed)
        }

        onReady?()
        var stopped: Double
        while true {
            let now = Self.monotonicNow()
            let stop = StopSignals.requested || (deadline.map { now >= $0 } ?? false)
            try drain()
            if stop {
                stopped = deadline.map { min($0, now) } ?? now
                // Whatever the kernel wrote before we stopped is still in the buffers: one
                // more drain after a moment catches pages the writers were just finishing.
                usleep(UInt32(min(grace, 0.05) * 1e6) + 1000)
                try drain()
                try close(at: stopped)
                break
            }
            if now >= intervalEnd + grace {
                try close(at: intervalEnd)
                intervalStart = intervalEnd
                intervalEnd += options.interval
                // A stalled reader (suspended process) should not print a flood of empty intervals.
                if intervalEnd + grace < now { intervalEnd = now + options.interval; intervalStart = now }
            }
            var wake = min(now + options.tick, intervalEnd + grace)
            if let d = deadline { wake = min(wake, d) }
            let pause = wake - Self.monotonicNow()
            if pause > 0 {
                var ts = timespec(tv_sec: Int(pause), tv_nsec: Int((pause - Double(Int(pause))) * 1e9))
                _ = nanosleep(&ts, nil)            // a signal ends it early (EINTR)
            }
        }

        var total = main.total
        total.start = start + epochOffset
        total.clock = .wall
        total.end = stopped + epochOffset
        var notes: [String] = []
        if options.netnsInode != nil {
            notes.append("--netns counts drops that happened while a task of that namespace was running (the tracepoint has no namespace field); \(otherNamespaces) drops in other namespaces were left out")
        }
        if let table = symbolizer.table, table.addressesHidden {
            notes.append("/proc/kallsyms shows only zero addresses (kernel.kptr_restrict): locations are shown as addresses")
        }
        if case let .tracefs(t) = source {
            if t.pageStats.corruptPages > 0 { notes.append("\(t.pageStats.corruptPages) ring-buffer pages could not be decoded") }
            if t.undecodedRecords > 0 { notes.append("\(t.undecodedRecords) kfree_skb records were too short to decode") }
        }
        if case let .netdm(n) = source, n.malformedMessages > 0 {
            notes.append("\(n.malformedMessages) NET_DM messages could not be decoded")
        }
        return DropRunSummary(source: sourceName, sourceDetail: sourceDetail, seconds: stopped - start, tally: total,
                              filteredOut: main.filteredOut, unattributed: unattributed, notes: notes)
    }
}
