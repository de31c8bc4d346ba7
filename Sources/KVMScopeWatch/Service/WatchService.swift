import Foundation

/// `watch` as a service: the watcher, the host-wide sources its options turn on, and SIGHUP's
/// reload of the configuration file.
///
/// A reload reads the file again and applies it over the command line (whose options still
/// win): QMP paths and globs (VMs still found keep their connections; new ones are watched, gone
/// ones end, as at any rescan), the interval, and the host-kernel, block-tracepoint and drops
/// switches (a source turned on is opened, one turned off closed). `listen`, `events`, the
/// libvirt, auto-record and latency-histograms settings are taken at start only: a change to them is said in one line and waits for a restart. A file
/// that cannot be read or does not check out changes nothing: one line says why, and
/// `kvmscope_watch_config_reloads_total{result="failed"}` counts it.
public final class WatchService: @unchecked Sendable {
    public let watcher: Watcher
    public private(set) var options: WatchOptions
    private let configPath: String?
    private let commandLine: WatchConfig
    /// Discoveries that do not come from `qmp` (kept across reloads).
    private let otherDiscoveries: [any VMDiscovery]
    /// VMs come from outside the configuration too (`--libvirt`): a reload may leave no QMP pattern.
    private let otherSources: Bool
    private let log: @Sendable (String) -> Void
    private let lock = NSLock()
    private var hostKernel: HostKernelWatch?
    private var drops: DropsWatch?

    /// How the sources are opened (the tests put fakes here).
    public var openHostKernel: (_ blockTracepoint: Bool, _ series: HostSeries, _ events: (any WatchEventSink)?,
                                _ warn: @escaping @Sendable (String) -> Void) throws -> HostKernelWatch = {
        try HostKernelWatch.open(blockTracepoint: $0, series: $1, events: $2, warn: $3)
    }
    /// The event log: host kernel errors are written there too (`host` records).
    public var events: (any WatchEventSink)?
    public var openDrops: (_ series: HostSeries, _ events: (any WatchEventSink)?, _ warn: @escaping @Sendable (String) -> Void) throws -> DropsWatch = {
        try DropsWatch.open(series: $0, events: $1, warn: $2)
    }

    public init(options: WatchOptions, configPath: String?, commandLine: WatchConfig, watcher: Watcher,
                otherDiscoveries: [any VMDiscovery] = [], otherSources: Bool = false, log: @escaping @Sendable (String) -> Void) {
        self.options = options
        self.configPath = configPath
        self.commandLine = commandLine
        self.watcher = watcher
        self.otherDiscoveries = otherDiscoveries
        self.otherSources = otherSources || !otherDiscoveries.isEmpty
        self.log = log
    }

    /// The options of the command line over the file (when there is one), resolved.
    public static func options(commandLine: WatchConfig, configPath: String?, otherSources: Bool = false) throws -> WatchOptions {
        let file = try configPath.map(WatchConfig.load) ?? WatchConfig()
        return try commandLine.merged(over: file).resolved(otherSources: otherSources)
    }

    /// Opens the host-wide sources the options turn on. At start a source that cannot be
    /// opened is an error (the caller exits with it): asked for, it must not silently be missing.
    public func startSources() throws {
        try lock.withLock {
            if options.hostKernel { try openHostKernelLocked() }
            if options.drops { try openDropsLocked() }
        }
    }

    /// SIGHUP. True when the file was read and applied (sources that then fail to open are
    /// said in a line each and show as `kvmscope_watch_source_up 0`).
    @discardableResult
    public func reload() -> Bool {
        guard let configPath else {
            log("watch: SIGHUP: no --config file, nothing to reload")
            return false
        }
        let series = watcher.metrics.host
        let next: WatchOptions
        do { next = try Self.options(commandLine: commandLine, configPath: configPath, otherSources: otherSources) } catch {
            series.add(WatchMetricFamilies.watchConfigReloads, ["failed"])
            log("watch: reload failed, keeping the configuration in use: \(error)")
            return false
        }
        lock.withLock {
            let old = options
            if next.listen != old.listen { log("watch: reload: listen \(next.listen) takes effect at the next restart (still \(old.listen))") }
            if next.events != old.events { log("watch: reload: events takes effect at the next restart") }
            if next.libvirt != old.libvirt || next.libvirtReadOnly != old.libvirtReadOnly || next.libvirtPassthrough != old.libvirtPassthrough {
                log("watch: reload: the libvirt settings take effect at the next restart")
            }
            if next.autoRecord != old.autoRecord { log("watch: reload: the auto-record settings take effect at the next restart") }
            if next.latencyHistograms != old.latencyHistograms { log("watch: reload: latency-histograms takes effect at the next restart") }
            options = next
            options.autoRecord = old.autoRecord
            options.latencyHistograms = old.latencyHistograms
            options.listen = old.listen
            options.events = old.events
            options.libvirt = old.libvirt
            options.libvirtReadOnly = old.libvirtReadOnly
            options.libvirtPassthrough = old.libvirtPassthrough
            watcher.reconfigure(discoveries: [next.discovery] + otherDiscoveries, settings: options.settings)
            let hostKernelChanged = next.hostKernel != old.hostKernel || (next.hostKernel && next.blockTracepoint != old.blockTracepoint)
            if hostKernelChanged {
                hostKernel?.stop(); hostKernel = nil
                if next.hostKernel { do { try openHostKernelLocked() } catch { log("watch: reload: --host-kernel: \(error)") } }
            }
            if next.drops != old.drops {
                drops?.stop(); drops = nil
                if next.drops { do { try openDropsLocked() } catch { log("watch: reload: --drops: \(error)") } }
            }
            series.add(WatchMetricFamilies.watchConfigReloads, ["ok"])
            log("watch: configuration reloaded from \(configPath): \(next.qmp.count) QMP pattern(s), interval \(next.intervalSeconds) s, host-kernel \(next.hostKernel ? "on" : "off"), drops \(next.drops ? "on" : "off")")
        }
        return true
    }

    public var hostSourcesRunning: (hostKernel: Bool, drops: Bool) { lock.withLock { (hostKernel != nil, drops != nil) } }

    public func stop() {
        lock.withLock {
            hostKernel?.stop(); hostKernel = nil
            drops?.stop(); drops = nil
        }
    }

    private func openHostKernelLocked() throws {
        let series = watcher.metrics.host
        do {
            let h = try openHostKernel(options.blockTracepoint, series, events, log)
            h.start()
            hostKernel = h
        } catch {
            series.set(WatchMetricFamilies.watchSourceUp, [HostKernelWatch.logSource], to: 0)
            throw error
        }
    }

    private func openDropsLocked() throws {
        let series = watcher.metrics.host
        do {
            let d = try openDrops(series, events, log)
            d.start()
            drops = d
        } catch {
            series.set(WatchMetricFamilies.watchSourceUp, [DropsWatch.source], to: 0)
            throw error
        }
    }
}
