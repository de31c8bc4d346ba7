import Foundation
import Testing
import KVMScopeTestSupport
import KVMScopeCore
import KVMScopeDrops
@testable import KVMScopeTracefs

/// Builds ring-buffer pages the way kernel/trace/ring_buffer.c writes them (little-endian).
struct RingPageBuilder {
    var layout = RingBufferLayout()
    var timestamp: UInt64
    var data: [UInt8] = []
    var flags: UInt64 = 0
    var trailer: [UInt8] = []

    init(timestamp: UInt64, layout: RingBufferLayout = RingBufferLayout()) {
        self.timestamp = timestamp
        self.layout = layout
    }

    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { data += $0 } }
    mutating func header(type: UInt32, delta: UInt32) { u32(type | delta << 5) }

    /// A data event; payloads over 112 bytes (28*4) use the type_len 0 form, like the kernel.
    mutating func event(delta: UInt32, payload: [UInt8], forceLengthWord: Bool = false) {
        var p = payload
        while p.count % 4 != 0 { p.append(0) }
        if p.count <= 112 && !forceLengthWord {
            header(type: UInt32(p.count / 4), delta: delta)
        } else {
            header(type: 0, delta: delta)
            u32(UInt32(p.count + 4))
        }
        data += p
    }

    mutating func timeExtend(_ delta: UInt64) {
        header(type: 30, delta: UInt32(delta & 0x7FFFFFF))
        u32(UInt32(delta >> 27))
    }

    mutating func absolute(_ ts: UInt64) {
        header(type: 31, delta: UInt32(ts & 0x7FFFFFF))
        u32(UInt32((ts >> 27) & 0xFFFFFFFF))
    }

    /// A discarded event: padding with a non-zero delta and its length in array[0].
    mutating func discarded(bytes: Int) {
        header(type: 29, delta: 7)
        u32(UInt32(bytes))
        data += [UInt8](repeating: 0xEE, count: bytes - 4)
    }

    func page() -> [UInt8] {
        var page = [UInt8](repeating: 0, count: layout.pageSize)
        withUnsafeBytes(of: timestamp.littleEndian) { page.replaceSubrange(layout.timestampOffset..<layout.timestampOffset + 8, with: $0) }
        let commit = UInt64(data.count) | flags
        if layout.commitSize == 8 {
            withUnsafeBytes(of: commit.littleEndian) { page.replaceSubrange(layout.commitOffset..<layout.commitOffset + 8, with: $0) }
        } else {
            withUnsafeBytes(of: UInt32(truncatingIfNeeded: commit).littleEndian) { page.replaceSubrange(layout.commitOffset..<layout.commitOffset + 4, with: $0) }
        }
        page.replaceSubrange(layout.dataOffset..<layout.dataOffset + data.count, with: data)
        let t = layout.dataOffset + data.count
        page.replaceSubrange(t..<t + trailer.count, with: trailer)
        return page
    }
}

func decodePage(_ page: [UInt8], layout: RingBufferLayout = RingBufferLayout()) -> (events: [(UInt64, [UInt8])], stats: RingBufferPageDecoder.Stats) {
    var decoder = RingBufferPageDecoder(layout: layout)
    var out: [(UInt64, [UInt8])] = []
    page.withUnsafeBytes { p in decoder.decode(page: p) { ts, payload in out.append((ts, Array(payload))) } }
    return (out, decoder.stats)
}

