import Foundation
import Histogram

public struct ExitAnalysisOptions: Sendable {
    /// How many of the slowest exits to log with their context (0: none).
    public var top = 10
    /// Lines of context before (and after) each slow exit, on its CPU.
    public var contextLines = 4
    /// Heatmap bucket width to start from (nil: 1 ms, doubling as needed).
    public var intervalNs: UInt64?
    public var heatmapColumns = 1024
    /// One heatmap per reason too (the N most frequent reasons).
    public var reasonHeatmaps = 0
    /// Count only this vCPU.
    public var vcpu: Int32?
    /// List every exit at least this slow, in input order (perf-prof's `--than`), with its RIP,
    /// info fields and context; all counted, the first `thresholdListLimit` listed.
    public var thresholdNs: UInt64?
    public var thresholdListLimit = 10_000
    /// Count only exits of these reasons (names as reported, case-insensitive); empty: all.
    public var reasons: Set<String> = []
    public init() {}
}

/// Pairs each kvm_exit with the next kvm_entry of the same thread and aggregates the
/// latencies per reason, per vCPU and per reason×vCPU, into a heatmap, and into the log of the
/// slowest. Pure and streaming: feed records in input order, then `report()`. Memory is fixed
/// by the number of threads, reasons and vCPUs, never by the number of lines.
///
/// The properties touched for every record are `@exclusivity(unchecked)`: an analyzer is fed
/// by one reader at a time and its methods never hold one property while another method
/// reaches it (the slow-exit entry is made before `offer` takes `slow`), so the run-time
/// check — a thread-local lookup per access, several per record, a fifth of the time on a
/// perf.data — could never fire.
final class ExitLatencyAnalyzer {
    struct ThreadState {
        var pending = false
        var exitNs: UInt64 = 0
        var reason: Int32 = -1
        var vcpu: Int32 = -1          // from the exit (≥5.10) or the last entry
        var cpu: Int32 = -1
        var rip: UInt64 = 0, info1: UInt64 = 0, info2: UInt64 = 0
        var intrInfo: UInt32 = 0, errorCode: UInt32 = 0
        var exitSeq: UInt64 = 0
        var tid: Int32 = -1
        /// The vCPU last put in `seenVCPUs` for this thread: one insert per change, not per pair.
        var seenVCPU: Int32 = .min
        // Accumulator indices cached per thread, so a pair costs no dictionary lookup.
        var vcpuSlot = -1, slotVCPU: Int32 = .min
        var pairSlots: [Int32] = []        // reason id → pairAccumulators index, for slotVCPU
    }

    public let options: ExitAnalysisOptions
    public let reasons: ExitReasonInterner
    @exclusivity(unchecked) private var threadIndex: [Int32: Int] = [:]
    @exclusivity(unchecked) private var threadStates: [ThreadState] = []
    @exclusivity(unchecked) private var lastTid: Int32 = .min, lastIndex = 0
    /// threadStates index + 1 by the tid's low bits (0: none): vCPU threads take turns, so the
    /// last thread alone misses on most records, and a Dictionary lookup hashes the tid.
    @exclusivity(unchecked) private var recentThreads = [Int](repeating: 0, count: 256)
    /// Unbinned: every pair it counts is in one `byReason`, whose bins make its percentiles.
    @exclusivity(unchecked) private var total = LatencyAccumulator(digits: .three, binned: false)
    @exclusivity(unchecked) private var byReason: [LatencyAccumulator] = []
    @exclusivity(unchecked) private var byVCPU: [Int32: Int] = [:]
    @exclusivity(unchecked) private var vcpuAccumulators: [LatencyAccumulator] = []
    @exclusivity(unchecked) private var vcpuThreads: [Int32: Set<Int32>] = [:]
    @exclusivity(unchecked) private var byPair: [Int64: Int] = [:]
    @exclusivity(unchecked) private var pairAccumulators: [LatencyAccumulator] = []
    @exclusivity(unchecked) private var heatmap: LatencyHeatmap
    @exclusivity(unchecked) private var reasonHeatmapsByID: [Int32: LatencyHeatmap] = [:]
    @exclusivity(unchecked) private var slow: SlowExitTracker
    @exclusivity(unchecked) private var seq: UInt64 = 0
    private var comms: [Int32: String] = [:]    // tid → comm, only for threads in the slow log
    @exclusivity(unchecked) private var overThreshold: [SlowExit] = []
    @exclusivity(unchecked) private var overThresholdCount: UInt64 = 0
    /// The per-CPU line rings are kept when a slow exit may be shown with its context.
    var keepsContext: Bool { slow.limit > 0 || options.thresholdNs != nil }
    /// The line of a record fed with `consume(_:deferredTag:)`, made only when a slow exit
    /// shows it: its bytes and where its task name is in them.
    var deferredLineRenderer: ((KVMTraceRecord, UInt64) -> (bytes: [UInt8], commRange: Range<Int>))?

