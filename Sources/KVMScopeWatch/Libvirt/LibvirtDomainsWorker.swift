import Foundation
import KVMScopeCore
import KVMScopeLibvirt
import KVMScopeLive
import Prometheus

/// `--libvirt URI`: every running domain of one libvirt connection, on one thread.
///
/// Domains come from virConnectGetAllDomainStats (running ones: each call lists them, so the
/// set is current at every poll), polled every interval, and again at once (at most once a
/// second) after a lifecycle event — a domain started, stopped, paused or resumed is seen
/// without waiting for the interval — or a BLOCK_IO_ERROR/STOP/RESUME among its QMP events.
/// QMP events arrive through libvirt's event passthrough subscription (no command is sent, the
/// domain is not tainted), and are counted and logged as a QMP monitor's are (`VMSeriesWriter`).
///
/// When the connection is lost (libvirtd restarting, keepalive giving up) the error is counted,
/// the domains keep their counters (their state gauges go: unknown while libvirt is away), and
/// the connection is made again with backoff; then the domains are listed and the events
/// subscribed again. Scrapes never wait on libvirt: they render what this thread stored.
final class LibvirtDomainsWorker: @unchecked Sendable {
    /// What the worker needs from its `Watcher`: VM ids and `domain` labels shared with the QMP
    /// VMs (two VMs never share series), and a place for one-line notices (standard error).
    struct Hooks: Sendable {
        var allocateID: @Sendable () -> Int
        var claimName: @Sendable (Int, String) -> String
        var releaseName: @Sendable (Int) -> Void
        var notice: @Sendable (String) -> Void
    }

    private final class Domain {
        let uuid: String
        let id: Int
        let writer: VMSeriesWriter
        var names = DomainDiskNames()
        /// The disks of the last poll (kept when libvirt could not ask QEMU this time).
        var disks: [DiskBlockStats] = []
        /// A `connected` line was logged since the connection was last lost.
        var announced = false
        init(uuid: String, id: Int, writer: VMSeriesWriter) { self.uuid = uuid; self.id = id; self.writer = writer }
    }

    let connector: any LibvirtHostConnector
    /// The settings now: a reload replaces them, read at each wait (as VMWorker does).
    private var settings: WatchSettings { settingsCell.value }
    private let settingsCell: WatchSettingsCell
    private let metrics: WatchMetrics
    private let events: (any WatchEventSink)?
    private let passthrough: Bool
    private let hooks: Hooks
    /// `--auto-record`: a domain's BLOCK_IO_ERROR may start a capture through libvirt.
    private let autoRecorder: AutoRecorder?

    private let lock = NSLock()
    private var stopRequested = false
    private var finished = false
    private var watchedNow: [String: String] = [:]   // address → domain label, for `Watcher.watched`
    private var errorCounters: [String: Counter] = [:]
    private let done = DispatchSemaphore(value: 0)

    // Worker-thread state.
    private var domains: [String: Domain] = [:]       // by UUID

    private let up: Gauge
    private let qmpEvents: Gauge
    private let reconnects: Counter

    init(connector: any LibvirtHostConnector, settings: WatchSettingsCell, metrics: WatchMetrics, events: (any WatchEventSink)?,
         passthrough: Bool, autoRecorder: AutoRecorder? = nil, hooks: Hooks) {
        self.autoRecorder = autoRecorder
        self.connector = connector
        self.settingsCell = settings
        self.metrics = metrics
        self.events = events
        self.passthrough = passthrough
        self.hooks = hooks
        let F = WatchMetricFamilies.self
        let labels = [("uri", connector.uri)]
        up = metrics.registry.makeGauge(descriptor: F.libvirtUp.descriptor, labels: labels)
        qmpEvents = metrics.registry.makeGauge(descriptor: F.libvirtQMPEvents.descriptor, labels: labels)
        reconnects = metrics.registry.makeCounter(descriptor: F.libvirtReconnects.descriptor, labels: labels)
        up.set(to: 0)
        qmpEvents.set(to: 0)
    }

    func start() {
        let t = Thread { [self] in run(); lock.withLock { finished = true }; done.signal() }
        t.name = "kvmscope-watch-libvirt"
        t.stackSize = 1 << 20
        t.start()
    }

