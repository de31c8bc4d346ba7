/// Everything `kvmscope exits` reports; `--json` encodes exactly this (keys documented in the
/// README). Times are nanoseconds; timestamps are the trace's own clock.
public struct ExitsReport: Codable, Sendable {
    public var input: String
    public var format: String
    /// "VMX" (Intel), "SVM" (AMD), "mixed" or "unknown", from the reason names seen.
    public var isa: String
    public var lines: LineAccounting
    public var pairing: PairingAccounting
    public var lost: LostEvents
    @NullEncoded public var firstTimestampNs: UInt64?
    @NullEncoded public var lastTimestampNs: UInt64?
    @NullEncoded public var vcpuFilter: Int32?
    public var total: ExitStats
    public var byReason: [ReasonRow]
    public var byVCPU: [VCPURow]
    public var byReasonAndVCPU: [ReasonVCPURow]
    public var slowest: [SlowExit]
    public var heatmap: HeatmapData
    @NullEncoded public var reasonHeatmaps: [ReasonHeatmap]?
    @NullEncoded public var recording: RecordingInfo?
    /// `--than`: every exit at least that slow (null without it).
    @NullEncoded public var overThreshold: ThresholdLog? = nil
    /// Every vCPU and exit reason of the paired exits, before `--vcpu`/`--reason` filtering:
    /// what a filter that matched nothing could have matched (not encoded).
    public var vcpusSeen: [Int32] = []
    public var reasonsSeen: [String] = []

    // `source` names the input like every other report; `input` says how much of it was read.
    enum CodingKeys: String, CodingKey {
        case input = "source", format, isa, lines = "input", pairing, lost, firstTimestampNs, lastTimestampNs
        case vcpuFilter, total, byReason, byVCPU, byReasonAndVCPU, slowest, heatmap, reasonHeatmaps, recording, overThreshold
    }
}

/// `exits --than`: the exits at least `thresholdNs` slow, in input order; `count` is all of
/// them, `exits` the first ones (ExitAnalysisOptions.thresholdListLimit).
public struct ThresholdLog: Codable, Sendable, Equatable {
    public var thresholdNs: UInt64
    public var count: UInt64
    public var exits: [SlowExit]
}

public struct ExitStats: Codable, Sendable, Equatable {
    public var count: UInt64
    /// Share of all pairs, and of all exit→entry time (perf's Samples% and Time%).
    public var samplesPercent: Double
    public var timePercent: Double
    public var totalNs: UInt64
    public var minNs: UInt64
    public var maxNs: UInt64
    public var meanNs: Double
    /// Sample standard deviation (n − 1).
    public var stddevNs: Double
    /// perf kvm stat's `( +- x% )`: stddev / sqrt(n) / mean × 100.
    public var relativeStandardErrorPercent: Double
    public var p50Ns: UInt64
    public var p90Ns: UInt64
    public var p99Ns: UInt64
    public var p999Ns: UInt64
    /// Relative precision of the percentiles (HDR histogram): 0.001 or 0.01.
    public var percentilePrecision: Double
}

public struct ReasonRow: Codable, Sendable {
    public var reason: String
    @NullEncoded public var isa: String?
    public var stats: ExitStats
}

public struct VCPURow: Codable, Sendable {
    public var vcpu: Int32
    /// Thread ids seen running this vCPU (normally one).
    public var threads: [Int32]
    public var stats: ExitStats
}

public struct ReasonVCPURow: Codable, Sendable {
    public var reason: String
    public var vcpu: Int32
    public var stats: ExitStats
}

public struct LineAccounting: Codable, Sendable, Equatable {
    public var total = 0
    public var bytes: Int64 = 0
    public var kvmExit = 0
    public var kvmEntry = 0
    public var otherEvents = 0
    public var headers = 0
    /// Lines that are not trace lines at all (garbage), skipped.
    public var unrecognized = 0
    /// kvm_exit/kvm_entry lines whose fields could not be read, skipped.
    public var malformedKVM = 0
    public var binary = 0
    public var overlong = 0
    public init() {}

