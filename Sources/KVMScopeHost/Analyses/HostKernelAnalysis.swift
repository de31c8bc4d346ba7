import KVMScopeGuestLog

/// Per host device (or controller, map, session, NFS server): what its findings say.
public struct HostDeviceSummary: Equatable, Sendable {
    public var device: String
    /// Messages about this device (`kinds` counts them by kind).
    public var findings = 0
    /// Failures: a failed request's several messages count once (HostFailureGrouping).
    public var failures = 0
    /// Findings per kind, by `HostFindingKind.ordinal`.
    var kindCounts = [Int](repeating: 0, count: HostFindingKind.allCases.count)
    public var kinds: [HostFindingKind: Int] {
        var d: [HostFindingKind: Int] = [:]
        for k in HostFindingKind.allCases where kindCounts[k.ordinal] > 0 { d[k] = kindCounts[k.ordinal] }
        return d
    }
    public var operations: [String: Int] = [:]
    public var errnos: [String: Int] = [:]
    /// Distinct 512-byte sectors of failed requests, in the order first seen (at most `sectorLimit`).
    public var sectors: [UInt64] = []
    public var sectorsNotListed = 0
    public var lowestSector: UInt64?
    public var highestSector: UInt64?
    public var firstLine: Int
    public var lastLine: Int
    public var firstTime: GuestLogTime
    public var lastTime: GuestLogTime
    /// Noise lines naming this device (a loop device's capacity change, mkfs's DISCARD tries).
    public var noise: [HostNoiseKind: Int] = [:]

    public static let sectorLimit = 64

    init(device: String, line: Int, time: GuestLogTime) {
        self.device = device; firstLine = line; lastLine = line; firstTime = time; lastTime = time
    }
}

/// The host kernel log, read: findings (the first `detailLimit` listed, all counted), per-device
/// summaries, noise counts.
public struct HostKernelReport: Equatable, Sendable {
    public var source: String
    public var input: HostKernelInputStats
    public var findings: [HostKernelFinding]
    public var findingsTotal: Int
    /// Failures, each counted once however many messages the kernel printed for it
    /// (HostFailureGrouping); recoveries are not failures.
    public var failures: Int
    public var kinds: [HostFindingKind: Int]
    public var devices: [HostDeviceSummary]
    /// Findings on more devices than the analysis keeps summaries for (a hostile input).
    public var devicesNotSummarised: Int
    public var noise: [HostNoiseKind: Int]
    public var noiseFirstLine: [HostNoiseKind: Int]

    public var hasFailures: Bool { failures > 0 }
    /// The input holds no kernel message at all: not a kernel log.
    public var isNotAKernelLog: Bool { input.recognisedLines == 0 }
}

/// The streaming analysis: a sink for HostKernelLogReader that keeps bounded state.
public struct HostKernelAnalysis: HostKernelEventSink {
    public let detailLimit: Int
    public let deviceLimit: Int
    private(set) var findings: [HostKernelFinding] = []
    private(set) var total = 0
    private var kindCounts = [Int](repeating: 0, count: HostFindingKind.allCases.count)
    private var failureCount = 0
    private var grouping = HostFailureGrouping()
    /// Summaries in order of first finding, and where each device's is (updated in place).
    private var summaries: [HostDeviceSummary] = []
    private var summaryIndex: [String: Int] = [:]
    private var droppedDevices = 0
    private var noise: [HostNoiseKind: Int] = [:]
    private var noiseFirstLine: [HostNoiseKind: Int] = [:]
    /// Noise per device, kept apart: it usually comes before the device's failures (mkfs, attach).
    private var noiseByDevice: [NoiseKey: Int] = [:]
    private struct NoiseKey: Hashable { var device: String; var kind: HostNoiseKind }
    /// block_rq_error tracepoint records by request, while their kernel messages may follow:
    /// blk_update_request (block/blk-mq.c) calls blk_print_req_error and trace_block_rq_error
    /// in one branch, so an `I/O error, dev` message matching a record is that failure again.
    private var traced: [TracedRequest: Int] = [:]
    private var alsoTraced = 0
    private struct TracedRequest: Hashable { var device: String; var sector: UInt64; var operation: String }
    /// Bounds `traced` (a hostile recording): beyond it, messages are no longer matched.
    static let tracedLimit = 1 << 16

    public init(detailLimit: Int = 10_000, deviceLimit: Int = 4096) {
        self.detailLimit = max(0, detailLimit)
        self.deviceLimit = max(0, deviceLimit)
    }

    /// Messages are kept for the listed findings only.
    public var wantsMessages: Bool { findings.count < detailLimit }

