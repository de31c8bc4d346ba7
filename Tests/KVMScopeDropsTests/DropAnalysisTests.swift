import Foundation
import Testing
import KVMScopeTestSupport
import KVMScopeCore
import KVMScopeTracefs
@testable import KVMScopeDrops

@Suite struct DropAnalysisTests {
    let udp = DropLocation(address: 0xffffffff82046f4c, symbol: "__udp4_lib_rcv", offset: 0x4bc, size: 0xd00)
    let nft = DropLocation(symbol: "nft_do_chain", offset: 0x3e8, module: "nf_tables")

    func event(_ l: DropLocation, _ reason: String?, _ proto: UInt16 = 0x0800, count: Int = 1, comm: String? = nil) -> DropEvent {
        DropEvent(comm: comm, location: l, protocolNumber: proto, reason: reason.map { DropReason(name: $0) }, count: count)
    }

    @Test func tallyOrdersByCountAndSumsViews() {
        var a = DropAggregator()
        a.add(event(nft, "NETFILTER_DROP"))
        a.add(event(udp, "NO_SOCKET", count: 3))
        a.add(event(udp, "NO_SOCKET", 0x86DD))
        a.add(event(nft, "NETFILTER_DROP"))
        let t = a.closeInterval(end: 1)
        #expect(t.total == 6)
        #expect(t.rows.map(\.count) == [3, 2, 1])
        #expect(t.byLocation.map(\.count) == [4, 2])
        #expect(t.byReason.map { $0.label?.name } == ["NO_SOCKET", "NETFILTER_DROP"])
        #expect(t.byProtocol.map { $0.label } == [0x0800, 0x86DD])
        #expect(t.byProtocol.map(\.count) == [5, 1])
        #expect(a.total.total == 6)
        #expect(a.current.total == 0)
    }

    @Test func filtersAndLocationPatterns() {
        #expect(DropFilter.LocationPattern("__udp4_lib_rcv") == .function("__udp4_lib_rcv"))
        #expect(DropFilter.LocationPattern("__udp4_lib_rcv+0x4bc/0xd00") == .spot("__udp4_lib_rcv", 0x4bc))
        #expect(DropFilter.LocationPattern("0xffffffff82046f4c") == .address(0xffffffff82046f4c))
        #expect(DropFilter.LocationPattern("+0x4") == nil)
        #expect(DropFilter.LocationPattern("a b") == nil)
        let f = DropFilter(reasons: ["skb_drop_reason_no_socket"], protocols: [0x0800])
        #expect(f.reasons == ["NO_SOCKET"])
        #expect(f.accepts(event(udp, "NO_SOCKET")))
        #expect(!f.accepts(event(udp, "NO_SOCKET", 0x86DD)))
        #expect(!f.accepts(event(udp, nil)))
        let byAddress = DropFilter(locations: [.address(0xffffffff82046f4c)])
        #expect(byAddress.accepts(event(udp, nil)))
        #expect(!byAddress.accepts(event(DropLocation(address: 0xffffffff82046f4c, hashed: true), nil)))
        var a = DropAggregator(filter: DropFilter(locations: [.function("nft_do_chain")]))
        a.add(event(udp, "NO_SOCKET", count: 4))
        a.add(event(nft, "NETFILTER_DROP"))
        #expect(a.current.total == 1)
        #expect(a.filteredOut == 4)
    }

    @Test func aheadDropsJoinTheNextInterval() {
        var main = DropAggregator()
        var ahead = DropAggregator()
        main.add(event(udp, "NO_SOCKET"))
        ahead.add(event(nft, "NETFILTER_DROP", count: 2))
        let first = main.closeInterval(end: 1)
        main.absorb(ahead)
        let second = main.closeInterval(end: 2)
        #expect(first.total == 1)
        #expect(second.total == 2)
        #expect(main.total.total == 3)
        #expect(second.start == 1 && second.end == 2)
    }

