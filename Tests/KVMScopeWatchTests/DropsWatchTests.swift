import Foundation
import Testing
import KVMScopeTestSupport
import KVMScopeDrops
import KVMScopeTracefs
@testable import KVMScopeWatch

/// Drops handed out as the drops domain's live sources hand them.
final class FakeDropFeed: DropFeed {
    var queued: [DropEvent] = []
    var lostEvents: UInt64 = 0
    var failure: (any Error)?
    private(set) var closed = false
    func drain(_ body: (DropEvent) -> Void) throws {
        if let failure { throw failure }
        queued.forEach(body)
        queued = []
    }
    func close() { closed = true }
}

@Suite struct DropsWatchTests {
    func render(_ m: WatchMetrics) -> String { String(decoding: m.render(), as: UTF8.self) }
    func drops(_ t: String, _ reason: String, _ location: String) -> Double? {
        Exposition.value(t, "kvmscope_net_drops_total", [("reason", reason), ("location", location)])
    }

    @Test func countsDropsByReasonAndFunction() throws {
        let m = WatchMetrics()
        let feed = FakeDropFeed()
        let w = DropsWatch(feed: feed, symbols: nil, series: m.host, warn: { _ in })
        feed.queued = [
            DropEvent(location: DropLocation(address: 0xffffffff82046f4c, symbol: "__udp4_lib_rcv", offset: 0x4bc), reason: DropReason(code: 3, name: "NO_SOCKET")),
            DropEvent(location: DropLocation(address: 0xffffffff82046f50, symbol: "__udp4_lib_rcv", offset: 0x4c0), reason: DropReason(code: 3, name: "NO_SOCKET")),
            DropEvent(location: DropLocation(symbol: "nft_do_chain", offset: 0x3e8, module: "nf_tables"), reason: DropReason(name: "NETFILTER_DROP")),
            // NET_DM summary alert: many drops at one place, no reason.
            DropEvent(location: DropLocation(symbol: "tcp_v4_rcv", offset: 0x10), count: 40),
            // A hashed pointer names no place.
            DropEvent(location: DropLocation(address: 0xa6aa3c2b, hashed: true), reason: DropReason(code: 2, name: "NOT_SPECIFIED")),
            DropEvent(location: DropLocation(symbol: "x"), reason: DropReason(code: 0x10005)),
        ]
        w.pump()
        feed.lostEvents = 3
        w.pump()
        let t = render(m)
        #expect(drops(t, "NO_SOCKET", "__udp4_lib_rcv") == 2, "one series per function, not per offset")
        #expect(drops(t, "NETFILTER_DROP", "nft_do_chain") == 1)
        #expect(drops(t, "unknown", "tcp_v4_rcv") == 40)
        #expect(drops(t, "NOT_SPECIFIED", "unknown") == 1)
        #expect(drops(t, "0x10005", "x") == 1)
        #expect(Exposition.value(t, "kvmscope_watch_source_lost_total", [("source", "drops")]) == 3)
        #expect(Exposition.value(t, "kvmscope_watch_source_up", [("source", "drops")]) == 1)
        if let problems = try Exposition.promtoolProblems(t) { Issue.record("promtool check metrics: \(problems)\n\(t)") }
    }