    func requestStop() { lock.withLock { stopRequested = true } }
    private var stopping: Bool { lock.withLock { stopRequested } }

    func join(seconds: Double) -> Bool {
        if lock.withLock({ finished }) { return true }
        guard done.wait(timeout: .now() + seconds) == .success else { return false }
        done.signal()
        return true
    }

    /// The domains watched now: `libvirt:NAME` → domain label.
    var watched: [String: String] { lock.withLock { watchedNow } }

    // MARK: - The loop

    private func run() {
        var backoff = settings.firstBackoffSeconds
        var sessions = 0
        var failing = false
        var toldNoEvents = false
        while !stopping {
            let host: any LibvirtHost
            do {
                host = try connector.open()
            } catch {
                count(error)
                if !failing { hooks.notice("watch: libvirt at \(connector.uri): \(error) (retrying, backoff up to \(Int(settings.maxBackoffSeconds)) s)") }
                failing = true
                sleep(backoff)
                backoff = min(backoff * 2, settings.maxBackoffSeconds)
                continue
            }
            sessions += 1
            if sessions > 1 {
                reconnects.increment()
                hooks.notice("watch: libvirt at \(connector.uri): connected again")
            }
            failing = false
            up.set(to: 1)
            switch host.qmpEvents {
            case .subscribed:
                qmpEvents.set(to: 1)
            case let .unavailable(why):
                qmpEvents.set(to: 0)
                if !toldNoEvents {
                    hooks.notice("watch: libvirt at \(connector.uri): \(why): watching its domains' state and counters only — no BLOCK_IO_ERROR, STOP or other QMP events, so kvmscope_block_io_errors_total is absent for them (a read-write connection has them: root, or a member of the libvirt group)")
                    toldNoEvents = true
                }
            }
            do {
                try session(host, resetBackoff: { backoff = self.settings.firstBackoffSeconds })
            } catch {
                counter(Self.kind(of: error, otherwise: "stats")).increment()
                hooks.notice("watch: libvirt at \(connector.uri): \(error); the \(domains.count) domain(s) keep their counters meanwhile (reconnecting)")
                for d in domains.values { d.writer.log(connection: "lost", message: "\(error)"); d.announced = false }
            }
            host.close()
            up.set(to: 0)
            qmpEvents.set(to: 0)
            for d in domains.values { d.writer.lostState() }
            if stopping { break }
            sleep(backoff)
            backoff = min(backoff * 2, settings.maxBackoffSeconds)
        }
    }

    private func session(_ host: any LibvirtHost, resetBackoff: () -> Void) throws {
        var lastRefresh = -Double.infinity
        var refresh = false
        while !stopping {
            // Read each time round: a reload's new interval applies from this wait on.
            let s = settings
            let minRefresh = min(1, s.intervalSeconds)
            let nextPoll = lastRefresh + s.intervalSeconds
            let now = VMWorker.now()
            if now >= nextPoll || (refresh && now - lastRefresh >= minRefresh) {
                try poll(host)
                resetBackoff()
                lastRefresh = VMWorker.now(); refresh = false
                continue
            }
            var wait = min(nextPoll - now, s.stopCheckSeconds)
            if refresh { wait = min(wait, max(0.001, lastRefresh + minRefresh - now)) }
            for event in try host.takeEvents(waiting: wait) {
                switch event {
                case .lifecycle:
                    refresh = true
                case let .qmp(uuid, name, line):
                    let d = domain(uuid: uuid, name: name, host: host)
                    let object = (try? JSONSerialization.jsonObject(with: Data(line))) as? [String: Any] ?? [:]
                    if d.writer.handle(QMPMessage(line: line, object: object)) { refresh = true }
                    if object["event"] as? String == "BLOCK_IO_ERROR", let autoRecorder {
                        let connector = self.connector
                        autoRecorder.trigger(key: "libvirt:\(connector.uri):\(uuid)", domain: d.writer.domain, address: d.writer.address) {
                            let (m, pid) = try connector.monitor(domain: name)
                            return (m, pid)
                        }
                    }
                case let .dropped(n):
                    counter("events-dropped").increment(by: Int64(n))
                }
            }
        }
    }

