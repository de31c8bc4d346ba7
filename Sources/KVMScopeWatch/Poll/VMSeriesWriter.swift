import Foundation
import KVMScopeCore
import KVMScopeLive
import KVMScopeQMP

/// What one VM's observations do to its series and to the event log, whichever way they came:
/// a QMP monitor polled by `VMWorker`, or libvirt (`LibvirtDomainsWorker`). Both hand it the
/// same things — a `VMPollResult` (state, io-status, counters) and QMP event lines — so the
/// series a VM gets do not depend on where its data came from; only which are present does
/// (libvirt has no failed/invalid counts and no io-status: those series are then absent).
///
/// Used from one thread at a time (its worker's).
final class VMSeriesWriter: @unchecked Sendable {
    let id: Int
    private let metrics: WatchMetrics
    private let events: (any WatchEventSink)?
    /// The `domain` label now (QEMU's -name, libvirt's domain name, or the socket's file name).
    var domain: String
    /// How the VM's monitor is named in the event log (`unix:/run/vm1.qmp`, `libvirt:NAME`).
    let address: String
    /// BLOCK_IO_ERROR's node-name, qdev or QOM path → the device label (from query-block, or
    /// libvirt's domain XML).
    var aliases: [String: String] = [:]
    /// BLOCK_IO_ERROR's `device` (a BlockBackend name) → the device label, when the label is not
    /// QEMU's own name (libvirt: `drive-virtio-disk0` → `vda`). Empty on the QMP path, where
    /// the BlockBackend name is the label (a qdev id in `aliases` may equal another drive's name).
    var deviceAliases: [String: String] = [:]
    private var knownDevices: Set<String> = []

    init(id: Int, domain: String, address: String, metrics: WatchMetrics, events: (any WatchEventSink)?) {
        self.id = id
        self.domain = domain
        self.address = address
        self.metrics = metrics
        self.events = events
    }

    /// One poll's result: state gauges, io-status, mirrored counters; disks gone from the
    /// result lose their series.
    func apply(_ r: VMPollResult) {
        let F = WatchMetricFamilies.self
        metrics.setGauge(F.vmQMPUp, vm: id, [], to: 1)
        metrics.setGauge(F.vmRunning, vm: id, [], to: r.running ? 1 : 0)
        if r.running { metrics.setAll(F.vmPaused, vm: id, to: 0) } else { metrics.setState(F.vmPaused, vm: id, [r.status]) }

        var refused = r.skippedEntries > 0
        let devices = Set(r.disks.map(\.device))
        for disk in r.disks {
            for (kind, c) in disk.operations {
                let labels = [disk.device, kind.rawValue]
                if let v = c.operations { refused = !metrics.setCounter(F.blockOperations, vm: id, labels, to: v) || refused }
                if let v = c.bytes { refused = !metrics.setCounter(F.blockBytes, vm: id, labels, to: v) || refused }
                if let v = c.totalTimeNs { refused = !metrics.setCounter(F.blockOperationSeconds, vm: id, labels, to: v, scale: 1e-9) || refused }
                if let v = c.failed { refused = !metrics.setCounter(F.blockFailedOperations, vm: id, labels, to: v) || refused }
                if let v = c.invalid { refused = !metrics.setCounter(F.blockInvalidOperations, vm: id, labels, to: v) || refused }
            }
        }
        for (device, s) in r.ioStatus {
            for value in ["ok", "failed", "nospace"] { metrics.setGauge(F.blockIOStatus, vm: id, [device, value], to: value == s ? 1 : 0) }
        }
        // Disks that left (DEVICE_DELETED, blockdev-del, virsh detach-disk): their series end with them.
        if devices != knownDevices {
            metrics.remove([F.blockOperations, F.blockBytes, F.blockOperationSeconds, F.blockFailedOperations, F.blockInvalidOperations],
                           vm: id, keepingFirstLabel: devices)
            knownDevices = devices
        }
        metrics.remove([F.blockIOStatus], vm: id, keepingFirstLabel: Set(r.ioStatus.keys))
        metrics.setLatencyHistograms(vm: id, r.disks)
        if refused { metrics.increment(F.watchQMPErrors, vm: id, ["series-limit"]) }
    }

    /// Counts and logs one QMP event; true when the VM's state should be polled now.
    func handle(_ message: QMPMessage) -> Bool {
        guard let event = LiveQMPEvent.decode(message.line) else { return false }
        if let t = event.time { metrics.setEventLag(seconds: Date().timeIntervalSince1970 - t) }
        var device = ""
        if let e = event.blockIOError {
            device = BlockStatsParser.diskName(device: e.device, qdev: nil).map { deviceAliases[$0] ?? $0 }
                ?? e.nodeName.flatMap { aliases[$0] } ?? e.qomPath.flatMap { aliases[$0] }
                ?? e.nodeName.map(BlockStatsParser.clip) ?? ""
            let errno = BlockIOErrorExplanation.errno(of: e)
            let labels = [device, BlockStatsParser.clip(e.nodeName ?? ""), e.operation.rawValue, e.action.rawValue, errno?.name ?? "unknown"]
            if !metrics.increment(WatchMetricFamilies.blockIOErrors, vm: id, labels) {
                metrics.increment(WatchMetricFamilies.watchQMPErrors, vm: id, ["series-limit"])
            }
        }
        events?.write(WatchEventRecord(event: event, domain: domain, qmp: address, device: device))
        return ["BLOCK_IO_ERROR", "STOP", "RESUME", "RESET", "DEVICE_DELETED", "BLOCK_JOB_ERROR"].contains(event.name)
    }

    /// The VM's state is no longer known (its monitor or libvirt is gone): its state gauges are
    /// dropped rather than left at a guess; counters stay.
    func lostState() {
        let F = WatchMetricFamilies.self
        metrics.setGauge(F.vmQMPUp, vm: id, [], to: 0)
        metrics.remove([F.vmRunning, F.vmPaused, F.blockIOStatus], vm: id)
    }

    func log(connection event: String, message: String?, qemuVersion: String? = nil) {
        var r = WatchEventRecord(type: .connection, time: Date().timeIntervalSince1970, domain: domain, qmp: address, event: event)
        r.message = message
        r.qemuVersion = qemuVersion
        events?.write(r)
    }
}