@Suite struct TracepointFormatTests {
    @Test func realKfreeSkbFormatOf6_18() throws {
        let f = try TracepointFormat.parse(try DropFixtures.text("kfree_skb-format-6.18.txt"))
        #expect(f.name == "kfree_skb")
        #expect(f.id == 2310)
        #expect(f.fields.map(\.name) == ["common_type", "common_flags", "common_preempt_count", "common_pid",
                                         "skbaddr", "location", "rx_sk", "protocol", "reason"])
        #expect(f.field("location") == .init(type: "void *", name: "location", offset: 16, size: 8, isSigned: false, isCommon: false))
        #expect(f.field("protocol")?.offset == 32)
        #expect(f.field("reason")?.offset == 36)
        #expect(f.field("reason")?.type == "enum skb_drop_reason")
        #expect(f.field("common_pid")?.isSigned == true)
        #expect(f.field("common_pid")?.isCommon == true)
        #expect(f.printFormat == "skbaddr=%p rx_sk=%p protocol=%u location=%pS reason: %s")
        let reasons = try #require(f.symbolTables["reason"])
        #expect(reasons.count == 127)
        #expect(reasons[3] == "NO_SOCKET")
        #expect(reasons[12] == "NETFILTER_DROP")
        #expect(reasons[64] == "QDISC_DROP")
        #expect(reasons[128] == "MAX")
        #expect(reasons[1] == nil)
        #expect(f.recordSize == 40)
    }

    @Test func kernel6_1LayoutAndNumbering() throws {
        // 6.1's layout (no rx_sk, protocol at 24) and numbering (NETFILTER_DROP = 8).
        let text = """
        name: kfree_skb
        ID: 1493
        format:
        \tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
        \tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
        \tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
        \tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

        \tfield:void * skbaddr;\toffset:8;\tsize:8;\tsigned:0;
        \tfield:void * location;\toffset:16;\tsize:8;\tsigned:0;
        \tfield:unsigned short protocol;\toffset:24;\tsize:2;\tsigned:0;
        \tfield:enum skb_drop_reason reason;\toffset:28;\tsize:4;\tsigned:0;

        print fmt: "skbaddr=%p protocol=%u location=%p reason: %s", REC->skbaddr, REC->protocol, REC->location, __print_symbolic(REC->reason, { 2, "NOT_SPECIFIED" }, { 3, "NO_SOCKET" }, { 4, "PKT_TOO_SMALL" }, { 5, "TCP_CSUM" }, { 6, "SOCKET_FILTER" }, { 7, "UDP_CSUM" }, { 8, "NETFILTER_DROP" }, { 0x1c, "QDISC_DROP" })
        """
        let f = try TracepointFormat.parse(text)
        #expect(f.symbolTables["reason"]?[8] == "NETFILTER_DROP")
        #expect(f.symbolTables["reason"]?[0x1c] == "QDISC_DROP")
        #expect(f.printFormat == "skbaddr=%p protocol=%u location=%p reason: %s")
        let d = try KfreeSkbRecordDecoder(format: f)
        var rec = [UInt8](repeating: 0, count: 32)
        rec.withUnsafeMutableBytes { p in
            p.storeBytes(of: UInt16(1493), toByteOffset: 0, as: UInt16.self)
            p.storeBytes(of: Int32(77), toByteOffset: 4, as: Int32.self)
            p.storeBytes(of: UInt64(0xffff888100000000), toByteOffset: 8, as: UInt64.self)
            p.storeBytes(of: UInt64(0xffffffff81f63638), toByteOffset: 16, as: UInt64.self)
            p.storeBytes(of: UInt16(0x0800), toByteOffset: 24, as: UInt16.self)
            p.storeBytes(of: UInt32(8), toByteOffset: 28, as: UInt32.self)
        }
        let r = try #require(rec.withUnsafeBytes { d.decode($0) })
        // Field by field: KfreeSkbRecord's memberwise init is internal to KVMScopeDrops.
        #expect(r.pid == 77 && r.skbaddr == 0xffff888100000000 && r.location == 0xffffffff81f63638)
        #expect(r.protocolNumber == 0x0800 && r.reason == 8 && r.rxSocket == nil)
        #expect(d.dropReason(r.reason)?.name == "NETFILTER_DROP")
    }

    @Test func kernel5_xWithoutReason32Bit() throws {
        // A 32-bit ≤5.16 kernel: pointers are 4 bytes and there is no reason field.
        let text = """
        name: kfree_skb
        ID: 480
        format:
        \tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
        \tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
        \tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
        \tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

        \tfield:void * skbaddr;\toffset:8;\tsize:4;\tsigned:0;
        \tfield:unsigned short protocol;\toffset:12;\tsize:2;\tsigned:0;
        \tfield:void * location;\toffset:16;\tsize:4;\tsigned:0;

        print fmt: "skbaddr=%p protocol=%u location=%p", REC->skbaddr, REC->protocol, REC->location
        """
        let f = try TracepointFormat.parse(text)
        #expect(f.symbolTables.isEmpty)
        let d = try KfreeSkbRecordDecoder(format: f)
        var rec = [UInt8](repeating: 0, count: 20)
        rec.withUnsafeMutableBytes { p in
            p.storeBytes(of: UInt16(480), toByteOffset: 0, as: UInt16.self)
            p.storeBytes(of: Int32(5), toByteOffset: 4, as: Int32.self)
            p.storeBytes(of: UInt32(0xc1234567), toByteOffset: 16, as: UInt32.self)
            p.storeBytes(of: UInt16(0x86DD), toByteOffset: 12, as: UInt16.self)
        }
        let r = try #require(rec.withUnsafeBytes { d.decode($0) })
        #expect(r.location == 0xc1234567)
        #expect(r.reason == nil)
        #expect(r.protocolNumber == 0x86DD)
        // Another event id, or a short record, is not decoded.
        rec[0] = 0x11
        #expect(rec.withUnsafeBytes { d.decode($0) } == nil)
        #expect(Array(rec.prefix(10)).withUnsafeBytes { d.decode($0) } == nil)
    }

    @Test func rejectsWhatIsNotAFormatFile() {
        #expect(throws: TracepointFormat.ParseError.self) { try TracepointFormat.parse("hello\nworld") }
        #expect(throws: TracepointFormat.ParseError.self) {
            try TracepointFormat.parse("name: x\nID: 1\nformat:\n\tfield:int;\toffset:x;\n")
        }
        // consume_skb has no protocol: the kfree_skb decoder refuses it with a clear reason.
        let consume = try! TracepointFormat.parse(try! DropFixtures.text("consume_skb-format-6.18.txt"))
        #expect(throws: KfreeSkbRecordDecoder.DecodeError.missingField("protocol")) { try KfreeSkbRecordDecoder(format: consume) }
    }

    @Test func realHeaderPageAndEvent() throws {
        let l = try RingBufferLayout.parse(headerPage: try DropFixtures.text("header_page-6.18.txt"),
                                           headerEvent: try DropFixtures.text("header_event-6.18.txt"))
        #expect(l.timestampOffset == 0)
        #expect(l.commitOffset == 8)
        #expect(l.commitSize == 8)
        #expect(l.dataOffset == 16)
        #expect(l.dataSize == 4080)
        #expect(l.pageSize == 4096)
        #expect(l.paddingType == 29 && l.timeExtendType == 30 && l.timeStampType == 31 && l.dataMaxTypeLen == 28)
        #expect(throws: TracepointFormat.ParseError.self) { try RingBufferLayout.parse(headerPage: "nothing", headerEvent: nil) }
    }
}

