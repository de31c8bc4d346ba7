import Foundation
import KVMScopeCore
import KVMScopeDrops
import KVMScopeTracefs

/// Where DropsWatch reads drops: the drops domain's live sources (`kvmscope drops`'s), or a
/// fake in the tests.
public protocol DropFeed: AnyObject {
    /// Every drop waiting now, handed to `body`; never blocks.
    func drain(_ body: (DropEvent) -> Void) throws
    /// Events the source lost so far (ring buffer overruns; NET_DM overruns count one each).
    var lostEvents: UInt64 { get }
    func close()
}

/// A live source of `kvmscope drops` (DropSourceSelection's choice: skb:kfree_skb in a
/// private tracefs instance, else NET_DM) as a DropFeed.
final class LiveDropFeed: DropFeed {
    let source: LiveDropMonitor.Source
    init(_ source: LiveDropMonitor.Source) { self.source = source }

    func drain(_ body: (DropEvent) -> Void) throws {
        switch source {
        case let .tracefs(t): try t.drain(body)
        case let .netdm(n):
            // NET_DM alerts queue on its socket; bounded per call so the loop stays responsive.
            for _ in 0..<64 {
                let events = try n.poll(timeoutMs: 0)
                if events.isEmpty { break }
                events.forEach(body)
            }
        }
    }

    var lostEvents: UInt64 {
        switch source {
        case let .tracefs(t): return t.lostEvents()
        case let .netdm(n): return UInt64(max(0, n.overruns))
        }
    }

    func close() {
        switch source {
        case let .tracefs(t): try? t.close()
        case let .netdm(n): n.stop()
        }
    }
}

/// `watch --drops`: the host's packet drops into `kvmscope_net_drops_total{reason,location}`,
/// drained every `tick` on a thread of its own.
///
/// Labels are bounded: `reason` is the kernel's drop reason name (`NO_SOCKET`,
/// `NETFILTER_DROP`…: enum skb_drop_reason, a fixed set per kernel; `unknown` for kernels
/// before 5.17 and NET_DM summary alerts, which carry none), `location` the kernel function
/// that freed the packet, without the offset (`__udp4_lib_rcv`, `nft_do_chain`: a hashed
/// pointer or an address no symbol covers is `unknown`), so one series per place in the
/// kernel, not per instruction. HostSeries caps them all the same.
public final class DropsWatch: @unchecked Sendable {
    public static let source = "drops"
    private let feed: any DropFeed
    private let symbolizer: LocationSymbolizer
    private let series: HostSeries
    private let tick: Double
    private let lock = NSLock()
    private var stopRequested = false
    private var thread: Thread?
    private let done = DispatchSemaphore(value: 0)
    private var lostSeen: UInt64 = 0
    private var failed = false
    /// Per drain, counts by label set, then added once each (a flood is a few series, many drops).
    private var batch: [[String]: Int64] = [:]
    /// With an event log: drops since the last summary by [reason, location], and when it was.
    private let events: (any WatchEventSink)?
    private let summarySeconds: Double
    private var sinceSummary: [[String]: Int64] = [:]
    private var lastSummary: Double?
    /// Lines per summary at most; the rest are summed into one `other` line (the counter has them all).
    static let maxSummaryLines = 64

    /// Told, once, when reading fails for good (the CLI prints it as a warning).
    private let warn: @Sendable (String) -> Void

    public init(feed: any DropFeed, symbols: KernelSymbolTable?, series: HostSeries, tick: Double = 0.25,
                events: (any WatchEventSink)? = nil, summarySeconds: Double = 10,
                warn: @escaping @Sendable (String) -> Void) {
        self.feed = feed
        self.events = events
        self.summarySeconds = summarySeconds
        self.warn = warn
        symbolizer = LocationSymbolizer(table: symbols)
        self.series = series
        self.tick = tick
        series.set(WatchMetricFamilies.watchSourceUp, [Self.source], to: 1)
        series.add(WatchMetricFamilies.watchSourceLost, [Self.source], 0)
    }