    /// Where the slow-exit context finds a record's line.
    private enum ContextLine {
        case text(LineBytes)
        case deferred(tag: UInt64)
    }

    @exclusivity(unchecked) public private(set) var pairing = PairingAccounting()
    @exclusivity(unchecked) public private(set) var lost = LostEvents()
    @exclusivity(unchecked) public private(set) var firstNs: UInt64?
    @exclusivity(unchecked) public private(set) var lastNs: UInt64?
    @exclusivity(unchecked) public private(set) var otherEvents = 0
    /// 1000 until a timestamp that is not a whole µs is seen, then 100, 10, 1.
    @exclusivity(unchecked) public private(set) var resolutionNs: UInt64 = 1000
    @exclusivity(unchecked) private var seenVCPUs = Set<Int32>()
    /// By reason id: whether a pair of that reason was seen.
    @exclusivity(unchecked) private var seenReasons: [Bool] = []
    /// --reason, upper-cased; and per reason id whether it is wanted (filled as ids appear).
    private lazy var wantedReasons = Set(options.reasons.map { $0.uppercased() })
    @exclusivity(unchecked) private var reasonWantedByID: [Bool] = []

    private func reasonWanted(_ id: Int32) -> Bool {
        guard id >= 0 else { return false }
        while reasonWantedByID.count <= Int(id) {
            let next = reasonWantedByID.count
            reasonWantedByID.append(next < reasons.names.count && wantedReasons.contains(reasons.names[next].uppercased()))
        }
        return reasonWantedByID[Int(id)]
    }

    public init(options: ExitAnalysisOptions = ExitAnalysisOptions(), reasons: ExitReasonInterner) {
        self.options = options
        self.reasons = reasons
        heatmap = LatencyHeatmap(initialWidthNs: options.intervalNs ?? 1_000_000, columnCapacity: options.heatmapColumns)
        slow = SlowExitTracker(limit: options.top, contextLines: options.contextLines)
    }

    /// Feeds one decoded line (`line` is only read for the slow-exit context).
    @inline(__always)
    public func consume(_ r: KVMTraceRecord, line: LineBytes) { consume(r, context: .text(line)) }

    /// Feeds one record that has no text: its line, if a slow exit shows it, is what
    /// `deferredLineRenderer` makes of the record and `tag`.
    @inline(__always)
    func consume(_ r: KVMTraceRecord, deferredTag tag: UInt64) { consume(r, context: .deferred(tag: tag)) }

    @inline(__always)
    private func consume(_ r: KVMTraceRecord, context line: ContextLine) {
        seq += 1
        if r.kind == .lostEvents {
            lost.markerLines += 1
            lost.events += r.lost
            return
        }
        // The timestamps' resolution (µs for text traces), for truthful heatmap rows.
        while resolutionNs > 1 && r.timestampNs % resolutionNs != 0 { resolutionNs /= 10 }
        if firstNs == nil { firstNs = r.timestampNs }
        if r.timestampNs > lastNs ?? 0 { lastNs = r.timestampNs }
        if keepsContext {
            switch line {
            case let .text(bytes): slow.rings.append(cpu: Int(r.cpu), seq: seq, line: bytes)
            case let .deferred(tag): slow.rings.appendDeferred(cpu: Int(r.cpu), seq: seq, record: r, tag: tag)
            }
        }
        switch r.kind {
        case .exit: exit(r)
        case .entry: entry(r, line: line)
        default: otherEvents += 1
        }
    }