@Suite struct RingBufferPageDecoderTests {
    @Test func realPageCapturedOn6_18() throws {
        let layout = try RingBufferLayout.parse(headerPage: try DropFixtures.text("header_page-6.18.txt"),
                                                headerEvent: try DropFixtures.text("header_event-6.18.txt"))
        let format = try TracepointFormat.parse(try DropFixtures.text("kfree_skb-format-6.18.txt"))
        let decoder = try KfreeSkbRecordDecoder(format: format)
        let page = try DropFixtures.bytes("ring-cpu1-6.18.raw")
        #expect(page.count == 4096)
        let (events, stats) = decodePage(page, layout: layout)
        #expect(events.count == 7)
        #expect(stats.timeExtends == 2)     // the 0.3 s and 0.2 s pauses exceed 2^27 ns
        #expect(stats.corruptPages == 0)
        #expect(stats.lostEvents == 0)
        let records = events.compactMap { e in e.1.withUnsafeBytes { decoder.decode($0) } }
        #expect(records.count == 7)
        #expect(records.map(\.location) == [0xffffffff82046f4c, 0xffffffff82046f4c, 0xffffffff82046f4c,
                                            0xffffffff81f63638, 0xffffffff81f63638,
                                            0xffffffff82107981, 0xffffffff82107981])
        #expect(records.map { $0.reason! } == [3, 3, 3, 12, 12, 3, 3])
        #expect(records.map(\.protocolNumber) == [2048, 2048, 2048, 2048, 2048, 34525, 34525])
        #expect(records.allSatisfy { $0.pid == 3910 && $0.rxSocket == 0 })
        // The same events as the ftrace text of that instance: microseconds agree (ftrace
        // rounds nanoseconds to the nearest microsecond, ns2usecs).
        let text = try readDrops(try DropFixtures.text("ftrace-trace-6.18.txt")).0
        #expect(events.map { ($0.0 + 500) / 1000 } == text.map { UInt64(($0.time! * 1e6).rounded()) })
    }

    @Test func everyRecordTypeInABuiltPage() {
        var b = RingPageBuilder(timestamp: 1_000_000)
        b.event(delta: 10, payload: [1, 2, 3, 4])                      // type_len 1
        b.timeExtend(200_000_000)                                     // > 2^27
        b.event(delta: 0, payload: [UInt8](repeating: 5, count: 40))  // type_len 10
        b.discarded(bytes: 44)                                        // delta not applied
        b.event(delta: 3, payload: [UInt8](repeating: 6, count: 200)) // type_len 0 form
        b.absolute(0x7_0000_0001)                                     // absolute stamp
        b.event(delta: 5, payload: [7, 7, 7, 7], forceLengthWord: true)
        let (events, stats) = decodePage(b.page())
        #expect(events.map(\.0) == [1_000_010, 201_000_010, 201_000_013, 0x7_0000_0006])
        #expect(events.map { $0.1.count } == [4, 40, 200, 4])
        #expect(events[2].1.allSatisfy { $0 == 6 })
        #expect(stats.events == 4)
        #expect(stats.timeExtends == 1)
        #expect(stats.absoluteStamps == 1)
        #expect(stats.paddings == 1)
        #expect(stats.corruptPages == 0)
    }

    @Test func nullPaddingEndsThePage() {
        var b = RingPageBuilder(timestamp: 5)
        b.event(delta: 1, payload: [1, 1, 1, 1])
        b.header(type: 29, delta: 0)                                  // rest of page unused
        b.u32(0)
        b.event(delta: 1, payload: [2, 2, 2, 2])                      // never reached
        let (events, _) = decodePage(b.page())
        #expect(events.map(\.0) == [6])
    }

    @Test func lostEventsFlagsAndStoredCount() {
        var b = RingPageBuilder(timestamp: 0)
        b.event(delta: 1, payload: [1, 2, 3, 4])
        b.flags = 1 << 31 | 1 << 30
        withUnsafeBytes(of: UInt64(4242).littleEndian) { b.trailer = Array($0) }
        let (events, stats) = decodePage(b.page())
        #expect(events.count == 1)
        #expect(stats.pagesAfterLoss == 1)
        #expect(stats.lostEvents == 4242)

        var c = RingPageBuilder(timestamp: 0)
        c.event(delta: 1, payload: [1, 2, 3, 4])
        c.flags = 1 << 31                                             // lost, count not stored
        let (_, s2) = decodePage(c.page())
        #expect(s2.pagesAfterLoss == 1)
        #expect(s2.lostEvents == 0)
    }

    @Test func corruptPagesAreAbandonedNotOverread() {
        // commit larger than the page.
        var b = RingPageBuilder(timestamp: 0)
        b.event(delta: 1, payload: [1, 2, 3, 4])
        var page = b.page()
        page[8] = 0xFF; page[9] = 0x7F
        #expect(decodePage(page).stats.corruptPages == 1)
        #expect(decodePage(page).events.isEmpty)
        // A type_len 0 event claiming more bytes than the page has.
        var c = RingPageBuilder(timestamp: 0)
        c.event(delta: 1, payload: [1, 2, 3, 4])
        c.header(type: 0, delta: 1)
        c.u32(5000)
        let r = decodePage(c.page())
        #expect(r.events.count == 1)
        #expect(r.stats.corruptPages == 1)
        // A page shorter than its header, and an empty read.
        #expect(decodePage([1, 2, 3]).stats.corruptPages == 1)
        #expect(decodePage([]).stats.corruptPages == 0)
        // Random bytes never crash and never yield more data than the page holds.
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<300 {
            var junk = (0..<4096).map { _ in UInt8.random(in: 0...255, using: &rng) }
            junk[8] = UInt8.random(in: 0...255, using: &rng); junk[9] = UInt8.random(in: 0...15, using: &rng)
            for k in 10..<16 { junk[k] = 0 }
            let (events, _) = decodePage(junk)
            #expect(events.reduce(0) { $0 + $1.1.count } <= 4080)
        }
    }

    @Test func thirtyTwoBitLayout() throws {
        let header = """
        \tfield: u64 timestamp;\toffset:0;\tsize:8;\tsigned:0;
        \tfield: local_t commit;\toffset:8;\tsize:4;\tsigned:1;
        \tfield: int overwrite;\toffset:8;\tsize:1;\tsigned:1;
        \tfield: char data;\toffset:12;\tsize:4084;\tsigned:0;
        """
        let l = try RingBufferLayout.parse(headerPage: header, headerEvent: nil)
        #expect(l.dataOffset == 12 && l.commitSize == 4 && l.pageSize == 4096)
        var b = RingPageBuilder(timestamp: 100, layout: l)
        b.event(delta: 2, payload: [9, 9, 9, 9, 9, 9, 9, 9])
        b.flags = 1 << 31 | 1 << 30
        withUnsafeBytes(of: UInt32(17).littleEndian) { b.trailer = Array($0) }
        let (events, stats) = decodePage(b.page(), layout: l)
        #expect(events.map(\.0) == [102])
        #expect(stats.lostEvents == 17)
    }

    @Test func absoluteStampKeepsUpperBits() {
        #expect(RingBufferPageDecoder.fixAbsolute(5, current: 0) == 5)
        let high: UInt64 = 0xF8 << 56
        #expect(RingBufferPageDecoder.fixAbsolute(5, current: high | 3) == high | 5)
    }
}
