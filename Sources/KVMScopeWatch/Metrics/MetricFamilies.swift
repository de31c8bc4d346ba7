import Prometheus

/// One metric name of `watch`'s contract (docs/watch.md lists each with what to do about it):
/// its help text and its label names, always in this order.
public struct WatchMetricFamily: Hashable, Sendable {
    public let name: String
    public let help: String
    public let labels: [String]

    var descriptor: MetricNameDescriptor {
        // The full name is `metricName` (no namespace/unit parts: the contract spells each name whole).
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }
}

/// The fixed metric contract: alert rules and dashboards are written against these names.
public enum WatchMetricFamilies {
    public static let blockIOErrors = WatchMetricFamily(
        name: "kvmscope_block_io_errors_total",
        help: "QEMU BLOCK_IO_ERROR events: a disk request failed in QEMU's block layer or the storage beneath it (errno decoded from QEMU's reason text; action what QEMU did)",
        labels: ["domain", "device", "node", "operation", "action", "errno"])
    public static let blockFailedOperations = WatchMetricFamily(
        name: "kvmscope_block_failed_operations_total",
        help: "Requests that failed in QEMU's block layer (query-blockstats failed_*_operations)",
        labels: ["domain", "device", "operation"])
    public static let blockInvalidOperations = WatchMetricFamily(
        name: "kvmscope_block_invalid_operations_total",
        help: "Requests QEMU refused as invalid, e.g. beyond the end of the disk (query-blockstats invalid_*_operations)",
        labels: ["domain", "device", "operation"])
    public static let blockOperations = WatchMetricFamily(
        name: "kvmscope_block_operations_total",
        help: "Requests completed by QEMU's block layer (query-blockstats *_operations)",
        labels: ["domain", "device", "operation"])
    public static let blockBytes = WatchMetricFamily(
        name: "kvmscope_block_bytes_total",
        help: "Bytes transferred by QEMU's block layer (query-blockstats *_bytes)",
        labels: ["domain", "device", "operation"])
    public static let blockOperationSeconds = WatchMetricFamily(
        name: "kvmscope_block_operation_seconds_total",
        help: "Total time of completed requests in seconds (query-blockstats *_total_time_ns); divide its rate by the operations rate for mean latency",
        labels: ["domain", "device", "operation"])
    public static let blockOperationLatency = WatchMetricFamily(
        name: "kvmscope_block_operation_latency_seconds",
        help: "Request latency from QEMU's own histograms (block-latency-histogram-set; --latency-histograms), counted since watch first saw each; failed requests included",
        labels: ["domain", "device", "operation"])
    public static let vmRunning = WatchMetricFamily(
        name: "kvmscope_vm_running",
        help: "1 when QEMU reports the VM running (query-status), 0 when it is stopped",
        labels: ["domain"])
    public static let vmPaused = WatchMetricFamily(
        name: "kvmscope_vm_paused",
        help: "1 for the run state a stopped VM is in (reason io-error: paused by werror/rerror=stop), 0 for states it was in before",
        labels: ["domain", "reason"])
    public static let blockIOStatus = WatchMetricFamily(
        name: "kvmscope_block_io_status",
        help: "1 for a disk's current I/O status (query-block io-status: ok, failed, nospace), 0 for the others",
        labels: ["domain", "device", "status"])
    public static let vmQMPUp = WatchMetricFamily(
        name: "kvmscope_vm_qmp_up",
        help: "1 when the last poll of the VM succeeded (its QMP monitor, or libvirt for a --libvirt domain)",
        labels: ["domain"])
    public static let watchVMs = WatchMetricFamily(
        name: "kvmscope_watch_vms", help: "VMs being watched (QMP monitors and libvirt domains)", labels: [])
    public static let watchQMPErrors = WatchMetricFamily(
        name: "kvmscope_watch_qmp_errors_total",
        help: "Failures talking to a VM's QMP monitor, by kind (connect, no-greeting, not-qmp, closed, timeout, bad-reply, command-failed, too-large, series-limit)",
        labels: ["domain", "kind"])
    public static let watchQMPReconnects = WatchMetricFamily(
        name: "kvmscope_watch_qmp_reconnects_total",
        help: "Times the connection to a VM's QMP monitor was lost and made again",
        labels: ["domain"])
    public static let watchPollDuration = WatchMetricFamily(
        name: "kvmscope_watch_poll_duration_seconds",
        help: "Time one poll of one VM took (query-status, query-block, query-blockstats)", labels: [])
    public static let watchEventLag = WatchMetricFamily(
        name: "kvmscope_watch_event_lag_seconds",
        help: "Seconds between the QMP timestamp of the last event and when watch read it", labels: [])