    public mutating func consume(_ event: HostKernelEvent) {
        switch event {
        case .noise(let kind, let device, let line):
            noise[kind, default: 0] += 1
            if noiseFirstLine[kind] == nil { noiseFirstLine[kind] = line }
            if let device {
                let key = NoiseKey(device: device, kind: kind)
                if let n = noiseByDevice[key] { noiseByDevice[key] = n + 1 }
                else if noiseByDevice.count < deviceLimit { noiseByDevice[key] = 1 }
            }
        case .finding(let f):
            if f.kind == .blockError, let device = f.device, let sector = f.sector {
                let key = TracedRequest(device: device, sector: sector, operation: Self.family(f.operation))
                if f.source == .blockTracepoint {
                    if let n = traced[key] { traced[key] = n + 1 } else if traced.count < Self.tracedLimit { traced[key] = 1 }
                } else if let n = traced[key], n > 0 {
                    traced[key] = n - 1
                    alsoTraced += 1
                    // The SCSI/NVMe messages before it are the recorded request's.
                    if grouping.traced(f) != nil {
                        failureCount -= 1
                        if let i = summaryIndex[device] { summaries[i].failures -= 1 }
                    }
                    return
                }
            }
            var counts = (failure: !f.kind.isRecovery, operation: true, errno: true)
            var partOf: Int?
            if case .continues(let line, let operationCounted, let errnoCounted) = grouping.place(f) {
                partOf = line
                counts = (false, !operationCounted, !errnoCounted)
            }
            total += 1
            kindCounts[f.kind.ordinal] += 1
            if counts.failure { failureCount += 1 }
            // The finding is copied only to be kept, and changed only when it continues a failure.
            if findings.count < detailLimit {
                findings.append(f)
                if let partOf { findings[findings.count - 1].partOfLine = partOf }
            }
            guard let key = f.device ?? f.peer else { return }
            if let i = summaryIndex[key] {
                summaries[i].add(f, failure: counts.failure, operation: counts.operation, errno: counts.errno)
            } else {
                guard summaries.count < deviceLimit else { droppedDevices += 1; return }
                var summary = HostDeviceSummary(device: key, line: f.line, time: f.time)
                summary.add(f, failure: counts.failure, operation: counts.operation, errno: counts.errno)
                summaryIndex[key] = summaries.count
                summaries.append(summary)
            }
        }
    }

    /// blk_print_req_error prints the op's name (WRITE_ZEROES among them); blk_fill_rwbs has
    /// one letter for the writes: compared by that letter (BlockIOOperation raw values).
    static func family(_ operation: String?) -> String {
        switch operation {
        case BlockIOOperation.write.rawValue, BlockIOOperation.writeZeroes.rawValue, BlockIOOperation.writeSame.rawValue: return "W"
        default: return operation ?? ""
        }
    }

    public func report(source: String, input: HostKernelInputStats) -> HostKernelReport {
        var input = input
        input.blockErrorsAlsoTraced = alsoTraced
        var kinds: [HostFindingKind: Int] = [:]
        for k in HostFindingKind.allCases where kindCounts[k.ordinal] > 0 { kinds[k] = kindCounts[k.ordinal] }
        var devices = summaries
        for i in devices.indices {
            for kind in HostNoiseKind.allCases {
                if let n = noiseByDevice[NoiseKey(device: devices[i].device, kind: kind)] { devices[i].noise[kind] = n }
            }
        }
        devices.sort { $0.device < $1.device }
        return HostKernelReport(source: source, input: input, findings: findings, findingsTotal: total, failures: failureCount, kinds: kinds,
                                devices: devices, devicesNotSummarised: droppedDevices, noise: noise,
                                noiseFirstLine: noiseFirstLine)
    }
}

extension HostDeviceSummary {
    /// `failure`, `operation`, `errno`: whether the message counts them (a failure's later
    /// messages repeat what its first said).
    mutating func add(_ f: HostKernelFinding, failure: Bool, operation: Bool, errno: Bool) {
        findings += 1
        if failure { failures += 1 }
        kindCounts[f.kind.ordinal] += 1
        if operation, let op = f.operation { operations[op, default: 0] += 1 }
        if errno, let e = f.errno { errnos[e, default: 0] += 1 }
        // NVMe LBAs are in the namespace's block size, which the line does not give: kept on
        // the finding, never mixed with the block layer's 512-byte sectors here.
        if let s = f.sector, !f.kind.isRecovery, !f.sectorIsLBA {
            lowestSector = min(lowestSector ?? s, s)
            highestSector = max(highestSector ?? s, s)
            if !sectors.contains(s) {
                if sectors.count < Self.sectorLimit { sectors.append(s) } else { sectorsNotListed += 1 }
            }
        }
        lastLine = f.line
        lastTime = f.time
    }
}
