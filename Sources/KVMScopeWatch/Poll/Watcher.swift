import Foundation
import KVMScopeLibvirt

/// `kvmscope watch` without its CLI and HTTP server: discovery every interval, one `VMWorker`
/// per VM found, and the metrics they keep. Scrapes read `metrics` only.
public final class Watcher: @unchecked Sendable {
    public let metrics: WatchMetrics
    /// The settings now (a reload may change them: workers read them at each wait).
    public var settings: WatchSettings { cell.value }
    private let cell: WatchSettingsCell
    private var discoveries: [any VMDiscovery]
    private let events: (any WatchEventSink)?
    /// `--auto-record`: captures started on a VM's first BLOCK_IO_ERROR.
    public let autoRecorder: AutoRecorder?

    /// Recursive: a worker created under it claims its name under it.
    private let lock = NSRecursiveLock()
    private var workers: [String: VMWorker] = [:]       // by VMSource.key
    private var names: [Int: String] = [:]              // worker id → its domain label
    private var nextID = 0
    private var stopRequested = false
    private var scanThread: Thread?
    private let scanDone = DispatchSemaphore(value: 0)

    private let libvirtConnectors: [any LibvirtHostConnector]
    private let libvirtPassthrough: Bool
    private let notice: @Sendable (String) -> Void
    private var libvirtWorkers: [LibvirtDomainsWorker] = []

    /// `libvirt`: one connection each (`--libvirt URI`), its running domains watched beside the
    /// QMP monitors; `libvirtPassthrough` polls their query-blockstats through libvirt (which
    /// taints them). `notice` gets one-line messages for the operator (standard error).
    public init(discoveries: [any VMDiscovery], libvirt: [any LibvirtHostConnector] = [], libvirtPassthrough: Bool = false,
                settings: WatchSettings = WatchSettings(), metrics: WatchMetrics = WatchMetrics(),
                events: (any WatchEventSink)? = nil, autoRecorder: AutoRecorder? = nil,
                notice: @escaping @Sendable (String) -> Void = { _ in }) {
        self.autoRecorder = autoRecorder
        self.discoveries = discoveries
        self.libvirtConnectors = libvirt
        self.libvirtPassthrough = libvirtPassthrough
        cell = WatchSettingsCell(settings)
        self.metrics = metrics
        self.events = events
        self.notice = notice
    }

    /// The VMs being watched now, by source key (or `libvirt:NAME`) → domain label.
    public var watched: [String: String] {
        var out = lock.withLock { workers.mapValues { names[$0.id] ?? "" } }
        for w in lock.withLock({ libvirtWorkers }) { out.merge(w.watched) { a, _ in a } }
        return out
    }

    /// Scans now and then every interval on a thread of its own, until `stop`; each libvirt
    /// connection on a thread of its own; all read the settings at each wait, so a reload's
    /// new interval reaches every one.
    public func start() {
        rescan()
        let hooks = LibvirtDomainsWorker.Hooks(
            allocateID: { [weak self] in self?.allocateID() ?? 0 },
            claimName: { [weak self] id, wanted in self?.claim(id, wanted) ?? wanted },
            releaseName: { [weak self] id in self?.release(id) },
            notice: notice)
        let startedLibvirt = lock.withLock {
            libvirtWorkers = libvirtConnectors.map {
                LibvirtDomainsWorker(connector: $0, settings: cell, metrics: metrics, events: events,
                                     passthrough: libvirtPassthrough, autoRecorder: autoRecorder, hooks: hooks)
            }
            return libvirtWorkers
        }
        for w in startedLibvirt { w.start() }
        let t = Thread { [self] in
            while true {
                let end = VMWorker.now() + settings.intervalSeconds
                while VMWorker.now() < end {
                    if lock.withLock({ stopRequested }) { scanDone.signal(); return }
                    Thread.sleep(forTimeInterval: min(settings.stopCheckSeconds, max(0, end - VMWorker.now())))
                }
                rescan()
            }
        }
        t.name = "kvmscope-watch-discovery"
        scanThread = t
        t.start()
    }

    /// One discovery pass: starts workers for new VMs, ends those of VMs no longer found.
    public func rescan() {
        var found: [String: any VMSource] = [:]
        for d in lock.withLock({ discoveries }) { for s in d.scan() where found[s.key] == nil { found[s.key] = s } }
        var ended: [VMWorker] = []
        var started: [VMWorker] = []
        lock.withLock {
            guard !stopRequested else { return }
            for (key, w) in workers where found[key] == nil {
                workers[key] = nil
                ended.append(w)
            }
            for (key, source) in found.sorted(by: { $0.key < $1.key }) where workers[key] == nil {
                let w = VMWorker(id: allocateID(), source: source, settings: cell, metrics: metrics, events: events,
                                 autoRecorder: autoRecorder, claimName: { [weak self] id, wanted in self?.claim(id, wanted) ?? wanted })
                workers[key] = w
                started.append(w)
            }
        }
        for w in ended { retire(w) }
        for w in started { w.start() }
    }

    /// A reload (SIGHUP): new discoveries and settings, applied by a rescan now. VMs found
    /// before and still found keep their workers and connections; the others start or end as at
    /// any rescan. Workers take the new interval and timeouts from their next wait on.
    public func reconfigure(discoveries new: [any VMDiscovery], settings: WatchSettings) {
        lock.withLock { discoveries = new }
        cell.value = settings
        rescan()
    }

    /// Stops every worker, waiting up to `seconds` in all for them to leave their bounded waits.
    public func stop(waiting seconds: Double = 10) {
        let all: [VMWorker] = lock.withLock {
            stopRequested = true
            defer { workers = [:] }
            return Array(workers.values)
        }
        if scanThread != nil { _ = scanDone.wait(timeout: .now() + seconds) }
        // Captures first: each turns off what it turned on while the VM's connection is still open.
        autoRecorder?.stop(waiting: seconds)
        let libvirt = lock.withLock { libvirtWorkers }
        for w in all { w.requestStop() }
        for w in libvirt { w.requestStop() }
        let end = VMWorker.now() + seconds
        for w in all { _ = w.join(seconds: max(0, end - VMWorker.now())) }
        for w in libvirt { _ = w.join(seconds: max(0, end - VMWorker.now())) }
    }

    private func allocateID() -> Int { lock.withLock { nextID += 1; return nextID } }

    private func release(_ id: Int) { lock.withLock { _ = names.removeValue(forKey: id) } }

    private func retire(_ w: VMWorker) {
        w.requestStop()
        let name = lock.withLock { names.removeValue(forKey: w.id) } ?? w.source.fallbackName
        metrics.removeVM(w.id)
        var r = WatchEventRecord(type: .connection, time: Date().timeIntervalSince1970, domain: name, qmp: w.source.address, event: "removed")
        r.message = "no longer found by discovery (its socket is gone): no longer watched"
        events?.write(r)
    }

    /// `wanted`, or `wanted (2)`, `wanted (3)`… when another watched VM already has it: two
    /// VMs must never share series.
    private func claim(_ id: Int, _ wanted: String) -> String {
        lock.withLock {
            let taken = Set(names.filter { $0.key != id }.values)
            var name = wanted, n = 1
            while taken.contains(name) { n += 1; name = "\(wanted) (\(n))" }
            names[id] = name
            return name
        }
    }
}

/// The settings every worker reads, replaced whole by a reload.
final class WatchSettingsCell: @unchecked Sendable {
    private let lock = NSLock()
    private var current: WatchSettings
    init(_ s: WatchSettings) { current = s }
    var value: WatchSettings {
        get { lock.withLock { current } }
        set { lock.withLock { current = newValue } }
    }
}