    @inline(__always)
    private func threadSlot(_ tid: Int32) -> Int {
        if tid == lastTid { return lastIndex }
        let hint = Int(UInt32(bitPattern: tid) & 255)
        let i: Int
        if recentThreads[hint] > 0, threadStates[recentThreads[hint] - 1].tid == tid {
            i = recentThreads[hint] - 1
        } else if let known = threadIndex[tid] {
            i = known
        } else {
            i = threadStates.count
            var state = ThreadState()
            state.tid = tid
            threadStates.append(state)
            threadIndex[tid] = i
        }
        recentThreads[hint] = i + 1
        lastTid = tid; lastIndex = i
        return i
    }

    @inline(__always)
    private func exit(_ r: KVMTraceRecord) {
        let i = threadSlot(r.tid)
        if threadStates[i].pending { pairing.exitsFollowedByExit += 1 }
        threadStates[i].pending = true
        threadStates[i].exitNs = r.timestampNs
        threadStates[i].reason = r.reason
        if r.vcpu >= 0 { threadStates[i].vcpu = r.vcpu }
        threadStates[i].cpu = r.cpu
        threadStates[i].rip = r.rip; threadStates[i].info1 = r.info1; threadStates[i].info2 = r.info2
        threadStates[i].intrInfo = r.intrInfo; threadStates[i].errorCode = r.errorCode
        threadStates[i].exitSeq = seq
    }

    @inline(__always)
    private func entry(_ r: KVMTraceRecord, line: ContextLine) {
        let i = threadSlot(r.tid)
        if r.vcpu >= 0 { threadStates[i].vcpu = r.vcpu }
        guard threadStates[i].pending else { pairing.entriesWithoutExit += 1; return }
        threadStates[i].pending = false
        let exitNs = threadStates[i].exitNs
        guard r.timestampNs >= exitNs else { pairing.outOfOrder += 1; return }
        let vcpu = threadStates[i].vcpu
        // What the filters could have matched, for naming it when they match nothing.
        if vcpu >= 0, threadStates[i].seenVCPU != vcpu {
            seenVCPUs.insert(vcpu)
            threadStates[i].seenVCPU = vcpu
        }
        let reason = Int(threadStates[i].reason)
        if reason >= 0 {
            while seenReasons.count <= reason { seenReasons.append(false) }
            seenReasons[reason] = true
        }
        if let only = options.vcpu, only != vcpu { pairing.filteredOut += 1; return }
        if !wantedReasons.isEmpty, !reasonWanted(threadStates[i].reason) { pairing.filteredOut += 1; return }
        let ns = r.timestampNs - exitNs
        pairing.pairs += 1
        record(ns, thread: i, tid: r.tid)
        if slow.limit > 0, ns > slow.threshold || slow.heap.count < slow.limit {
            // Made before offer(): it reads the line rings, which offer's exclusive access to `slow` covers.
            let e = slowExit(ns, threadStates[i], r, line: line)
            slow.offer { e }
        }
        if let limit = options.thresholdNs, ns >= limit {
            overThresholdCount += 1
            if overThreshold.count < options.thresholdListLimit { overThreshold.append(slowExit(ns, threadStates[i], r, line: line)) }
        }
    }

