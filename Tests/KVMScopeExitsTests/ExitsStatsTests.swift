import Foundation
import Testing
import KVMScopeTestSupport
import KVMScopeCore
import KVMScopeTracefs
@testable import KVMScopeExits

/// The statistics against an independent computation on the same data: exact integer/Decimal
/// arithmetic for mean and standard deviation, sorting for percentiles.
@Suite struct ExitsStatsTests {
    static func analyze(_ text: String, options: ExitAnalysisOptions = ExitAnalysisOptions()) throws -> ExitsReport {
        try KVMExitTraceReader.analyze(MemoryByteSource(text, maxChunk: 777), options: options)
    }

    /// Exact mean and sample standard deviation with Decimal (38 digits: no rounding here).
    static func exact(_ xs: [UInt64]) -> (mean: Double, stddev: Double) {
        let n = Decimal(xs.count)
        let s1 = xs.reduce(Decimal(0)) { $0 + Decimal($1) }
        let s2 = xs.reduce(Decimal(0)) { $0 + Decimal($1) * Decimal($1) }
        let mean = NSDecimalNumber(decimal: s1 / n).doubleValue
        guard xs.count > 1 else { return (mean, 0) }
        let variance = (n * s2 - s1 * s1) / (n * (n - 1))
        return (mean, NSDecimalNumber(decimal: variance).doubleValue.squareRoot())
    }

    /// Nearest-rank percentile: the ⌈p·n/100⌉-th smallest (the 1e-9 absorbs 99.9/100·4000 ≠ 3996 in binary).
    static func percentile(_ sorted: [UInt64], _ p: Double) -> UInt64 {
        sorted[max(0, Int((p / 100 * Double(sorted.count) - 1e-9).rounded(.up)) - 1)]
    }