    /// One poll of every running domain: new ones are added, those no longer running removed
    /// (their series end, as a VM's that shut down), each one's state and counters stored.
    private func poll(_ host: any LibvirtHost) throws {
        let started = VMWorker.now()
        let all = try host.allDomainStats()
        var seen = Set<String>()
        for s in all where seen.insert(s.uuid).inserted {
            let d = domain(uuid: s.uuid, name: s.name, host: host)
            // A disk libvirt lists that the names do not know: hot-plugged since; read the XML again.
            if let disks = s.disks, !Set(disks.map(\.name)).isSubset(of: d.names.targets) { readNames(d, host: host) }
            var result = LibvirtPollResult.make(s, previousDisks: d.disks)
            // io-status (a disk stopped on an error): libvirt's query-block through its own monitor.
            do {
                result = LibvirtPollResult.withDiskErrors(result, errors: try host.diskErrors(uuid: s.uuid))
            } catch {
                counter(Self.kind(of: error, otherwise: "disk-errors")).increment()
            }
            if passthrough {
                do {
                    let reply = try host.qemuMonitorCommand(uuid: s.uuid, "query-blockstats", timeout: settings.commandTimeoutSeconds)
                    result = LibvirtPollResult.withPassthrough(result, blockstats: BlockStatsParser.parseBlockStats(reply).disks,
                                                               aliases: d.names.aliases)
                } catch {
                    counter(Self.kind(of: error, otherwise: "passthrough")).increment()
                }
            }
            d.disks = result.disks
            d.writer.apply(result)
            if !d.announced {
                d.writer.log(connection: "connected", message: "through libvirt at \(connector.uri)")
                d.announced = true
            }
        }
        for (uuid, d) in domains where !seen.contains(uuid) { remove(uuid, d) }
        metrics.recordPoll(seconds: VMWorker.now() - started)
    }

    /// The domain of `uuid`, added (named, its disks' names read) when it is new.
    private func domain(uuid: String, name: String, host: any LibvirtHost) -> Domain {
        if let d = domains[uuid] { return d }
        let id = hooks.allocateID()
        let label = hooks.claimName(id, BlockStatsParser.clip(name))
        let address = (try? LibvirtAddress(domain: name, uri: connector.uri).description) ?? "libvirt:\(name)"
        metrics.addVM(id, domain: label)
        let d = Domain(uuid: uuid, id: id, writer: VMSeriesWriter(id: id, domain: label, address: address, metrics: metrics, events: events))
        domains[uuid] = d
        readNames(d, host: host)
        lock.withLock { watchedNow[address] = label }
        return d
    }

    private func readNames(_ d: Domain, host: any LibvirtHost) {
        do {
            d.names = try host.diskNames(uuid: d.uuid)
            d.writer.aliases = d.names.aliases
            d.writer.deviceAliases = d.names.aliases
        } catch {
            counter(Self.kind(of: error, otherwise: "xml")).increment()
        }
    }

    private func remove(_ uuid: String, _ d: Domain) {
        domains[uuid] = nil
        metrics.removeVM(d.id)
        hooks.releaseName(d.id)
        lock.withLock { watchedNow[d.writer.address] = nil }
        d.writer.log(connection: "removed", message: "no longer running (libvirt lists it no more): no longer watched")
    }

    // MARK: - Helpers

    private func count(_ error: any Error) { counter(Self.kind(of: error, otherwise: "other")).increment() }

    private func counter(_ kind: String) -> Counter {
        lock.withLock {
            if let c = errorCounters[kind] { return c }
            let c = metrics.registry.makeCounter(descriptor: WatchMetricFamilies.libvirtErrors.descriptor,
                                                 labels: [("uri", connector.uri), ("kind", kind)])
            errorCounters[kind] = c
            return c
        }
    }

    /// The `kind` label of kvmscope_watch_libvirt_errors_total: a fixed set.
    static func kind(of error: any Error, otherwise: String) -> String {
        switch error {
        case LibvirtError.cannotConnect: return "connect"
        case LibvirtError.connectionLost: return "closed"
        case is QMPError: return "passthrough"
        default: return otherwise
        }
    }

    private func sleep(_ seconds: Double) {
        let end = VMWorker.now() + seconds
        while !stopping, VMWorker.now() < end { Thread.sleep(forTimeInterval: min(settings.stopCheckSeconds, max(0, end - VMWorker.now()))) }
    }
}