    @inline(__always)
    private func record(_ ns: UInt64, thread i: Int, tid: Int32) {
        let reason = threadStates[i].reason, vcpu = threadStates[i].vcpu, exitNs = threadStates[i].exitNs
        total.add(ns)
        let rid = Int(reason)
        while byReason.count <= rid { byReason.append(LatencyAccumulator(digits: .three)) }
        byReason[rid].add(ns)
        if threadStates[i].slotVCPU != vcpu {      // first pair, or the thread ran another vCPU
            threadStates[i].slotVCPU = vcpu
            threadStates[i].vcpuSlot = vcpuSlot(vcpu)
            threadStates[i].pairSlots = []
            vcpuThreads[vcpu, default: []].insert(tid)
        }
        vcpuAccumulators[threadStates[i].vcpuSlot].add(ns)
        if threadStates[i].pairSlots.count <= rid {
            threadStates[i].pairSlots += [Int32](repeating: -1, count: rid + 1 - threadStates[i].pairSlots.count)
        }
        var pi = Int(threadStates[i].pairSlots[rid])
        if pi < 0 {
            pi = pairSlot(reason: reason, vcpu: vcpu)
            threadStates[i].pairSlots[rid] = Int32(pi)
        }
        pairAccumulators[pi].add(ns)
        heatmap.add(timeNs: exitNs, latencyNs: ns)
        if options.reasonHeatmaps > 0 {
            reasonHeatmapsByID[reason, default: LatencyHeatmap(initialWidthNs: options.intervalNs ?? 1_000_000,
                                                                columnCapacity: 256, startNs: heatmap.startNs)].add(timeNs: exitNs, latencyNs: ns)
        }
    }

    private func vcpuSlot(_ vcpu: Int32) -> Int {
        if let i = byVCPU[vcpu] { return i }
        vcpuAccumulators.append(LatencyAccumulator(digits: .three))
        byVCPU[vcpu] = vcpuAccumulators.count - 1
        return vcpuAccumulators.count - 1
    }

    private func pairSlot(reason: Int32, vcpu: Int32) -> Int {
        let key = Int64(reason) << 32 | Int64(UInt32(bitPattern: vcpu))
        if let i = byPair[key] { return i }
        pairAccumulators.append(LatencyAccumulator(digits: .two))
        byPair[key] = pairAccumulators.count - 1
        return pairAccumulators.count - 1
    }

    /// A slow exit with the lines around it on its CPU, made only for one that is shown.
    private func slowExit(_ ns: UInt64, _ t: ThreadState, _ r: KVMTraceRecord, line: ContextLine) -> SlowExit {
        let render = deferredLineRenderer ?? { _, _ in ([], 0..<0) }
        let comm: String, text: String
        switch line {
        case let .text(bytes):
            comm = bytes.string(r.commRange)
            text = bytes.string
        case let .deferred(tag):
            let made = render(r, tag)
            comm = String(decoding: made.bytes[made.commRange], as: UTF8.self)
            text = String(decoding: made.bytes, as: UTF8.self)
        }
        let k = UInt64(slow.contextLines)
        let renderBytes = { (r: KVMTraceRecord, tag: UInt64) in render(r, tag).bytes }
        let before = slow.rings.lines(cpu: Int(t.cpu), in: (t.exitSeq > k ? t.exitSeq - k : 1)...t.exitSeq, render: renderBytes)
        let after = t.exitSeq < seq ? slow.rings.lines(cpu: Int(t.cpu), in: (t.exitSeq + 1)...seq, render: renderBytes).prefix(slow.contextLines) : []
        var context = before.map { ($0.seq == t.exitSeq ? "> " : "  ") + Self.trimmed($0.text) }
        context += after.map { ($0.seq == seq ? "> " : "  ") + Self.trimmed($0.text) }
        if !after.contains(where: { $0.seq == seq }) { context.append("> " + Self.trimmed(text)) }
        let reasonName = t.reason >= 0 ? reasons.names[Int(t.reason)] : "?"
        return SlowExit(latencyNs: ns, exitTimestampNs: t.exitNs, entryTimestampNs: r.timestampNs, reason: reasonName,
                        vcpu: t.vcpu, tid: r.tid, comm: comm, cpu: t.cpu, rip: t.rip, info1: t.info1, info2: t.info2,
                        intrInfo: t.intrInfo, errorCode: t.errorCode, context: context)
    }

    static func trimmed(_ s: String) -> String {
        var sub = Substring(s)
        while sub.first == " " { sub = sub.dropFirst() }
        while sub.last == " " { sub = sub.dropLast() }
        return String(sub)
    }

    // MARK: report

