import KVMScopeCore

/// What a live table's rows are.
public enum ExitLiveGrouping: String, CaseIterable, Sendable {
    case reason, vcpu, vm
}

/// The column a live table is sorted by (descending).
public enum ExitLiveSort: String, CaseIterable, Sendable {
    case count, rate, time, mean, p99, max
}

/// One row of a live frame: totals since the start, and the rate over the last interval.
public struct ExitLiveRow: Sendable, Encodable, Equatable {
    /// The reason's name, `vcpu N`, or the VM's name (`pid N` when not QEMU's).
    public var key: String
    public var count: UInt64
    /// Exits per second over the last refresh interval.
    public var ratePerSecond: Double
    public var timePercent: Double
    public var totalNs: UInt64
    public var meanNs: Double
    public var p99Ns: UInt64
    public var maxNs: UInt64
}

/// One refresh of `kvmscope exits --live`.
public struct ExitLiveFrame: Sendable, Encodable {
    public var type = "exitsFrame"
    public var schemaVersion = JSONContract.schemaVersion
    public var elapsedSeconds: Double
    public var intervalSeconds: Double
    public var groupBy: String
    public var sortBy: String
    public var exits: UInt64
    public var ratePerSecond: Double
    public var rows: [ExitLiveRow]
    /// Rows beyond the limit, summed into none: how many were left out.
    public var rowsNotShown: Int
    /// Events lost in the ring buffer so far (the counts are then too low).
    public var lostEvents: UInt64
    /// Entries whose exit was filtered out in the kernel (`--reason`): not paired, not counted.
    public var entriesWithoutExit: UInt64
    @NullEncoded public var note: String?
}

/// The live view's state: kvm_exit/kvm_entry records from the trace pipe paired per thread (by
/// the same ExitLatencyAnalyzer a file gets), one analyzer per VM when grouped by VM, and the
/// counts of the previous frame for the rates. Pure: the session feeds it lines and asks for
/// frames; a test does the same with a file's lines.
public final class ExitLiveTable {
    public let grouping: ExitLiveGrouping
    public let sort: ExitLiveSort
    public let rowLimit: Int
    private let reasons = ExitReasonInterner()
    private var parser: KVMTraceLineParser
    private var record = KVMTraceRecord()
    private let all: ExitLatencyAnalyzer
    /// Per VM (grouping .vm): the analyzer of each VM key, created on its first record.
    private var perVM: [String: ExitLatencyAnalyzer] = [:]
    private let vmName: (Int32) -> String
    private var previous: [String: UInt64] = [:]
    private var previousTotal: UInt64 = 0
    private var lines = LineAccounting()
    /// A host with many short-lived processes must not grow the table without bound.
    static let vmLimit = 1024

    /// `vmName` maps a vCPU thread id to its VM's name (ExitLiveProcessNames in a live session).
    public init(grouping: ExitLiveGrouping, sort: ExitLiveSort, rowLimit: Int = 40, vcpu: Int32? = nil,
                vmName: @escaping (Int32) -> String = { "pid \($0)" }) {
        self.grouping = grouping; self.sort = sort; self.rowLimit = max(1, rowLimit); self.vmName = vmName
        parser = KVMTraceLineParser(reasons: reasons)
        var o = ExitAnalysisOptions()
        o.top = 0
        o.vcpu = vcpu
        all = ExitLatencyAnalyzer(options: o, reasons: reasons)
    }

    public func consume(_ line: LineBytes) {
        guard case .record = parser.parse(line, into: &record) else { return }
        lines.count(record.kind)
        all.consume(record, line: line)
        if grouping == .vm, record.kind == .exit || record.kind == .entry {
            let key = vmName(record.tid)
            if let a = perVM[key] {
                a.consume(record, line: line)
            } else if perVM.count < Self.vmLimit {
                let a = ExitLatencyAnalyzer(options: all.options, reasons: reasons)
                perVM[key] = a
                a.consume(record, line: line)
            }
        }
    }

    /// The frame now; `interval` is the time since the last frame (for the rates).
    public func frame(elapsed: Double, interval: Double, lostEvents: UInt64, note: String? = nil) -> ExitLiveFrame {
        let report = all.report(input: "live", format: "ftrace", lines: lines)
        var rows: [ExitLiveRow] = []
        func row(_ key: String, _ s: ExitStats) -> ExitLiveRow {
            let before = previous[key] ?? 0
            let rate = interval > 0 && s.count >= before ? Double(s.count - before) / interval : 0
            return ExitLiveRow(key: key, count: s.count, ratePerSecond: rate, timePercent: s.timePercent, totalNs: s.totalNs,
                               meanNs: s.meanNs, p99Ns: s.p99Ns, maxNs: s.maxNs)
        }
        switch grouping {
        case .reason: rows = report.byReason.map { row($0.reason, $0.stats) }
        case .vcpu: rows = report.byVCPU.map { row("vcpu \($0.vcpu)", $0.stats) }
        case .vm:
            let total = report.total.totalNs
            rows = perVM.map { key, a in
                var s = a.report(input: "live", format: "ftrace", lines: LineAccounting()).total
                s.timePercent = total == 0 ? 0 : Double(s.totalNs) / Double(total) * 100
                return row(key, s)
            }
        }
        previous = Dictionary(rows.map { ($0.key, $0.count) }, uniquingKeysWith: { a, _ in a })
        rows.sort { a, b in
            let (x, y) = (Self.value(a, sort), Self.value(b, sort))
            return x != y ? x > y : a.key < b.key
        }
        let count = report.total.count
        let rate = interval > 0 && count >= previousTotal ? Double(count - previousTotal) / interval : 0
        previousTotal = count
        let shown = Array(rows.prefix(rowLimit))
        return ExitLiveFrame(elapsedSeconds: elapsed, intervalSeconds: interval, groupBy: grouping.rawValue, sortBy: sort.rawValue,
                             exits: count, ratePerSecond: rate, rows: shown, rowsNotShown: rows.count - shown.count,
                             lostEvents: lostEvents, entriesWithoutExit: report.pairing.entriesWithoutExit, note: note)
    }

    static func value(_ r: ExitLiveRow, _ sort: ExitLiveSort) -> Double {
        switch sort {
        case .count: return Double(r.count)
        case .rate: return r.ratePerSecond
        case .time: return Double(r.totalNs)
        case .mean: return r.meanNs
        case .p99: return Double(r.p99Ns)
        case .max: return Double(r.maxNs)
        }
    }

    /// kvm_exit and kvm_entry records seen (whether any exit fired at all).
    public var exitRecords: Int { lines.kvmExit + lines.kvmEntry }
    public var otherRecords: Int { lines.otherEvents }
}
