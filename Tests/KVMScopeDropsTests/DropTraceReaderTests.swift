import Foundation
import Testing
import KVMScopeTestSupport
import KVMScopeCore
import KVMScopeTracefs
import KVMScope   // FormatRegistry: detection across every domain's formats
@testable import KVMScopeDrops

func parseLine(_ s: String, reasonNames: [UInt64: String] = [:]) -> KfreeSkbLineParser.Result {
    var bytes = Array(s.utf8)
    return bytes.withUnsafeMutableBufferPointer { b in
        KfreeSkbLineParser(reasonNames: reasonNames).parse(LineBytes(UnsafeBufferPointer(b)))
    }
}

func drop(_ s: String, reasonNames: [UInt64: String] = [:]) -> DropEvent? {
    if case let .drop(e) = parseLine(s, reasonNames: reasonNames) { return e }
    return nil
}

@Suite struct KfreeSkbLineParserTests {
    @Test func theIssuesRealLine() throws {
        let e = try #require(drop("python3-5057 [001] ..s1. 425.645264: kfree_skb: skbaddr=00000000fa462583 rx_sk=0000000000000000 protocol=2048 location=__udp4_lib_rcv+0x4bc/0xd00 reason: NO_SOCKET"))
        #expect(e.comm == "python3")
        #expect(e.pid == 5057)
        #expect(e.cpu == 1)
        #expect(e.time == 425.645264)
        #expect(e.protocolNumber == 0x0800)
        #expect(e.location == DropLocation(symbol: "__udp4_lib_rcv", offset: 0x4bc, size: 0xd00))
        #expect(e.reason == DropReason(name: "NO_SOCKET"))
        #expect(e.origin == .software)
        #expect(e.count == 1)
    }

    @Test func realFtraceCapture() throws {
        let (events, stats) = try readDrops(try DropFixtures.text("ftrace-trace-6.18.txt"))
        #expect(events.count == 7)
        #expect(stats.headerLines == 12)
        #expect(stats.skippedLines == 0)
        #expect(events.map { $0.location.symbol! } == ["__udp4_lib_rcv", "__udp4_lib_rcv", "__udp4_lib_rcv", "nft_do_chain", "nft_do_chain", "__udp6_lib_rcv", "__udp6_lib_rcv"])
        #expect(events.map { $0.reason!.name! } == ["NO_SOCKET", "NO_SOCKET", "NO_SOCKET", "NETFILTER_DROP", "NETFILTER_DROP", "NO_SOCKET", "NO_SOCKET"])
        #expect(events.map { $0.protocolNumber! } == [2048, 2048, 2048, 2048, 2048, 34525, 34525])
        #expect(events[3].location == DropLocation(symbol: "nft_do_chain", offset: 0x3e8, size: 0x610))
        #expect(events.allSatisfy { $0.comm == "bash" && $0.pid == 3910 && $0.cpu == 1 })
        #expect(events[0].time == 1359.456250)
    }

    @Test func realPerfScriptCapture() throws {
        let (events, stats) = try readDrops(try DropFixtures.text("perf-script-6.18.txt"))
        #expect(events.count == 7)
        #expect(stats.skippedLines == 0)
        #expect(events[0].comm == "bash")
        #expect(events[0].pid == 4044)
        #expect(events[0].cpu == 1)
        #expect(events[0].time == 1360.824430)
        #expect(events[0].location == DropLocation(symbol: "__udp4_lib_rcv", offset: 0x4bc))
        #expect(events[4].reason?.name == "NETFILTER_DROP")
        let fields = try readDrops(try DropFixtures.text("perf-script-fields-6.18.txt")).0
        #expect(fields.count == 7)
        #expect(fields[0].pid == 4044)     // `bash 4044/4044`: the thread id
        #expect(fields[0].comm == "bash")
    }

    @Test func realTraceCmdCaptures() throws {
        for (file, precise) in [("trace-cmd-report-6.18.txt", false), ("trace-cmd-report-t-6.18.txt", true),
                                ("trace-cmd-report-l-6.18.txt", false)] {
            let (events, stats) = try readDrops(try DropFixtures.text(file))
            #expect(events.count == 7, "\(file)")
            #expect(stats.headerLines == 1, "\(file)")           // cpus=2
            #expect(stats.skippedLines == 0, "\(file)")
            #expect(events.allSatisfy { $0.comm == "bash" && $0.pid == 4164 && $0.cpu == 1 }, "\(file)")
            #expect(events[3].location == DropLocation(symbol: "nft_do_chain", offset: 0x3e8), "\(file)")
            #expect(events[0].time == (precise ? 1363.751102880 : 1363.751103), "\(file)")
        }
    }