    @Test func symbolizerCachesAndLeavesPrintedSymbolsAlone() throws {
        let table = try KernelSymbolTable(parsing: MemoryByteSource(try DropFixtures.text("kallsyms-excerpt-6.18.txt")))
        let s = LocationSymbolizer(table: table)
        let l = s.resolve(DropLocation(address: 0xffffffff81f63638))
        #expect(l.symbolText == "nft_do_chain+0x3e8")
        #expect(l.size == 0x610)
        #expect(s.resolve(nft) == nft)
        #expect(s.resolve(DropLocation(address: 0xa6aa3c2b, hashed: true)).symbol == nil)
        _ = s.resolve(DropLocation(address: 0x1000))
        #expect(s.unresolved == [0x1000])
        #expect(LocationSymbolizer(table: nil).resolve(DropLocation(address: 5)) == DropLocation(address: 5))
    }

    @Test func textLinesForEveryOrigin() {
        let r = DropTextRenderer()
        let sw = DropKey(location: udp, reason: DropReason(name: "NO_SOCKET"), protocolNumber: 0x0800, origin: .software)
        #expect(r.locationLine(sw, count: 1) == "1 drop at __udp4_lib_rcv+0x4bc (0xffffffff82046f4c) [software] reason NO_SOCKET")
        let hw = DropKey(location: DropLocation(), origin: .hardware, hardwareTrap: "ingress_vlan_filter")
        #expect(r.locationLine(hw, count: 9) == "9 drops at ingress_vlan_filter [hardware]")
        let oldHW = DropKey(location: DropLocation(), origin: .hardware)
        #expect(r.locationLine(oldHW, count: 2) == "2 drops [hardware] (a device's receive-drop counter rose)")
        let noReason = DropKey(location: DropLocation(address: 0xffffffff815b2b1e), origin: .software)
        #expect(r.locationLine(noReason, count: 4) == "4 drops at 0xffffffff815b2b1e [software]")
        #expect(DropReason(code: 7).displayName == "#7")
    }

    @Test func intervalBlockWithLosses() {
        var a = DropAggregator()
        a.add(event(udp, "NO_SOCKET", count: 5))
        a.noteLost(12)
        let t = a.closeInterval(end: 2)
        let text = DropTextRenderer(top: 1).interval(t, label: "x")
        #expect(text == """
        --- x ---
        5 drops at __udp4_lib_rcv+0x4bc (0xffffffff82046f4c) [software] reason NO_SOCKET
        by reason: NO_SOCKET 5
        LOST 12 events before kvmscope read them: the counts are too low
        total: 5 drops

        """)
        var b = DropAggregator()
        b.add(event(udp, "NO_SOCKET"))
        b.add(event(nft, "NETFILTER_DROP", count: 2))
        b.add(event(DropLocation(symbol: "tcp_v4_rcv", offset: 0x91), "NO_SOCKET"))
        let capped = DropTextRenderer(top: 1).interval(b.closeInterval(end: 1), label: "y")
        #expect(capped.contains("2 drops at nft_do_chain+0x3e8 [nf_tables] [software] reason NETFILTER_DROP\n... 2 more locations (2 drops)\n"))
    }

    @Test func etherTypes() {
        #expect(EtherType.name(0x0800) == "IPv4")
        #expect(EtherType.name(0x86DD) == "IPv6")
        #expect(EtherType.name(0x1234) == "0x1234")
        #expect(EtherType.parse("IPV6") == 0x86DD)
        #expect(EtherType.parse("2048") == 0x0800)
        #expect(EtherType.parse("0x0806") == 0x0806)
        #expect(EtherType.parse("802.1q") == 0x8100)
        #expect(EtherType.parse("bogus") == nil)
        #expect(DropReasonExplanations.explanation(for: "SKB_DROP_REASON_NETFILTER_DROP") == "a firewall rule (nftables, iptables, ebtables) dropped it")
    }
}