    // Host-wide families (no `domain` label): HostSeries keeps them, each capped in label sets.
    public static let hostBlockErrors = WatchMetricFamily(
        name: "kvmscope_host_block_errors_total",
        help: "Host kernel block, SCSI, NVMe, ATA, multipath, iSCSI, NFS, Ceph and filesystem errors (/dev/kmsg and the block:block_rq_error tracepoint), by host device and kind",
        labels: ["device", "kind"])
    public static let netDrops = WatchMetricFamily(
        name: "kvmscope_net_drops_total",
        help: "Packets the host kernel dropped (skb:kfree_skb or NET_DM), by drop reason and kernel function",
        labels: ["reason", "location"])
    public static let watchSeriesOverflow = WatchMetricFamily(
        name: "kvmscope_watch_series_overflow_total",
        help: "Host-wide events not exported because their metric already had its maximum of label sets (metric: which)",
        labels: ["metric"])
    public static let watchSourceUp = WatchMetricFamily(
        name: "kvmscope_watch_source_up",
        help: "1 while a host-wide source turned on is being read (host-kernel-log, block-tracepoint, drops), 0 when it could not be opened or failed",
        labels: ["source"])
    public static let watchSourceLost = WatchMetricFamily(
        name: "kvmscope_watch_source_lost_total",
        help: "Records a host-wide source lost before watch read them (host-kernel-log: times /dev/kmsg records were overwritten unread; block-tracepoint and drops: ring-buffer events lost)",
        labels: ["source"])
    public static let watchConfigReloads = WatchMetricFamily(
        name: "kvmscope_watch_config_reloads_total",
        help: "SIGHUP reloads of the configuration file, by result (ok, failed: the old configuration stays)",
        labels: ["result"])
    public static let watchCaptures = WatchMetricFamily(
        name: "kvmscope_watch_captures_total",
        help: "--auto-record captures, by result (recorded; failed: it could not attach, write or restore; skipped-busy, skipped-disk-full, skipped-no-pid: a VM's first I/O error got no capture)",
        labels: ["result"])
    public static let watchCapturesRunning = WatchMetricFamily(
        name: "kvmscope_watch_captures_running", help: "--auto-record captures recording now", labels: [])
    public static let watchCaptureBytes = WatchMetricFamily(
        name: "kvmscope_watch_capture_bytes", help: "Bytes the --auto-record directory holds (its captures, earlier ones included)", labels: [])

    public static let perVM: [WatchMetricFamily] = [
        blockIOErrors, blockFailedOperations, blockInvalidOperations, blockOperations, blockBytes,
        blockOperationSeconds, blockOperationLatency, vmRunning, vmPaused, blockIOStatus, vmQMPUp, watchQMPErrors, watchQMPReconnects,
    ]
    public static let hostWide: [WatchMetricFamily] = [
        hostBlockErrors, netDrops, watchSeriesOverflow, watchSourceUp, watchSourceLost, watchConfigReloads,
        watchCaptures, watchCapturesRunning, watchCaptureBytes,
    ]
    public static let all: [WatchMetricFamily] = perVM + [watchVMs, watchPollDuration, watchEventLag] + hostWide + libvirt
}