    @Test func rawTraceCmdReasonsNeedTheCapturingKernelsTable() throws {
        let text = try DropFixtures.text("trace-cmd-report-R-6.18.txt")
        let (unnamed, stats) = try readDrops(text)
        #expect(unnamed.map { $0.reason!.code! } == [3, 3, 3, 12, 12, 3, 3])
        #expect(unnamed.allSatisfy { $0.reason?.name == nil })
        #expect(stats.unnamedReasons == 7)
        #expect(unnamed[0].reason!.displayName == "#3")
        let format = try TracepointFormat.parse(try DropFixtures.text("kfree_skb-format-6.18.txt"))
        let (named, _) = try readDrops(text, parser: KfreeSkbLineParser(reasonNames: format.symbolTables["reason"]!))
        #expect(named.map { $0.reason!.name! } == ["NO_SOCKET", "NO_SOCKET", "NO_SOCKET", "NETFILTER_DROP", "NETFILTER_DROP", "NO_SOCKET", "NO_SOCKET"])
        #expect(named[5].location.symbol == "__udp6_lib_rcv")
    }

    // Lines built from each kernel's TP_printk of include/trace/events/skb.h, with the
    // ftrace line prefix of its time.
    @Test func linux2_6_to_4_14_unhashedPointers() throws {
        // "skbaddr=%p protocol=%u location=%p": before 4.15, %p printed the address itself.
        let e = try #require(drop("          <idle>-0     [001]  5212.193405: kfree_skb: skbaddr=ffff88003b7f0e00 protocol=2048 location=ffffffff815b2b1e"))
        #expect(e.location == DropLocation(address: 0xffffffff815b2b1e))
        #expect(!e.location.hashed)
        #expect(e.reason == nil)
        #expect(e.comm == "<idle>")
        #expect(e.pid == 0)
        #expect(e.cpu == 1)
    }

    @Test func linux4_15_to_5_16_hashedPointers() throws {
        let e = try #require(drop("     ksoftirqd/0-9     [000] ..s.   331.514326: kfree_skb: skbaddr=000000006a8cd2a3 protocol=4 location=00000000a6aa3c2b"))
        #expect(e.location.hashed)
        #expect(e.location.address == 0xa6aa3c2b)
        #expect(e.location.displayText == "hashed pointer 00000000a6aa3c2b")
        #expect(e.protocolNumber == 4)
        #expect(e.comm == "ksoftirqd/0")
        #expect(e.pid == 9)
    }

    @Test func linux5_17_reasonWithPlainPointer() throws {
        let e = try #require(drop("            sshd-1015    [000] b.s1.  1024.012001: kfree_skb: skbaddr=00000000d3a0f0c5 protocol=34525 location=000000004d1a5d6e reason: TCP_CSUM"))
        #expect(e.reason?.name == "TCP_CSUM")
        #expect(e.location.hashed)
        #expect(e.protocolNumber == 0x86DD)
    }

    @Test func linux6_x_symbolOffsetSize() throws {
        let e = try #require(drop("   Web Content-2231    [003] ..s2.   88.000123: kfree_skb: skbaddr=0000000091ba5c1d protocol=2048 location=nf_hook_slow+0xa5/0xf0 reason: NETFILTER_DROP"))
        #expect(e.comm == "Web Content")
        #expect(e.pid == 2231)
        #expect(e.location == DropLocation(symbol: "nf_hook_slow", offset: 0xa5, size: 0xf0))
    }

    @Test func moduleSymbolAndTgidColumn() throws {
        let e = try #require(drop("            bash-3910    (   3910) [001] ..s1.  1359.456250: kfree_skb: skbaddr=00000000df8d641d rx_sk=0000000000000000 protocol=2048 location=nft_do_chain+0x3e8/0x610 [nf_tables] reason: NETFILTER_DROP"))
        #expect(e.location.module == "nf_tables")
        #expect(e.location.symbolText == "nft_do_chain+0x3e8 [nf_tables]")
        #expect(e.pid == 3910)
        #expect(e.cpu == 1)
        #expect(e.reason?.name == "NETFILTER_DROP")
    }

