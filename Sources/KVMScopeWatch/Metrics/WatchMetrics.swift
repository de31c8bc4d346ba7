import Foundation
import Prometheus

/// Every series `watch` exports, in one swift-prometheus registry, kept per VM so that a VM's
/// series can be renamed (QEMU's `-name` learned on connect) or dropped (the VM is gone) whole.
///
/// Counters QEMU keeps (query-blockstats) are mirrored, not re-counted: swift-prometheus'
/// Counter only increments, so the registry's counter is advanced by the difference to QEMU's
/// last value; when QEMU's value goes down (the VM restarted, its BlockBackend recreated) the
/// series is replaced by a new one starting from QEMU's value, which Prometheus' rate() reads as
/// the counter reset it is. Scrapes read the registry only; nothing here talks to QEMU.
public final class WatchMetrics: @unchecked Sendable {
    public let registry: PrometheusCollectorRegistry
    /// Distinct label sets of one metric for one VM; past it the update is dropped and counted
    /// (kind `series-limit`). Bounds what a monitor inventing device or node names can cost.
    public static let maxSeriesPerMetricPerVM = 1024

    private struct SeriesKey: Hashable { let family: WatchMetricFamily; let labels: [String] }
    private final class TrackedCounter {
        var counter: Counter
        /// QEMU's value (or the count of events) the counter stands at, in `scale` units.
        var raw: Int64
        let scale: Double
        /// What the counter's floating-point sum stands at (for `scale` ≠ 1): each step adds
        /// `raw × scale − exported`, so the exported value tracks QEMU's within one rounding
        /// instead of drifting by one per update.
        var exported: Double = 0
        init(counter: Counter, raw: Int64, scale: Double) { self.counter = counter; self.raw = raw; self.scale = scale }
    }
    private final class VMSeries {
        var domain: String
        var counters: [SeriesKey: TrackedCounter] = [:]
        var gauges: [SeriesKey: Gauge] = [:]
        var perFamily: [String: Int] = [:]
        var histograms: [HistogramKey: LatencyHistogramSeries] = [:]
        init(domain: String) { self.domain = domain }
    }
    private struct HistogramKey: Hashable, Comparable {
        let device: String; let operation: String
        static func < (a: Self, b: Self) -> Bool { (a.device, a.operation) < (b.device, b.operation) }
    }

