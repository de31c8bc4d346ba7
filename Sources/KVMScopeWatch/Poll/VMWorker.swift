import Foundation
import KVMScopeCore
import KVMScopeLive
import KVMScopeQMP

/// Timing of every VM's worker.
public struct WatchSettings: Sendable {
    /// Seconds between polls of query-status/query-block/query-blockstats (and discovery rescans).
    public var intervalSeconds: Double = 15
    /// Bound on each QMP command: a QEMU whose main loop hangs costs its own worker this, never another's.
    public var commandTimeoutSeconds: Double = 5
    /// Reconnect backoff: doubles from the first to the last after each failed attempt.
    public var firstBackoffSeconds: Double = 1
    public var maxBackoffSeconds: Double = 30
    /// `--latency-histograms`: turn on QEMU's latency histograms of disks that have none
    /// (block-latency-histogram-set, with `latencyBoundariesNs`), and off again when watch stops.
    public var latencyHistograms = false
    /// Prometheus' default buckets from 100 µs, in ns: 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50,
    /// 100, 250, 500 ms, 1, 2.5, 5, 10 s.
    public var latencyBoundariesNs: [Int64] = [100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000, 10_000_000,
                                                25_000_000, 50_000_000, 100_000_000, 250_000_000, 500_000_000,
                                                1_000_000_000, 2_500_000_000, 5_000_000_000, 10_000_000_000]
    /// Longest single wait, so a stop request is seen within it (SIGTERM ends watch within about
    /// this); between polls a worker sleeps in poll(2) on its monitor, waking this often at most.
    public var stopCheckSeconds: Double = 1
    public init() {}
}

/// Watches one VM on its own thread: connects, names the VM, polls every interval and reads
/// events in between; when anything fails it drops the connection, counts why, and reconnects
/// with backoff. Nothing it waits on is unbounded (QMPSocketMonitor bounds every read and
/// write with poll(2)), and it shares nothing with other workers but the thread-safe metrics
/// and event sink, so a VM that stalls or misbehaves delays only itself.
final class VMWorker: @unchecked Sendable {
    let id: Int
    let source: any VMSource
    /// Read anew at each use: a reload may change the interval and timeouts.
    private var settings: WatchSettings { settingsCell.value }
    private let settingsCell: WatchSettingsCell
    private let metrics: WatchMetrics
    /// Asks the watcher for a `domain` label no other VM has (QEMU's -name may repeat across VMs).
    private let claimName: @Sendable (Int, String) -> String
    /// `--auto-record`: told of each BLOCK_IO_ERROR, it may start a capture on this VM's connection.
    private let autoRecorder: AutoRecorder?

    private let lock = NSLock()
    private var stopRequested = false
    private var finished = false
    private let done = DispatchSemaphore(value: 0)

    // Worker-thread state: the VM's series and event log lines.
    private let writer: VMSeriesWriter
    private var domain: String { writer.domain }
    /// With --auto-record: the session's connection, shared with a capture when one runs, and
    /// the QEMU behind it (SO_PEERCRED).
    private var shared: SharedQMPMonitor?
    private var peerPID: Int32?
    /// QOM paths of the disks whose histograms this session turned on (turned off at stop).
    private var histogramsSet: [String] = []

    init(id: Int, source: any VMSource, settings: WatchSettingsCell, metrics: WatchMetrics, events: (any WatchEventSink)?,
         autoRecorder: AutoRecorder? = nil, claimName: @escaping @Sendable (Int, String) -> String) {
        self.autoRecorder = autoRecorder
        self.id = id
        self.source = source
        settingsCell = settings
        self.metrics = metrics
        self.claimName = claimName
        writer = VMSeriesWriter(id: id, domain: claimName(id, source.fallbackName), address: source.address,
                                metrics: metrics, events: events)
        metrics.addVM(id, domain: writer.domain)
        metrics.setGauge(WatchMetricFamilies.vmQMPUp, vm: id, [], to: 0)
        metrics.touch(WatchMetricFamilies.watchQMPReconnects, vm: id, [])
    }

    func start() {
        let t = Thread { [self] in run(); lock.withLock { finished = true }; done.signal() }
        t.name = "kvmscope-watch-\(id)"
        t.stackSize = 512 << 10
        t.start()
    }

    func requestStop() { lock.withLock { stopRequested = true } }
    var stopping: Bool { lock.withLock { stopRequested } }