    @Test func perfOlderKernelRealAddress() throws {
        let e = try #require(drop("         swapper     0 [002]  7361.109012: skb:kfree_skb: skbaddr=0xffff9a3c4c2b8e00 protocol=2048 location=0xffffffff9a8b3f7d"))
        #expect(e.location == DropLocation(address: 0xffffffff9a8b3f7d))
        #expect(e.comm == "swapper")
        #expect(e.pid == 0)
    }

    @Test func unknownReasonValueAndSubsystemReasons() throws {
        let e = try #require(drop("  kworker/u4:2-88      [000] ..s1.   10.000001: kfree_skb: skbaddr=0000000091ba5c1d rx_sk=0000000000000000 protocol=0 location=ieee80211_rx_list+0x10/0x20 reason: 0x10005"))
        #expect(e.reason?.code == 0x10005)
        #expect(e.reason?.displayName == "0x10005 (subsystem 1, reason 5)")
        #expect(e.comm == "kworker/u4:2")
    }

    @Test func consumeSkbIsNeverADrop() {
        guard case .consumed = parseLine("            bash-3910    [001] ..s1.  1359.456250: consume_skb: skbaddr=00000000df8d641d location=unix_stream_read_generic+0x6e1/0x9a0") else {
            Issue.record("consume_skb parsed as something else"); return
        }
        guard case .consumed = parseLine("  bash  4044 [001]  1360.824430: skb:consume_skb: skbaddr=0xffff88816333f300 location=skb_free_datagram+0x1c") else {
            Issue.record("perf consume_skb parsed as something else"); return
        }
    }

    @Test func otherEventsAndGarbageAreCounted() throws {
        let text = """
        # tracer: nop
                    bash-3910    [001] ..s1.  1359.456250: kfree_skb: skbaddr=00000000df8d641d rx_sk=0000000000000000 protocol=2048 location=__udp4_lib_rcv+0x4bc/0xd00 reason: NO_SOCKET
                    bash-3910    [001] ..s1.  1359.456251: consume_skb: skbaddr=00000000df8d641d location=skb_free_datagram+0x1c/0x40
                    bash-3910    [001] d..1.  1359.456252: sched_switch: prev_comm=bash prev_pid=3910
        this line is garbage
                    bash-3910    [001] ..s1.  1359.4562
        \u{01}\u{02}binary\u{00}junk
        bash-3910 [001] ..s1. 1359.456253: kfree_skb: skbaddr=
        """
        let (events, stats) = try readDrops(text)
        #expect(events.count == 1)
        #expect(stats.drops == 1)
        #expect(stats.consumed == 1)
        #expect(stats.otherEvents == 1)
        #expect(stats.headerLines == 1)
        #expect(stats.skippedLines == 4)
        #expect(stats.lines == 8)
    }

    @Test func notFooledBySymbolNamesContainingTheEventName() {
        // `location=kfree_skb_list_reason+...` must not be taken for the event marker.
        let e = drop("  bash  1 [000]  1.000000: skb:kfree_skb: skbaddr=0xffff888100000000 protocol=2048 location=kfree_skb_list_reason+0x2a reason: NOT_SPECIFIED")
        #expect(e?.location.symbol == "kfree_skb_list_reason")
    }

    @Test func formatDetection() throws {
        func detect(_ file: String) throws -> String? {
            let bytes = try DropFixtures.bytes(file)
            return bytes.withUnsafeBytes { FormatRegistry.detect(.packetDrops, sample: $0)?.name }
        }
        #expect(try detect("perf-script-6.18.txt") == "perf-script-drops")
        #expect(try detect("perf-script-fields-6.18.txt") == "perf-script-drops")
        #expect(try detect("trace-cmd-report-6.18.txt") == "trace-cmd-drops")
        #expect(try detect("trace-cmd-report-R-6.18.txt") == "trace-cmd-drops")
        #expect(try detect("ftrace-trace-6.18.txt") == "ftrace-drops")
        #expect(try detect("kfree_skb-format-6.18.txt") == nil)
    }
}