    public func report(input: String, format: String, lines: LineAccounting) -> ExitsReport {
        var pairing = self.pairing
        pairing.exitsWithoutEntryAtEnd = UInt64(threadStates.filter(\.pending).count)
        let totalTime = total.sumNs
        let total = self.total.addingBins(of: byReason)
        func stats(_ a: LatencyAccumulator, precision: Double) -> ExitStats {
            let p = a.percentilesNs([50, 90, 99, 99.9])
            return ExitStats(count: a.count,
                      samplesPercent: total.count == 0 ? 0 : Double(a.count) / Double(total.count) * 100,
                      timePercent: totalTime == 0 ? 0 : Double(a.sumNs) / Double(totalTime) * 100,
                      totalNs: a.sumNs, minNs: a.count == 0 ? 0 : a.minNs, maxNs: a.maxNs,
                      meanNs: a.meanNs, stddevNs: a.stddevNs,
                      relativeStandardErrorPercent: a.relativeStandardErrorPercent,
                      p50Ns: p[0], p90Ns: p[1], p99Ns: p[2], p999Ns: p[3],
                      percentilePrecision: precision)
        }
        var reasonRows: [ReasonRow] = []
        for (id, a) in byReason.enumerated() where a.count > 0 {
            reasonRows.append(ReasonRow(reason: reasons.names[id], isa: reasons.isas[id]?.rawValue, stats: stats(a, precision: 0.001)))
        }
        reasonRows.sort { $0.stats.count != $1.stats.count ? $0.stats.count > $1.stats.count : $0.reason < $1.reason }
        let vcpuRows = byVCPU.map { v, i in
            VCPURow(vcpu: v, threads: (vcpuThreads[v] ?? []).sorted(), stats: stats(vcpuAccumulators[i], precision: 0.001))
        }.sorted { $0.vcpu < $1.vcpu }
        let order = Dictionary(uniqueKeysWithValues: reasonRows.enumerated().map { ($1.reason, $0) })
        let pairRows = byPair.map { key, i in
            ReasonVCPURow(reason: reasons.names[Int(key >> 32)], vcpu: Int32(bitPattern: UInt32(truncatingIfNeeded: key)),
                          stats: stats(pairAccumulators[i], precision: 0.01))
        }.sorted { (order[$0.reason] ?? 0, $0.vcpu) < (order[$1.reason] ?? 0, $1.vcpu) }

        var isas = Set(reasonRows.compactMap(\.isa))
        if isas.isEmpty { isas = Set(reasons.isas.compactMap { $0?.rawValue }) }
        let isa = isas.count == 1 ? isas.first! : isas.isEmpty ? "unknown" : "mixed"

        var reasonMaps: [ReasonHeatmap]?
        if options.reasonHeatmaps > 0 {
            reasonMaps = reasonRows.prefix(options.reasonHeatmaps).compactMap { row in
                guard let id = reasons.names.firstIndex(of: row.reason), let h = reasonHeatmapsByID[Int32(id)] else { return nil }
                return ReasonHeatmap(reason: row.reason, heatmap: HeatmapData(h, resolutionNs: resolutionNs))
            }
        }
        return ExitsReport(input: input, format: format, isa: isa, lines: lines, pairing: pairing, lost: lost,
                           firstTimestampNs: firstNs, lastTimestampNs: lastNs, vcpuFilter: options.vcpu,
                           total: stats(total, precision: 0.001), byReason: reasonRows, byVCPU: vcpuRows,
                           byReasonAndVCPU: pairRows, slowest: slow.sorted, heatmap: HeatmapData(heatmap, resolutionNs: resolutionNs),
                           reasonHeatmaps: reasonMaps, recording: nil,
                           overThreshold: options.thresholdNs.map { ThresholdLog(thresholdNs: $0, count: overThresholdCount, exits: overThreshold) },
                           vcpusSeen: seenVCPUs.sorted(),
                           reasonsSeen: seenReasons.indices.compactMap { seenReasons[$0] && $0 < reasons.names.count ? reasons.names[$0] : nil }.sorted())
    }
}