    static func check(_ s: ExitStats, against xs: [UInt64], totalCount: Int, totalNs: UInt64, _ what: String) {
        let sorted = xs.sorted()
        let (mean, sd) = exact(xs)
        #expect(s.count == UInt64(xs.count), "\(what)")
        #expect(s.totalNs == xs.reduce(0, +), "\(what)")
        #expect(s.minNs == sorted.first! && s.maxNs == sorted.last!, "\(what)")
        #expect(abs(s.meanNs - mean) <= mean * 1e-12, "\(what) mean \(s.meanNs) vs \(mean)")
        #expect(abs(s.stddevNs - sd) <= sd * 1e-9 + 1e-9, "\(what) stddev \(s.stddevNs) vs \(sd)")
        let rse = xs.count > 1 ? 100 * sd / Double(xs.count).squareRoot() / mean : 0
        #expect(abs(s.relativeStandardErrorPercent - rse) <= rse * 1e-9 + 1e-12, "\(what)")
        #expect(abs(s.samplesPercent - Double(xs.count) / Double(totalCount) * 100) < 1e-9, "\(what)")
        #expect(abs(s.timePercent - Double(xs.reduce(0, +)) / Double(totalNs) * 100) < 1e-9, "\(what)")
        for (p, got) in [(50.0, s.p50Ns), (90.0, s.p90Ns), (99.0, s.p99Ns), (99.9, s.p999Ns)] {
            let want = percentile(sorted, p)
            // HDR: the reported value is the top of the bucket holding the exact value.
            #expect(got >= want && Double(got - want) <= Double(want) * s.percentilePrecision + 1,
                    "\(what) p\(p): \(got) vs exact \(want)")
        }
    }

    @Test(arguments: ExitsTraceBuilder.Form.allCases)
    func statsMatchIndependentComputation(form: ExitsTraceBuilder.Form) throws {
        let (text, samples) = ExitsTraceBuilder.makeTrace(form)
        let r = try Self.analyze(text)
        let all = samples.map(\.ns)
        let totalNs = all.reduce(0, +)
        #expect(r.pairing.pairs == UInt64(samples.count))
        #expect(r.pairing.exitsWithoutEntryAtEnd == 0 && r.pairing.entriesWithoutExit == 0)
        #expect(r.isa == (form == .traceCmdPlugin ? "SVM" : "VMX"))
        Self.check(r.total, against: all, totalCount: all.count, totalNs: totalNs, "total")
        let byReason = Dictionary(grouping: samples, by: \.reason)
        #expect(Set(r.byReason.map(\.reason)) == Set(byReason.keys))
        for row in r.byReason {
            Self.check(row.stats, against: byReason[row.reason]!.map(\.ns), totalCount: all.count, totalNs: totalNs, row.reason)
        }
        let byVCPU = Dictionary(grouping: samples, by: \.vcpu)
        #expect(r.byVCPU.map(\.vcpu) == [0, 1, 2, 3])
        for row in r.byVCPU {
            #expect(row.threads == [8000 + row.vcpu])
            Self.check(row.stats, against: byVCPU[row.vcpu]!.map(\.ns), totalCount: all.count, totalNs: totalNs, "vCPU \(row.vcpu)")
        }
        let byPair = Dictionary(grouping: samples) { "\($0.reason)/\($0.vcpu)" }
        #expect(r.byReasonAndVCPU.count == byPair.count)
        for row in r.byReasonAndVCPU {
            Self.check(row.stats, against: byPair["\(row.reason)/\(row.vcpu)"]!.map(\.ns), totalCount: all.count,
                       totalNs: totalNs, "\(row.reason)/\(row.vcpu)")
        }
        // The slow-exit log holds exactly the 10 largest latencies.
        #expect(r.slowest.map(\.latencyNs) == Array(all.sorted(by: >).prefix(10)))
        #expect(r.heatmap.total == UInt64(samples.count))
    }

    @Test func sameStatisticsWhateverTheForm() throws {
        let forms: [ExitsTraceBuilder.Form] = [.ftrace510, .ftrace618, .ftrace59, .traceCmdN, .traceCmdRaw, .perfScript]
        let reports = try forms.map { try Self.analyze(ExitsTraceBuilder.makeTrace($0).0) }
        for r in reports.dropFirst() {
            #expect(r.total == reports[0].total)
            #expect(r.byReason.map(\.stats) == reports[0].byReason.map(\.stats))
        }
    }

    @Test func pairingEdgeCases() throws {
        let b = ExitsTraceBuilder(form: .ftrace510)
        func exit(_ tid: Int32, _ us: UInt64, _ code: UInt32 = 30) -> String {
            b.exitLine(.init(tid: tid, cpu: 0, ns: us * 1000, vcpu: tid - 100, code: code))
        }
        func entry(_ tid: Int32, _ us: UInt64) -> String { b.entryLine(tid: tid, cpu: 0, ns: us * 1000, vcpu: tid - 100) }
        let text = [
            entry(100, 5),                  // trace started mid-exit: ignored
            exit(100, 10), entry(100, 13),  // 3 us
            exit(101, 11), exit(101, 20),   // entry lost between: first exit dropped
            entry(101, 27),                 // 7 us
            exit(100, 30), entry(100, 29),  // out of order: dropped
            "CPU:0 [LOST 17 EVENTS]",
            exit(100, 40),                  // unfinished at the end
        ].joined(separator: "\n")
        let r = try Self.analyze(text)
        #expect(r.pairing.pairs == 2)
        #expect(r.pairing.entriesWithoutExit == 1)
        #expect(r.pairing.exitsFollowedByExit == 1)
        #expect(r.pairing.outOfOrder == 1)
        #expect(r.pairing.exitsWithoutEntryAtEnd == 1)
        #expect(r.lost.markerLines == 1 && r.lost.events == 17)
        #expect(r.total.minNs == 3000 && r.total.maxNs == 7000)
        var only1 = ExitAnalysisOptions()
        only1.vcpu = 1
        let f = try Self.analyze(text, options: only1)
        #expect(f.pairing.pairs == 1 && f.pairing.filteredOut == 1 && f.total.minNs == 7000)
    }

    @Test func heatmapDoublesWidthAndKeepsEveryCount() {
        var h = LatencyHeatmap(initialWidthNs: 1000, columnCapacity: 8)
        var expected: [UInt64: [Int: UInt64]] = [:]   // independent: absolute time → row counts
        var rng = SplitMix64(seed: 3)
        var times: [(UInt64, UInt64)] = []
        for _ in 0..<5000 {
            let t = 1_000_000 + rng.below(100_000)
            let lat = 1 + rng.below(1 << 20)
            times.append((t, lat))
            h.add(timeNs: t, latencyNs: lat)
        }
        // Width doubled until 8 columns cover the span from the first sample.
        let start = times[0].0
        let span = times.map(\.0).max()! - start
        var width: UInt64 = 1000
        while span / width >= 8 { width *= 2 }
        #expect(h.bucketWidthNs == width)
        for (t, lat) in times {
            let c = t >= start ? (t - start) / width : 0
            expected[c, default: [:]][LatencyHeatmap.row(forLatency: lat), default: 0] += 1
        }
        for c in 0..<8 {
            for r in 0..<LatencyHeatmap.rows {
                #expect(UInt64(h.count(column: c, row: r)) == expected[UInt64(c)]?[r] ?? 0, "column \(c) row \(r)")
            }
        }
        #expect(h.total == 5000)
        #expect(LatencyHeatmap.row(forLatency: 1023) == 9 && LatencyHeatmap.row(forLatency: 1024) == 10)
    }
}
