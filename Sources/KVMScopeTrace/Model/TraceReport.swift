/// Everything `kvmscope trace` found in one trace: the model both the text and the JSON
/// renderers print (JSON keys documented in the README, section `kvmscope trace`).
public struct TraceReport: Sendable, Equatable, Codable {
    public struct Input: Sendable, Equatable, Codable {
        /// File name or `<stdin>`.
        public var name: String
        public var stats: TraceReadStats
        /// Where the event definitions came from.
        public var definitions: [String]

        public init(name: String, stats: TraceReadStats, definitions: [String]) {
            self.name = name
            self.stats = stats
            self.definitions = definitions
        }
    }

    public struct Requests: Sendable, Equatable, Codable {
        /// Returned to the guest with status OK (retried and ignored errors included).
        public var completed = 0
        /// Returned to the guest with an error status (IOERR, UNSUPP).
        public var failed = 0
        /// Popped and never returned by the end of the trace (see `inFlight`).
        public var inFlightAtEnd = 0
        /// Outstanding when their device was reset (`virtio_set_status … val 0`): discarded, not leaks.
        public var discardedAtReset = 0
        /// Failed in storage, VM paused, submitted again (succeeded or not).
        public var pausedAndRetried = 0
        /// Failed in storage but the guest was told OK (werror/rerror=ignore).
        public var backendErrorsIgnored = 0
        /// Seen and not ended by the end of a trace that holds neither virtio_blk_req_complete
        /// nor virtqueue_fill: whether they completed is not in the trace (neither in flight
        /// nor leaked).
        public var outcomeUnknown = 0
        public init() {}
    }

    public struct TimeSpan: Sendable, Equatable, Codable {
        public var start: Double
        public var end: Double
        public var seconds: Double
        public var clock: TraceClock

        enum CodingKeys: String, CodingKey { case start = "startTime", end = "endTime", seconds, clock }
    }

    public struct Throughput: Sendable, Equatable, Codable {
        public var seconds: Double
        public var requestsPerSecond: Double
        public var bytesPerSecond: Double
    }

    public var input: Input
    public var timeSpan: TimeSpan?
    public var devices: [VirtioBlkDeviceSummary]
    public var requests: Requests
    /// All failures, however many; `failures` holds the first `failuresShown` in detail.
    public var failuresTotal: Int
    public var failuresShown: Int
    public var failures: [VirtioBlkFailure]
    /// Exact grouping of all failures by device, operation, cause, errno and guest status.
    public var failureGroups: [VirtioBlkFailureGroup]
    public var inFlightTotal: Int
    public var inFlight: [VirtioBlkInFlightRequest]
    /// Requests still in flight that count as leaks (see `VirtioBlkInFlightRequest.leaked`).
    public var leakedTotal: Int
    public var vmPauses: [VMPause]
    /// Per operation (`read`, `write`, `flush`, `other`, `flush-or-other`), only those seen.
    public var latency: [String: OperationLatency]
    public var throughput: Throughput?
    /// Things that limit what the analysis can say (dropped events, missing events...).
    public var warnings: [String]
    /// Which buses the trace has events for, and which `-trace` patterns each one's analysis
    /// still lacks.
    public var coverage: TraceCoverageReport
    /// virtio-scsi / SCSI requests (`virtio_scsi_*`, `scsi_req_*`, `scsi_disk_*`).
    public var scsi = ScsiReport()
    /// What served the disks (nbd, qcow2, file) and the NBD client's connection account.
    public var backend = TraceBackendReport(kinds: [], kind: "unknown", events: [:], nbd: nil)

    /// 1 when failures or leaked requests were found (virtio-blk or SCSI requests that failed,
    /// NBD requests the client failed), else 0 (the command's exit status).
    public var exitStatus: Int32 {
        failuresTotal > 0 || leakedTotal > 0 || scsi.failuresTotal > 0 || (backend.nbd?.failedRequestsTotal ?? 0) > 0 ? 1 : 0
    }
}

extension TraceReport {
    /// Every key always present (`timeSpan`/`throughput` are null for traces without timestamps).
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(input, forKey: .input)
        try c.encode(timeSpan, forKey: .timeSpan)
        try c.encode(devices, forKey: .devices)
        try c.encode(requests, forKey: .requests)
        try c.encode(failuresTotal, forKey: .failuresTotal)
        try c.encode(failuresShown, forKey: .failuresShown)
        try c.encode(failures, forKey: .failures)
        try c.encode(failureGroups, forKey: .failureGroups)
        try c.encode(inFlightTotal, forKey: .inFlightTotal)
        try c.encode(inFlight, forKey: .inFlight)
        try c.encode(leakedTotal, forKey: .leakedTotal)
        try c.encode(vmPauses, forKey: .vmPauses)
        try c.encode(latency, forKey: .latency)
        try c.encode(throughput, forKey: .throughput)
        try c.encode(warnings, forKey: .warnings)
        try c.encode(coverage, forKey: .coverage)
        try c.encode(scsi, forKey: .scsi)
        try c.encode(backend, forKey: .backend)
    }
}