    /// Waits for the thread to end, at most `seconds`; false when it is still inside a bounded wait.
    func join(seconds: Double) -> Bool {
        if lock.withLock({ finished }) { return true }
        guard done.wait(timeout: .now() + seconds) == .success else { return false }
        done.signal()
        return true
    }

    // MARK: - The loop

    private func run() {
        var backoff = settings.firstBackoffSeconds
        var sessions = 0
        var failing = false
        while !stopping {
            var monitor: any QMPMonitor
            do {
                monitor = try source.connect()
            } catch {
                count(error)
                if !failing { log(connection: "lost", message: "\(error)") }   // once per outage, not per attempt
                failing = true
                sleep(backoff)
                backoff = min(backoff * 2, settings.maxBackoffSeconds)
                continue
            }
            sessions += 1
            peerPID = (monitor as? QMPSocketMonitor)?.peerPID
            if autoRecorder != nil {
                // A capture this session starts records over this connection too (QEMU serves
                // one client per monitor); the connection stays open while either uses it.
                let s = SharedQMPMonitor(monitor)
                shared = s
                monitor = s.client()
            }
            if sessions > 1 { metrics.increment(WatchMetricFamilies.watchQMPReconnects, vm: id, []) }
            failing = false
            var shutDown = false
            do {
                try session(monitor, shutDown: &shutDown, resetBackoff: { backoff = self.settings.firstBackoffSeconds })
                if stopping { disableHistograms(monitor) }
            } catch {
                // QEMU closes the monitor when it exits: after a SHUTDOWN event that is the VM
                // ending, not a fault of its monitor.
                if !(shutDown && Self.isClosed(error)) { count(error) }
                log(connection: "lost", message: "\(error)")
                failing = true
            }
            monitor.close()
            shared = nil
            histogramsSet = []
            lostState()
            if stopping { break }
            sleep(backoff)
            backoff = min(backoff * 2, settings.maxBackoffSeconds)
        }
    }

    private func session(_ m: any QMPMonitor, shutDown: inout Bool, resetBackoff: () -> Void) throws {
        let t = settings.commandTimeoutSeconds
        if let reply = try? m.execute("query-name", arguments: nil, timeout: t) as? [String: Any],
           let name = reply["name"] as? String, !name.isEmpty {
            rename(to: BlockStatsParser.clip(name))
        }
        writer.log(connection: "connected", message: nil, qemuVersion: m.qemuVersion)
        // A STOP, RESUME or error asks for the new state now, not at the next interval; but at
        // most once per `minRefresh`, so a guest retrying a failing disk thousands of times a
        // second (each retry a BLOCK_IO_ERROR) costs one poll a second, not one per event.
        let minRefresh = min(1, settings.intervalSeconds)
        var first = true
        while !stopping {
            let disks = try poll(m)
            if first, settings.latencyHistograms { enableHistograms(m, disks) }
            first = false
            resetBackoff()
            var lastPoll = Self.now()
            var refresh = false
            let next = lastPoll + settings.intervalSeconds
            while !stopping {
                let now = Self.now()
                if next - now <= 0 { break }
                if refresh && now - lastPoll >= minRefresh {
                    try poll(m)
                    lastPoll = Self.now(); refresh = false
                    continue
                }
                var wait = min(next - now, settings.stopCheckSeconds)
                if refresh { wait = min(wait, max(0.001, lastPoll + minRefresh - now)) }
                for message in try m.takeEvents(waiting: wait) {
                    if message.eventName == "SHUTDOWN" { shutDown = true }
                    refresh = handle(message) || refresh
                }
            }
        }
    }

    /// Turns on the latency histograms of the disks that have none (another tool's are left as
    /// they are, and read), by their QOM path: block-latency-histogram-set takes the device's
    /// (qmp_get_blk → blk_by_qdev_id), not the drive name. A disk QEMU refuses is left without.
    private func enableHistograms(_ m: any QMPMonitor, _ disks: [DiskBlockStats]) {
        for d in disks where d.operations.values.allSatisfy({ $0.histogram == nil }) {
            guard let qdev = d.qdev else { continue }
            do {
                _ = try m.execute("block-latency-histogram-set", arguments: ["id": qdev, "boundaries": settings.latencyBoundariesNs],
                                  timeout: settings.commandTimeoutSeconds)
                histogramsSet.append(qdev)
            } catch {
                count(error)
            }
        }
    }