    /// Counts a decoded record under its kind (lost-event markers are counted by the analyzer).
    @inline(__always)
    mutating func count(_ kind: KVMTraceRecord.Kind) {
        switch kind {
        case .exit: kvmExit += 1
        case .entry: kvmEntry += 1
        case .otherEvent: otherEvents += 1
        case .lostEvents: break
        }
    }

    // Every line counter is `…Lines`, as in the other readers' input accounting.
    enum CodingKeys: String, CodingKey {
        case total = "lines", bytes, kvmExit = "kvmExitLines", kvmEntry = "kvmEntryLines"
        case otherEvents = "otherEventLines", headers = "headerLines", unrecognized = "unrecognizedLines"
        case malformedKVM = "malformedLines", binary = "binaryLines", overlong = "overlongLines"
    }
}

public struct PairingAccounting: Codable, Sendable, Equatable {
    public var pairs: UInt64 = 0
    /// Exits still waiting for their entry when the input ended (counted apart, not in stats).
    public var exitsWithoutEntryAtEnd: UInt64 = 0
    /// Exits followed by another exit of the same thread (an entry was lost), dropped.
    public var exitsFollowedByExit: UInt64 = 0
    /// Entries with no exit before them on that thread (the trace started mid-exit), ignored.
    public var entriesWithoutExit: UInt64 = 0
    /// Entries timestamped before their exit (unsorted input), dropped.
    public var outOfOrder: UInt64 = 0
    /// Pairs not counted because of `--vcpu`.
    public var filteredOut: UInt64 = 0
    public init() {}
}

public struct LostEvents: Codable, Sendable, Equatable {
    /// `[LOST n EVENTS]` / `[n EVENTS DROPPED]` lines in the input, and the events they count.
    public var markerLines = 0
    public var events: UInt64 = 0
    /// Live recording: ring-buffer overruns + dropped events from per_cpu/cpuN/stats.
    @NullEncoded public var ringBufferOverruns: UInt64?
    public var any: Bool { markerLines > 0 || events > 0 || (ringBufferOverruns ?? 0) > 0 }
    public init() {}
}

public struct HeatmapData: Codable, Sendable, Equatable {
    @NullEncoded public var startNs: UInt64?
    public var bucketWidthNs: UInt64
    /// Row i covers latencies [2^(firstRow+i), 2^(firstRow+i+1)) ns.
    public var firstRow: Int
    public var rowCount: Int
    /// counts[column][row]
    public var counts: [[UInt64]]
    /// The latencies' resolution: the largest of 1000, 100, 10, 1 ns dividing every timestamp
    /// of the trace (1000 for the µs text of trace-cmd report, perf script, ftrace).
    public var resolutionNs: UInt64

    public init(_ h: LatencyHeatmap, resolutionNs: UInt64 = 1) {
        startNs = h.startNs
        self.resolutionNs = resolutionNs
        bucketWidthNs = h.bucketWidthNs
        let rows = h.usedRows ?? 0...0
        firstRow = rows.lowerBound
        rowCount = rows.count
        counts = (0..<h.usedColumns).map { c in rows.map { UInt64(h.count(column: c, row: $0)) } }
    }

    public var total: UInt64 { counts.reduce(0) { $0 + $1.reduce(0, +) } }
}

public struct ReasonHeatmap: Codable, Sendable {
    public var reason: String
    public var heatmap: HeatmapData
}

/// How a live recording went.
public struct RecordingInfo: Codable, Sendable {
    public var tracefs: String
    public var instance: String
    public var requestedSeconds: Double
    public var recordedSeconds: Double
    public var interrupted: Bool
    @NullEncoded public var pid: Int32?
    public var threads: [Int32]
    public var events: [String]
    /// Other tracepoints seen (e.g. kvm_pio), which show guests ran even without kvm_exit.
    public var contextEvents: Int
    @NullEncoded public var note: String?
}