    /// The event log gets drops as one summary line per reason and place each interval, the
    /// most first, at most maxSummaryLines of them and the rest as `other`; nothing when none.
    @Test func theEventLogGetsASummaryPerIntervalNotALinePerPacket() throws {
        let m = WatchMetrics()
        let feed = FakeDropFeed(), log = WatchEventCollector()
        let w = DropsWatch(feed: feed, symbols: nil, series: m.host, events: log, summarySeconds: 10, warn: { _ in })
        let udp = DropEvent(location: DropLocation(symbol: "__udp4_lib_rcv", offset: 0x4bc), reason: DropReason(code: 3, name: "NO_SOCKET"))
        let nft = DropEvent(location: DropLocation(symbol: "nft_do_chain", offset: 0x3e8), reason: DropReason(name: "NETFILTER_DROP"))
        feed.queued = Array(repeating: udp, count: 500) + [nft]
        w.pump(now: 1_000_001)
        #expect(log.records.isEmpty, "not before the interval")
        feed.queued = [udp]
        w.pump(now: 1_000_011)
        #expect(log.records.map(\.reason) == ["NO_SOCKET", "NETFILTER_DROP"])
        let first = try #require(log.records.first)
        #expect(first.type == .drops && first.count == 501 && first.location == "__udp4_lib_rcv" && first.domain == nil)
        #expect(first.message?.contains("501 packets dropped by the host kernel in __udp4_lib_rcv (reason NO_SOCKET)") == true)
        w.pump(now: 1_000_030)
        #expect(log.records.count == 2, "an interval without drops writes nothing")
        feed.queued = (0..<100).map { DropEvent(location: DropLocation(symbol: "f\($0)"), reason: DropReason(name: "NO_SOCKET")) }
        w.pump(now: 1_000_045)
        let burst = log.records.dropFirst(2)
        #expect(burst.count == DropsWatch.maxSummaryLines + 1)
        #expect(burst.last?.location == "other" && burst.last?.count == Int64(100 - DropsWatch.maxSummaryLines))
    }

    @Test func reasonsAndLocationsAreCapped() {
        let m = WatchMetrics()
        let feed = FakeDropFeed()
        let w = DropsWatch(feed: feed, symbols: nil, series: m.host, warn: { _ in })
        feed.queued = (0..<300).map { DropEvent(location: DropLocation(symbol: "f\($0)"), reason: DropReason(name: "NO_SOCKET")) }
        w.pump()
        #expect(m.host.seriesCount(WatchMetricFamilies.netDrops) == HostSeries.maxSeriesPerFamily)
        #expect(Exposition.value(render(m), "kvmscope_watch_series_overflow_total", [("metric", "kvmscope_net_drops_total")]) == 44)
    }

    @Test func aSourceThatFailsIsSaidOnceAndShowsDown() {
        let m = WatchMetrics()
        let feed = FakeDropFeed()
        final class Said: @unchecked Sendable { var lines: [String] = [] }
        let said = Said()
        let w = DropsWatch(feed: feed, symbols: nil, series: m.host, warn: { said.lines.append($0) })
        feed.failure = KVMScopeError.readFailed(path: "trace_pipe", reason: "Input/output error")
        w.pump(); w.pump()
        #expect(said.lines.count == 1)
        #expect(Exposition.value(render(m), "kvmscope_watch_source_up", [("source", "drops")]) == 0)
        w.stop()
        #expect(feed.closed)
    }

    /// Real drops from the drops domain's live source: datagrams to a closed UDP port in a
    /// network namespace of the test's own (NO_SOCKET at __udp4_lib_rcv, as DropsLiveTests
    /// makes them). Other drops on the host may add to the count, never take from it.
    @Test func countsRealDropsAsRoot() throws {
        guard geteuid() == 0, (try? Tracefs.locate()) != nil, Tracefs(root: Tracefs.defaultRoot).hasEvent("skb", "kfree_skb"),
              FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip") else {
            print("NOTE: not root, no skb:kfree_skb or no ip: real drops test skipped"); return
        }
        let m = WatchMetrics()
        let w = try DropsWatch.open(series: m.host, warn: { _ in })
        defer { w.stop() }
        let ns = "kvsw-\(getpid())"
        try sh("ip netns add \(ns) && ip -n \(ns) link set lo up")
        defer { try? sh("ip netns del \(ns)") }
        let n = 25
        try sh("ip netns exec \(ns) bash -c 'for i in $(seq \(n)); do echo x > /dev/udp/127.0.0.1/9; done'")
        var got: Double = 0
        #expect(eventually(10) {
            w.pump()
            got = drops(render(m), "NO_SOCKET", "__udp4_lib_rcv") ?? 0
            return got >= Double(n)
        }, "\(got) NO_SOCKET drops at __udp4_lib_rcv, want ≥ \(n)\n\(render(m))")
    }

    @discardableResult
    func sh(_ command: String) throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = ["-c", command]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        return p.terminationStatus
    }
}