    /// Turns off what enableHistograms turned on (block-latency-histogram-set without
    /// boundaries unsets them), so a VM is left as watch found it — but only where the
    /// histograms are still watch's: boundaries someone set meanwhile are theirs, and stay.
    private func disableHistograms(_ m: any QMPMonitor) {
        defer { histogramsSet = [] }
        guard !histogramsSet.isEmpty,
              let reply = try? m.execute("query-blockstats", arguments: nil, timeout: settings.commandTimeoutSeconds) else { return }
        let ours = settings.latencyBoundariesNs
        let disks = BlockStatsParser.parseBlockStats(reply).disks
        for qdev in histogramsSet {
            guard let d = disks.first(where: { $0.qdev == qdev }),
                  d.operations.values.allSatisfy({ $0.histogram == nil || $0.histogram?.boundariesNs == ours }) else { continue }
            _ = try? m.execute("block-latency-histogram-set", arguments: ["id": qdev], timeout: settings.commandTimeoutSeconds)
        }
    }

    /// One poll: state, io-status, counters. Any failure ends the session (the caller reconnects).
    @discardableResult
    private func poll(_ m: any QMPMonitor) throws -> [DiskBlockStats] {
        let started = Self.now()
        let t = settings.commandTimeoutSeconds
        let statusReply = try m.execute("query-status", arguments: nil, timeout: t)
        guard let status = BlockStatsParser.parseStatus(statusReply) else {
            throw QMPError.badReply(command: "query-status", detail: "no running/status")
        }
        let block = BlockStatsParser.parseBlock(try m.execute("query-block", arguments: nil, timeout: t))
        let stats = BlockStatsParser.parseBlockStats(try m.execute("query-blockstats", arguments: nil, timeout: t))
        metrics.recordPoll(seconds: Self.now() - started)
        writer.aliases = block.aliases
        writer.apply(VMPollResult(running: status.running, status: status.status, disks: stats.disks,
                                  ioStatus: block.ioStatus, skippedEntries: stats.skipped))
        return stats.disks
    }

    /// Counts and logs one event; true when the VM's state should be polled now.
    private func handle(_ message: QMPMessage) -> Bool {
        let refresh = writer.handle(message)
        if message.eventName == "BLOCK_IO_ERROR", let autoRecorder, let shared {
            let pid = peerPID
            autoRecorder.trigger(key: source.key, domain: domain, address: source.address) { (shared.client(), pid) }
        }
        return refresh
    }

    // MARK: - Helpers

    private func rename(to wanted: String) {
        let name = claimName(id, wanted)
        guard name != domain else { return }
        writer.domain = name
        metrics.renameVM(id, to: name)
    }

    /// The monitor is gone: the VM's state is unknown, so its state gauges are dropped rather than left at a guess.
    private func lostState() { writer.lostState() }

    private func count(_ error: any Error) {
        metrics.increment(WatchMetricFamilies.watchQMPErrors, vm: id, [Self.kind(of: error)])
        metrics.setGauge(WatchMetricFamilies.vmQMPUp, vm: id, [], to: 0)
    }

    private func log(connection event: String, message: String) { writer.log(connection: event, message: message) }

    /// Sleeps `seconds` in slices, returning early on a stop request.
    private func sleep(_ seconds: Double) {
        let end = Self.now() + seconds
        while !stopping, Self.now() < end { Thread.sleep(forTimeInterval: min(settings.stopCheckSeconds, max(0, end - Self.now()))) }
    }

    /// The `kind` label of kvmscope_watch_qmp_errors_total: a fixed set.
    static func kind(of error: any Error) -> String {
        guard let q = error as? QMPError else { return "other" }
        switch q {
        case .badAddress, .cannotConnect: return "connect"
        case .monitorTaken: return "no-greeting"
        case .notQMP: return "not-qmp"
        case .closed: return "closed"
        case .timedOut: return "timeout"
        case .messageTooLarge: return "too-large"
        case .badReply: return "bad-reply"
        case .commandFailed, .commandNotFound: return "command-failed"
        }
    }

    static func isClosed(_ error: any Error) -> Bool {
        if case .closed? = error as? QMPError { return true }
        return false
    }

    static func event(from message: QMPMessage) -> QMPEvent? { LiveQMPEvent.decode(message.line) }

    static func now() -> Double {
        var ts = timespec(); clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}