    /// Opens `kvmscope drops`'s live source (auto: tracefs, else NET_DM) with its own errors
    /// (`tracefs needs root`, `NET_DM: … CAP_NET_ADMIN`…). A smaller ring buffer than `drops`
    /// uses (1 MiB per CPU): drained four times a second, it holds about 30 000 drops.
    public static func open(series: HostSeries, events: (any WatchEventSink)? = nil,
                            warn: @escaping @Sendable (String) -> Void) throws -> DropsWatch {
        let symbols = try? KernelSymbolTable.load()
        var request = DropSourceSelection.Request()
        request.tracefs.bufferKB = 1024
        request.symbols = symbols
        let source = try DropSourceSelection.open(request, warn: warn)
        return DropsWatch(feed: LiveDropFeed(source), symbols: symbols, series: series, events: events, warn: warn)
    }

    /// Drains the feed once and exports what it held.
    public func pump(now: Double? = nil) {
        let now = now ?? VMWorker.now()
        do {
            try feed.drain { e in
                batch[[Self.reasonLabel(e), locationLabel(e)], default: 0] += Int64(max(0, e.count))
            }
        } catch {
            if !failed { warn("watch --drops: reading drops failed: \(error); no longer counting them") }
            failed = true
            series.set(WatchMetricFamilies.watchSourceUp, [Self.source], to: 0)
        }
        for (labels, n) in batch { series.add(WatchMetricFamilies.netDrops, labels, n) }
        if events != nil { for (labels, n) in batch { sinceSummary[labels, default: 0] += n } }
        batch.removeAll(keepingCapacity: true)
        if lastSummary == nil { lastSummary = now }
        if events != nil, let last = lastSummary, now - last >= summarySeconds { summarize(now: now, since: last) }
        let lost = feed.lostEvents
        if lost > lostSeen {
            series.add(WatchMetricFamilies.watchSourceLost, [Self.source], Int64(clamping: lost - lostSeen))
            lostSeen = lost
        }
    }

    /// The event log gets drops as a summary every `summarySeconds`, one line per reason and
    /// place that dropped anything (a host drops thousands of packets a second: a line each
    /// would drown the VMs' events); the most first, at most `maxSummaryLines`.
    private func summarize(now: Double, since last: Double) {
        defer { sinceSummary.removeAll(keepingCapacity: true); lastSummary = now }
        guard let events, !sinceSummary.isEmpty else { return }
        let seconds = now - last
        let sorted = sinceSummary.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key.lexicographicallyPrecedes($1.key) }
        var lines = sorted.prefix(Self.maxSummaryLines).map { ($0.key[0], $0.key[1], $0.value) }
        let rest = sorted.dropFirst(Self.maxSummaryLines).reduce(Int64(0)) { $0 + $1.value }
        if rest > 0 { lines.append(("other", "other", rest)) }
        for (reason, location, n) in lines {
            var r = WatchEventRecord(type: .drops, time: Date().timeIntervalSince1970, domain: nil, qmp: nil, event: reason)
            r.reason = reason
            r.location = location
            r.count = n
            r.message = "\(n) packet\(n == 1 ? "" : "s") dropped by the host kernel in \(location) (reason \(reason)) in the last \(Int(seconds.rounded())) s"
            events.write(r)
        }
    }

    static func reasonLabel(_ e: DropEvent) -> String {
        guard let r = e.reason else { return "unknown" }
        // A number without a name (this kernel's table lacks it, or a subsystem's own list since 6.4): in hex.
        return r.name ?? r.code.map { "0x" + String($0, radix: 16) } ?? "unknown"
    }

    func locationLabel(_ e: DropEvent) -> String {
        let l = symbolizer.resolve(e.location)
        guard let symbol = l.symbol, !symbol.isEmpty else { return "unknown" }
        return symbol
    }

    public func start() {
        let t = Thread { [self] in
            while !lock.withLock({ stopRequested }) {
                Thread.sleep(forTimeInterval: tick)
                if !failed { pump() }
            }
            done.signal()
        }
        t.name = "kvmscope-watch-drops"
        thread = t
        t.start()
    }

    /// Ends the thread and closes the source (the tracefs instance is removed).
    public func stop(waiting seconds: Double = 5) {
        lock.withLock { stopRequested = true }
        if thread != nil { _ = done.wait(timeout: .now() + seconds) }
        // The drops since the last summary, so a stop does not lose up to an interval of them.
        if let last = lastSummary { lock.withLock { summarize(now: VMWorker.now(), since: last) } }
        feed.close()
        series.set(WatchMetricFamilies.watchSourceUp, [Self.source], to: 0)
    }
}
