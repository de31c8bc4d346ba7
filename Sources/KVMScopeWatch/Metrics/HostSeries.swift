import Foundation
import Prometheus

/// The host-wide series of `watch` (no `domain` label): host kernel errors, packet drops and
/// the self-metrics of the host-wide sources and of configuration reloads, in the same registry
/// as the VMs' series.
///
/// Label values come from the host's kernel (device names, drop reasons, function names), not
/// from a fixed set, so each counter family is capped at `maxSeriesPerFamily` label sets; an
/// event for a new label set past the cap is not exported and is counted in
/// `kvmscope_watch_series_overflow_total{metric}` instead, so the loss shows.
public final class HostSeries: @unchecked Sendable {
    public static let maxSeriesPerFamily = 256
    /// Longest label value kept; longer ones are cut (a kernel device name is at most 32 bytes,
    /// DISK_NAME_LEN; a function name rarely over 64).
    public static let maxLabelLength = 64

    private let registry: PrometheusCollectorRegistry
    private let lock = NSLock()
    private var counters: [Key: Counter] = [:]
    private var perFamily: [String: Int] = [:]
    private var gauges: [Key: Gauge] = [:]
    private struct Key: Hashable { let family: String; let labels: [String] }

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
        // Present from the start, at 0, so `increase()` sees the first failed reload.
        for result in ["ok", "failed"] { _ = counter(WatchMetricFamilies.watchConfigReloads, [result]) }
    }

    /// Adds `n` (≥ 0) to the series; false when the family's cap refused a new label set (the
    /// event is then counted as overflow).
    @discardableResult
    public func add(_ f: WatchMetricFamily, _ labels: [String], _ n: Int64 = 1) -> Bool {
        guard n >= 0 else { return true }
        let values = labels.map(Self.labelValue)
        guard let c = lock.withLock({ counter(f, values, capped: true) }) else {
            lock.withLock { counter(WatchMetricFamilies.watchSeriesOverflow, [f.name])?.increment(by: n) }
            return false
        }
        if n > 0 { c.increment(by: n) }
        return true
    }

    /// Sets a gauge of a host-wide self-metric (fixed label sets only: not capped).
    public func set(_ f: WatchMetricFamily, _ labels: [String], to value: Double) {
        lock.withLock {
            let key = Key(family: f.name, labels: labels)
            if let g = gauges[key] { g.set(to: value); return }
            let g = registry.makeGauge(descriptor: f.descriptor, labels: Array(zip(f.labels, labels)))
            g.set(to: value)
            gauges[key] = g
        }
    }

    /// Label sets the family has now.
    public func seriesCount(_ f: WatchMetricFamily) -> Int { lock.withLock { perFamily[f.name, default: 0] } }

    /// Under `lock`. The counter of the label set, made at 0 when new (nil past the cap).
    private func counter(_ f: WatchMetricFamily, _ labels: [String], capped: Bool = false) -> Counter? {
        precondition(labels.count == f.labels.count, "\(f.name): labels \(labels)")
        let key = Key(family: f.name, labels: labels)
        if let c = counters[key] { return c }
        let n = perFamily[f.name, default: 0]
        if capped, n >= Self.maxSeriesPerFamily { return nil }
        let c = registry.makeCounter(descriptor: f.descriptor, labels: Array(zip(f.labels, labels)))
        counters[key] = c
        perFamily[f.name] = n + 1
        return c
    }

    /// A label value as exported: at most `maxLabelLength` bytes of printable ASCII, anything
    /// else replaced by `_` (the text format escapes only `\`, `"` and newline; a device name
    /// with control bytes or invalid UTF-8 is read from a hostile or corrupted log); empty → `unknown`.
    static func labelValue(_ s: String) -> String {
        var out = ""
        for b in s.utf8.prefix(maxLabelLength) {
            out.unicodeScalars.append(b > 0x20 && b < 0x7F && b != 0x22 && b != 0x5C ? Unicode.Scalar(b) : "_")
        }
        return out.isEmpty ? "unknown" : out
    }
}