    private let lock = NSLock()
    private var vms: [Int: VMSeries] = [:]
    private let vmCount: Gauge
    private let eventLag: Gauge
    private let pollDuration: DurationHistogram
    /// Host-wide series: host kernel errors, packet drops, the host sources' and reloads' self-metrics.
    public let host: HostSeries

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        host = HostSeries(registry: registry)
        vmCount = registry.makeGauge(descriptor: WatchMetricFamilies.watchVMs.descriptor)
        eventLag = registry.makeGauge(descriptor: WatchMetricFamilies.watchEventLag.descriptor)
        pollDuration = registry.makeDurationHistogram(
            descriptor: WatchMetricFamilies.watchPollDuration.descriptor,
            buckets: [.milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
                      .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10)])
        vmCount.set(to: 0)
    }

    /// The Prometheus text exposition (format 0.0.4) of every series: the registry's, then QEMU's
    /// latency histograms (swift-prometheus' histograms count observations themselves; QEMU's
    /// come counted, with QEMU's boundaries, so they are written here).
    public func render() -> [UInt8] {
        var out = registry.emitToBuffer()
        lock.withLock {
            let f = WatchMetricFamilies.blockOperationLatency
            var wroteHeader = false
            for (_, vm) in vms.sorted(by: { $0.key < $1.key }) where !vm.histograms.isEmpty {
                if !wroteHeader {
                    out += "# HELP \(f.name) \(f.help)\n# TYPE \(f.name) histogram\n".utf8
                    wroteHeader = true
                }
                for (key, h) in vm.histograms.sorted(by: { $0.key < $1.key }) {
                    h.write(name: f.name, labels: Self.pairs(f, domain: vm.domain, [key.device, key.operation]), into: &out)
                }
            }
        }
        return out
    }

    /// QEMU's latency histograms of one VM's disks, from one poll (those absent are dropped).
    public func setLatencyHistograms(vm id: Int, _ disks: [DiskBlockStats]) {
        lock.withLock {
            guard let vm = vms[id] else { return }
            var next: [HistogramKey: LatencyHistogramSeries] = [:]
            for d in disks {
                for (kind, c) in d.operations {
                    guard let h = c.histogram, next.count < Self.maxSeriesPerMetricPerVM else { continue }
                    let key = HistogramKey(device: d.device, operation: kind.rawValue)
                    let series = vm.histograms[key] ?? LatencyHistogramSeries()
                    series.update(h, totalTimeNs: d.accountFailed == true ? c.totalTimeNs : nil)
                    next[key] = series
                }
            }
            vm.histograms = next
        }
    }

    // MARK: VMs

    public func addVM(_ id: Int, domain: String) {
        lock.withLock {
            guard vms[id] == nil else { return }
            vms[id] = VMSeries(domain: domain)
            vmCount.set(to: Double(vms.count))
        }
    }

    /// Drops every series of the VM; later updates for `id` are ignored (its worker may still
    /// be finishing a poll).
    public func removeVM(_ id: Int) {
        lock.withLock {
            guard let vm = vms.removeValue(forKey: id) else { return }
            for c in vm.counters.values { registry.unregisterCounter(c.counter) }
            for g in vm.gauges.values { registry.unregisterGauge(g) }
            vmCount.set(to: Double(vms.count))
        }
    }

    public func domain(of id: Int) -> String? { lock.withLock { vms[id]?.domain } }

    /// Moves the VM's series to a new `domain` label, counters keeping their values; gauges
    /// are dropped (the next poll sets them under the new name).
    public func renameVM(_ id: Int, to domain: String) {
        lock.withLock {
            guard let vm = vms[id], vm.domain != domain else { return }
            vm.domain = domain
            for (key, g) in vm.gauges { registry.unregisterGauge(g); vm.perFamily[key.family.name, default: 1] -= 1 }
            vm.gauges = [:]
            for (key, c) in vm.counters {
                registry.unregisterCounter(c.counter)
                c.counter = makeCounter(key, domain: domain)
                let value = c.raw
                c.raw = 0; c.exported = 0
                advance(c, to: value)
            }
        }
    }

    // MARK: Updates

    /// Sets a mirrored cumulative counter to QEMU's `value` (in units of `scale`: 1, or 1e-9 for ns → s).
    public func setCounter(_ f: WatchMetricFamily, vm id: Int, _ labels: [String], to value: Int64, scale: Double = 1) -> Bool {
        lock.withLock {
            guard let vm = vms[id] else { return true }
            let key = SeriesKey(family: f, labels: labels)
            if let c = vm.counters[key] {
                if value < c.raw {
                    registry.unregisterCounter(c.counter)   // QEMU's counter went back: a reset, a new series
                    c.counter = makeCounter(key, domain: vm.domain)
                    c.raw = 0; c.exported = 0
                }
                advance(c, to: value)
                return true
            }
            guard admit(vm, f) else { return false }
            let c = TrackedCounter(counter: makeCounter(key, domain: vm.domain), raw: 0, scale: scale)
            advance(c, to: value)
            vm.counters[key] = c
            return true
        }
    }

    /// Counts one more (an event, an error). False when the VM's series limit refused a new label set.
    @discardableResult
    public func increment(_ f: WatchMetricFamily, vm id: Int, _ labels: [String]) -> Bool {
        lock.withLock {
            guard let vm = vms[id] else { return true }
            let key = SeriesKey(family: f, labels: labels)
            if let c = vm.counters[key] { c.raw += 1; c.counter.increment(); return true }
            guard admit(vm, f) else { return false }
            let c = TrackedCounter(counter: makeCounter(key, domain: vm.domain), raw: 1, scale: 1)
            c.counter.increment()
            vm.counters[key] = c
            return true
        }
    }

    /// Makes sure a counter series exists (at 0), so `rate()` and alerts see it from the start.
    public func touch(_ f: WatchMetricFamily, vm id: Int, _ labels: [String]) {
        lock.withLock {
            guard let vm = vms[id] else { return }
            let key = SeriesKey(family: f, labels: labels)
            guard vm.counters[key] == nil, admit(vm, f) else { return }
            vm.counters[key] = TrackedCounter(counter: makeCounter(key, domain: vm.domain), raw: 0, scale: 1)
        }
    }

    @discardableResult
    public func setGauge(_ f: WatchMetricFamily, vm id: Int, _ labels: [String], to value: Double) -> Bool {
        lock.withLock {
            guard let vm = vms[id] else { return true }
            let key = SeriesKey(family: f, labels: labels)
            if let g = vm.gauges[key] { g.set(to: value); return true }
            guard admit(vm, f) else { return false }
            let g = registry.makeGauge(descriptor: f.descriptor, labels: Self.pairs(f, domain: vm.domain, labels))
            g.set(to: value)
            vm.gauges[key] = g
            return true
        }
    }

    /// Sets the gauges of a state set (one label takes one of several values): the series whose
    /// labels are `current` to 1, every other series of the family for this VM whose first
    /// label values equal `current`'s but the last to 0 (kept, so a graph shows the change).
    public func setState(_ f: WatchMetricFamily, vm id: Int, _ current: [String]) {
        lock.withLock {
            guard let vm = vms[id] else { return }
            let prefix = current.dropLast()
            for (key, g) in vm.gauges where key.family == f && key.labels.dropLast() == prefix && key.labels != current {
                g.set(to: 0)
            }
        }
        setGauge(f, vm: id, current, to: 1)
    }

    /// Sets every series of the family for this VM to `value` (all paused states to 0 when running).
    public func setAll(_ f: WatchMetricFamily, vm id: Int, to value: Double) {
        lock.withLock {
            guard let vm = vms[id] else { return }
            for (key, g) in vm.gauges where key.family == f { g.set(to: value) }
        }
    }

    /// Drops the VM's series of these families, except those whose first label (after domain)
    /// is in `keepingFirstLabel` (nil: drop all): disks gone from query-blockstats, or state
    /// gauges when the monitor is lost (their last value would be a guess).
    public func remove(_ families: [WatchMetricFamily], vm id: Int, keepingFirstLabel keep: Set<String>? = nil) {
        lock.withLock {
            guard let vm = vms[id] else { return }
            let names = Set(families)
            func drops(_ key: SeriesKey) -> Bool {
                guard names.contains(key.family) else { return false }
                guard let keep, let first = key.labels.first else { return true }
                return !keep.contains(first)
            }
            for (key, g) in vm.gauges where drops(key) {
                registry.unregisterGauge(g); vm.gauges[key] = nil; vm.perFamily[key.family.name, default: 1] -= 1
            }
            for (key, c) in vm.counters where drops(key) {
                registry.unregisterCounter(c.counter); vm.counters[key] = nil; vm.perFamily[key.family.name, default: 1] -= 1
            }
        }
    }

    public func recordPoll(seconds: Double) {
        guard seconds.isFinite, seconds >= 0, seconds < 86_400 else { return }
        pollDuration.record(.nanoseconds(Int64(seconds * 1e9)))
    }

    public func setEventLag(seconds: Double) {
        guard seconds.isFinite, abs(seconds) < 1e9 else { return }
        eventLag.set(to: seconds)
    }

    // MARK: Internals (under `lock`)

    private func admit(_ vm: VMSeries, _ f: WatchMetricFamily) -> Bool {
        let n = vm.perFamily[f.name, default: 0]
        guard n < Self.maxSeriesPerMetricPerVM else { return false }
        vm.perFamily[f.name] = n + 1
        return true
    }

    private func makeCounter(_ key: SeriesKey, domain: String) -> Counter {
        registry.makeCounter(descriptor: key.family.descriptor, labels: Self.pairs(key.family, domain: domain, key.labels))
    }

    /// Moves the counter up to QEMU's `value` (≥ its current one). Counter.increment traps on a
    /// negative amount, so only positive steps are taken.
    private func advance(_ c: TrackedCounter, to value: Int64) {
        if c.scale == 1 {
            if value > c.raw { c.counter.increment(by: value - c.raw) }
        } else {
            let step = Double(value) * c.scale - c.exported
            if step > 0 { c.counter.increment(by: step); c.exported += step }
        }
        c.raw = value
    }

    private static func pairs(_ f: WatchMetricFamily, domain: String, _ values: [String]) -> [(String, String)] {
        precondition(f.labels.first == "domain" && values.count == f.labels.count - 1, "\(f.name): labels \(values)")
        return zip(f.labels, [domain] + values).map { ($0, $1) }
    }
}
