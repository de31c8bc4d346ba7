import Foundation
import NIOCore
import NIOEmbedded
import Testing
import KVMScope
import KVMScopeTestSupport
@testable import KVMScopeDrops
@testable import KVMScopeFaults
@testable import KVMScopeTrace
@testable import KVMScopeQMP
@testable import KVMScopeNBD

/// Inputs the libFuzzer targets of fuzz/ (bench/fuzz) found, each fixed at its root.
@Suite struct FuzzRegressionTests {
    func be<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.bigEndian) { Array($0) } }

    func nbdChannel(image: String) throws -> EmbeddedChannel {
        let backend = FaultInjectingBackend(image: try RawImageFile(path: image), rules: nil)
        let ch = EmbeddedChannel()
        try ch.pipeline.syncOperations.configureNBDServerPipeline(
            configuration: NBDServerConfiguration(export: NBDExport(name: "disk", backend: backend)))
        try ch.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return ch
    }

    func outbound(_ ch: EmbeddedChannel) -> [UInt8] {
        var all: [UInt8] = []
        while var b = try? ch.readOutbound(as: ByteBuffer.self) { all += b.readBytes(length: b.readableBytes) ?? [] }
        return all
    }

    /// fuzz-nbd-handshake: a client rejected for unknown client flags sent, in the same
    /// packet, valid flags, NBD_OPT_EXPORT_NAME and a WRITE. The server had closed the
    /// connection, yet kept decoding the rest of the buffer: it negotiated the export and wrote
    /// the client's data to the disk. Once the server drops a client nothing it sent may run.
    @Test func rejectedClientCannotWriteWithTheRestOfItsPacket() throws {
        let dir = TempDir()
        let img = dir.image("d.img", size: 1 << 20)
        let ch = try nbdChannel(image: img)
        let greeting = outbound(ch)
        #expect(greeting.count == 18)
        let payload = [UInt8](repeating: 0xAB, count: 512)
        let packet = be(UInt32(0x00FF_FFFF))                                           // unknown flags: rejected
            + be(UInt32(NBD.ClientFlag.fixedNewstyle | NBD.ClientFlag.noZeroes))
            + be(NBD.optionMagic) + be(NBD.Option.exportName.rawValue) + be(UInt32(4)) + Array("disk".utf8)
            + be(NBD.requestMagic) + be(UInt16(0)) + be(NBD.Command.write.rawValue) + be(UInt64(1)) + be(UInt64(0)) + be(UInt32(512))
            + payload
        _ = try? ch.writeInbound(ByteBuffer(bytes: packet))
        ch.pipeline.fireChannelReadComplete()
        ch.embeddedEventLoop.run()
        #expect(outbound(ch).isEmpty, "nothing may be answered after the client was rejected")
        #expect(!ch.isActive)
        let data = try #require(FileManager.default.contents(atPath: img))
        #expect(data.prefix(512).allSatisfy { $0 == 0 }, "the rejected client's WRITE reached the disk")
        _ = try? ch.finish()
    }

    /// The same after NBD_OPT_ABORT: the server acknowledges and closes; options after the
    /// abort in the same packet must not be answered.
    @Test func nothingIsAnsweredAfterAbort() throws {
        let dir = TempDir()
        let ch = try nbdChannel(image: dir.image("d.img", size: 1 << 20))
        _ = outbound(ch)
        let packet = be(UInt32(NBD.ClientFlag.fixedNewstyle | NBD.ClientFlag.noZeroes))
            + be(NBD.optionMagic) + be(NBD.Option.abort.rawValue) + be(UInt32(0))
            + be(NBD.optionMagic) + be(NBD.Option.list.rawValue) + be(UInt32(0))
        _ = try? ch.writeInbound(ByteBuffer(bytes: packet))
        ch.pipeline.fireChannelReadComplete()
        ch.embeddedEventLoop.run()
        let out = outbound(ch)
        // Exactly the ACK of the abort: magic, option 2, type ACK, length 0.
        #expect(out == be(NBD.optionReplyMagic) + be(NBD.Option.abort.rawValue) + be(NBD.Reply.ack) + be(UInt32(0)))
        _ = try? ch.finish()
    }

    /// fuzz-netdm: an NLMSG_ERROR whose error field is Int32.min trapped negating it (any
    /// process that can send to the socket, or a corrupt datagram, stopped `kvmscope drops`).
    @Test func netlinkErrorOfInt32MinIsAProtocolError() {
        var payload: [UInt8] = []
        Netlink.append(&payload, Int32.min)
        payload += [UInt8](repeating: 0, count: 16)
        let message = Netlink.Message(type: Netlink.msgError, flags: 0, sequence: 1, portID: 0, payload: payload)
        #expect(Netlink.errorCode(message) == EPROTO)
        var datagram: [UInt8] = []
        Netlink.append(&datagram, UInt32(Netlink.headerSize + payload.count))
        Netlink.append(&datagram, Netlink.msgError)
        Netlink.append(&datagram, UInt16(0))
        Netlink.append(&datagram, UInt32(1))
        Netlink.append(&datagram, UInt32(0))
        datagram += payload
        #expect(GenericNetlinkController.parseAnswer(datagram) == .error(EPROTO))
        // A positive value is no errno either.
        var positive: [UInt8] = []
        Netlink.append(&positive, Int32(5))
        #expect(Netlink.errorCode(Netlink.Message(type: Netlink.msgError, flags: 0, sequence: 1, portID: 0, payload: positive)) == EPROTO)
    }

    /// fuzz-drops-text: with `--interval 1`, a drop stamped 4e14 s after the previous one made
    /// the reader close every empty interval in between, one by one (a hang), and at 1e17 s,
    /// where adding 1 s to a Double changes nothing, the loop never ended.
    @Test(.timeLimit(.minutes(1))) func dropIntervalsJumpOverGaps() throws {
        let line = { (t: String) in
            "            bash  4044 [001]  \(t): skb:kfree_skb: skbaddr=0xffff88816333f300 rx_sk=(nil) protocol=2048 location=__udp4_lib_rcv+0x4bc reason: NO_SOCKET\n"
        }
        let text = line("1360.824430") + line("404418446744073.709551") + line("100000000000000000.000000")
        var analysis = DropFileAnalysis()
        analysis.interval = 1
        var intervals: [Int] = []
        let result = try analysis.run(MemoryByteSource(text)) { intervals.append($0.total) }
        #expect(intervals == [1, 1, 1])
        #expect(result.summary.tally.total == 3)
    }

    /// fuzz-blkdebug: the "did you mean" of an unknown key picked, among keys at the same edit
    /// distance, whichever a Set listed first, and a Set's order changes between instances: the
    /// same file got different hints from one check to the next. 'ate' is two edits from both
    /// 'state' (this section's key) and 'after' (a kvmscope [inject-error] key).
    @Test func unknownKeyHintIsTheSameEveryTime() {
        let text = "[set-state]\nevent = \"read_aio\"\nstate = \"1\"\nnew_state = \"2\"\nate = \"2\"\n"
        var hints = Set<String>()
        // The order follows where the Set's storage lands: keep sets of the same size alive
        // between checks so that each check's sets are allocated somewhere else.
        var keep: [Set<String>] = []
        for i in 0..<64 {
            let r = BlkdebugConfigReader().parse(text)
            for d in r.diagnostics where d.code == "unknown-key" { hints.insert(d.hint ?? "-") }
            keep.append(Set((0..<(8 + i % 8)).map { "k\($0)" }))
        }
        #expect(keep.count == 64)
        #expect(hints == ["did you mean 'state'?"])
    }

    /// fuzz-simpletrace (same input, different report): a device reset finalised the
    /// requests it discarded in a Dictionary's order, which differs from one Dictionary
    /// instance to the next, so `kvmscope trace` listed the same trace's failures (and their
    /// groups) in a different order from run to run. They now go in the order they were popped.
    @Test func failuresDiscardedByAResetAreInPopOrder() throws {
        var t = SyntheticTrace()
        let elems = (0..<12).map { "0x\(String(0x5000 + $0 * 0x800, radix: 16))" }
        for (i, elem) in elems.enumerated() {
            t.at(10, "virtqueue_pop vq 0x7f00 elem \(elem) in_num 1 out_num 2")
            t.at(10, "virtio_blk_handle_\(i % 2 == 0 ? "write" : "read") vdev 0xd000 req \(elem) sector \(i * 8) nsectors 8")
            t.at(10, "virtio_blk_rw_complete vdev 0xd000 req \(elem) ret -28")
        }
        t.at(10, "virtio_set_status vdev 0xd000 val 0")
        var orders = Set<[String]>()
        var keep: [[UInt64: Int]] = []
        for i in 0..<16 {
            let r = try t.report()
            #expect(r.failures.map(\.request) == elems)
            orders.insert(r.failureGroups.map { "\($0.operation.rawValue) \($0.cause.rawValue)" })
            keep.append(Dictionary(uniqueKeysWithValues: (0..<(12 + i)).map { (UInt64($0), $0) }))   // move the next tables elsewhere
        }
        #expect(orders == [["write backend-error", "read backend-error"]])
        #expect(keep.count == 16)
    }

    /// fuzz-qmp-virsh: a `virsh qemu-monitor-event --timestamp` line whose seconds carry a long
    /// run of digits went to Foundation's DateFormatter, and ICU died of SIGFPE inside it.
    @Test func virshTimestampWithALongFractionIsSkipped() throws {
        let text = "2026-11-22 16:05:54.55999999999999999999999999999999999999999999999999999999999999999999999999997+0000: event BLOCK_IO_ERROR for domain 'vm1': <null>\n"
            + "2026-11-22 16:05:54.557+0000: event RESUME for domain 'vm1': <null>\n"
            + "2026-11-22 16:05:54.557-0130: event STOP for domain 'vm1': <null>\n"
            + "2026-02-30 16:05:54.557+0000: event STOP for domain 'vm1': <null>\n"
        let (events, skipped) = try QMPEventReader.readAll(MemoryByteSource(text))
        #expect(events.map(\.name) == ["RESUME", "STOP"])
        #expect(events.first?.time == 1_795_363_554.557)
        #expect(events.last?.time == 1_795_363_554.557 + 5400)
        #expect(skipped == 2)
    }
}
