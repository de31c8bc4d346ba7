import Foundation
import Testing
import KVMScopeTestSupport
@testable import KVMScopeWatch

/// QEMU's latency histograms (block-latency-histogram-set) as query-blockstats of QEMU 7.2
/// sends them, exported as Prometheus histograms counted from when watch first saw them.
@Suite struct LatencyHistogramTests {
    let F = WatchMetricFamilies.self
    func json(_ text: String) -> Any { try! JSONSerialization.jsonObject(with: Data(text.utf8), options: .fragmentsAllowed) }

    /// A query-blockstats reply of one disk (QEMU 7.2's keys) with a write histogram.
    func reply(bins: [Int], boundaries: [Int] = [100_000, 1_000_000], totalNs: Int = 5_000_000, accountFailed: Bool = true) -> Any {
        json(#"[{"device": "drive0", "qdev": "/machine/peripheral-anon/device[0]/virtio-backend", "stats": {"wr_operations": 10, "wr_bytes": 40960, "wr_total_time_ns": \#(totalNs), "account_failed": \#(accountFailed), "wr_latency_histogram": {"bins": \#(bins), "boundaries": \#(boundaries)}, "rd_latency_histogram": {"bins": [0], "boundaries": []}}}]"#)
    }

    @Test func histogramsAreParsedAndCheckedAtTheBoundary() {
        let disk = BlockStatsParser.parseBlockStats(reply(bins: [1, 2, 3])).disks[0]
        #expect(disk.qdev == "/machine/peripheral-anon/device[0]/virtio-backend" && disk.accountFailed == true)
        #expect(disk.operations[.write]?.histogram == LatencyHistogram(boundariesNs: [100_000, 1_000_000], bins: [1, 2, 3]))
        #expect(disk.operations[.read]?.histogram == nil, "set without boundaries: no histogram")
        #expect(BlockStatsParser.histogram(json(#"{"bins": [1, 2], "boundaries": [5, 3]}"#)) == nil, "boundaries must increase")
        #expect(BlockStatsParser.histogram(json(#"{"bins": [1, 2], "boundaries": [5, 9]}"#)) == nil, "one bin more than boundaries")
        #expect(BlockStatsParser.histogram(json(#"{"bins": [1, -2], "boundaries": [5]}"#)) == nil)
        #expect(BlockStatsParser.histogram(json(#"{"bins": [1, 2], "boundaries": [0]}"#)) == nil)
        let many = (1...65).map { $0 * 1000 }
        #expect(BlockStatsParser.histogram(json(#"{"bins": \#(many + [0]), "boundaries": \#(many)}"#)) == nil, "at most 64 boundaries")
    }

    @Test func countsAreExportedFromWhenWatchFirstSawThem() throws {
        let m = WatchMetrics()
        m.addVM(1, domain: "web1")
        m.setLatencyHistograms(vm: 1, BlockStatsParser.parseBlockStats(reply(bins: [5, 5, 5], totalNs: 9_000_000)).disks)
        m.setLatencyHistograms(vm: 1, BlockStatsParser.parseBlockStats(reply(bins: [6, 8, 5], totalNs: 9_500_000)).disks)
        let text = String(decoding: m.render(), as: UTF8.self)
        let name = F.blockOperationLatency.name
        let labels = [("domain", "web1"), ("device", "drive0"), ("operation", "write")]
        #expect(text.contains("# TYPE \(name) histogram\n"))
        #expect(Exposition.value(text, name + "_bucket", labels + [("le", "0.0001")]) == 1)
        #expect(Exposition.value(text, name + "_bucket", labels + [("le", "0.001")]) == 4, "cumulative")
        #expect(Exposition.value(text, name + "_bucket", labels + [("le", "+Inf")]) == 4)
        #expect(Exposition.value(text, name + "_count", labels) == 4)
        #expect(abs((Exposition.value(text, name + "_sum", labels) ?? 0) - 0.0005) < 1e-12, "total_time_ns's increase over the same span")
        #expect(try Exposition.promtoolProblems(text) == nil)
        #expect(OpenMetricsText.convert(m.render()).count > 0)

        // The histogram set anew (counts went down): the series starts again from zero.
        m.setLatencyHistograms(vm: 1, BlockStatsParser.parseBlockStats(reply(bins: [1, 0, 0], totalNs: 9_600_000)).disks)
        #expect(Exposition.value(String(decoding: m.render(), as: UTF8.self), name + "_count", labels) == 0)
        // Without account_failed, failed requests are in the bins but not in total_time_ns: no _sum.
        m.setLatencyHistograms(vm: 1, BlockStatsParser.parseBlockStats(reply(bins: [2, 0, 0], accountFailed: false)).disks)
        let noSum = String(decoding: m.render(), as: UTF8.self)
        #expect(Exposition.value(noSum, name + "_sum", labels) == nil)
        #expect(Exposition.value(noSum, name + "_count", labels) != nil)
        // A disk whose histogram was turned off: its series go.
        m.setLatencyHistograms(vm: 1, BlockStatsParser.parseBlockStats(json(#"[{"device": "drive0", "stats": {"wr_operations": 1}}]"#)).disks)
        #expect(!String(decoding: m.render(), as: UTF8.self).contains(name))
        #expect(LatencyHistogramSeries.seconds(2_500_000_000) == "2.5" && LatencyHistogramSeries.seconds(100_000) == "0.0001")
    }

    /// A lab-like VM and a watcher with --latency-histograms, once it has turned them on.
    func watchWithHistograms(_ dir: TempDir) throws -> (FakeQMPServer, Watcher, [String: String]) {
        var replies = FakeVM.replies(name: "web1")
        replies["block-latency-histogram-set"] = "{}"
        let vm = try FakeQMPServer(path: dir.path + "/vm1.qmp", behaviour: .qemu, replies: replies)
        var settings = WatchSettings.fast
        settings.latencyHistograms = true
        let w = Watcher(discoveries: [try QMPSocketDiscovery(patterns: [vm.path])], settings: settings)
        w.start()
        #expect(eventually { vm.commands.contains { $0.command == "block-latency-histogram-set" } })
        return (vm, w, replies)
    }

    /// With --latency-histograms a worker turns on the histograms of disks that have none, by
    /// their QOM path, and off again when watch stops.
    @Test func aWorkerTurnsHistogramsOnAndOffAgain() throws {
        let dir = TempDir()
        let (vm, w, _) = try watchWithHistograms(dir)
        defer { vm.stop() }
        w.stop()
        let sets = vm.commands.filter { $0.command == "block-latency-histogram-set" }.map(\.arguments)
        let qdev = #""id":"\/machine\/peripheral-anon\/device[0]\/virtio-backend""#
        #expect(sets.count == 2)
        #expect(sets.first?.contains(#""boundaries":[100000,250000,500000,1000000"#) == true && sets.first?.contains(qdev) == true)
        #expect(sets.last == "{\(qdev)}", "turned off again: no boundaries")
    }

    /// Histograms someone set while watch ran (other boundaries than watch's) are theirs: left on.
    @Test func histogramsSetMeanwhileByAnotherToolAreLeftOn() throws {
        let dir = TempDir()
        let (vm, w, replies) = try watchWithHistograms(dir)
        defer { vm.stop() }
        let theirs = replies["query-blockstats"]!.replacingOccurrences(
            of: #""idle_time_ns": 1000"#, with: #""idle_time_ns": 1000, "wr_latency_histogram": {"boundaries": [5000000], "bins": [3, 1]}"#)
        #expect(theirs != replies["query-blockstats"]!)
        vm.setReply("query-blockstats", theirs)
        Thread.sleep(forTimeInterval: 0.5)
        w.stop()
        #expect(vm.commands.filter { $0.command == "block-latency-histogram-set" }.count == 1, "theirs are not turned off")
    }
}
