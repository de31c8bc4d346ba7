import Foundation
import NIOCore
import NIOEmbedded
import Testing
import KVMScopeTestSupport
@testable import KVMScopeFaults
@testable import KVMScopeNBD

/// NBD_OPT_EXTENDED_HEADERS on the server's own pipeline (EmbeddedChannel), byte by byte as
/// proto.md's extension-ext-header lays them out: the option's answers, 32-byte requests with
/// 64-bit lengths, and every reply an extended chunk echoing the request's offset. The real
/// QEMU 10 client against `kvmscope nbd serve` is in NBDExtendedHeadersPeerTests.
@Suite struct NBDExtendedHeadersTests {
    static let gib: UInt64 = 1 << 30

    func be<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.bigEndian) { Array($0) } }
    func option(_ code: UInt32, _ data: [UInt8] = []) -> [UInt8] { be(NBD.optionMagic) + be(code) + be(UInt32(data.count)) + data }
    func go(_ name: String = "disk") -> [UInt8] { option(NBD.Option.go.rawValue, be(UInt32(name.utf8.count)) + Array(name.utf8) + be(UInt16(0))) }
    func setAllocation(_ name: String = "disk") -> [UInt8] {
        let ctx = Array(NBD.MetaContext.allocation.utf8)
        return option(NBD.Option.setMetaContext.rawValue,
                      be(UInt32(name.utf8.count)) + Array(name.utf8) + be(UInt32(1)) + be(UInt32(ctx.count)) + ctx)
    }
    func request(_ type: NBD.Command, flags: UInt16 = 0, cookie: UInt64, offset: UInt64 = 0, length: UInt64, payload: [UInt8] = []) -> [UInt8] {
        be(NBD.extendedRequestMagic) + be(flags) + be(type.rawValue) + be(cookie) + be(offset) + be(length) + payload
    }

    /// A sparse 8 GiB image, so that 64-bit effect lengths mean something.
    func channel(_ dir: TempDir, size: Int64 = 8 << 30) throws -> EmbeddedChannel {
        let img = dir.path + "/d\(UUID().uuidString).img"
        let fd = open(img, O_CREAT | O_RDWR, 0o644)
        #expect(fd >= 0 && ftruncate(fd, off_t(size)) == 0)
        close(fd)
        let backend = FaultInjectingBackend(image: try RawImageFile(path: img), rules: nil)
        let ch = EmbeddedChannel()
        try ch.pipeline.syncOperations.configureNBDServerPipeline(
            configuration: NBDServerConfiguration(export: NBDExport(name: "disk", backend: backend)))
        try ch.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        _ = try outbound(ch)   // greeting
        return ch
    }

    func send(_ ch: EmbeddedChannel, _ bytes: [UInt8]) throws -> [UInt8] {
        do { try ch.writeInbound(ByteBuffer(bytes: bytes)) } catch {
            // A protocol violation is rethrown by the embedded channel after errorCaught closed it.
        }
        ch.pipeline.fireChannelReadComplete()
        ch.embeddedEventLoop.run()
        return try outbound(ch)
    }

    func outbound(_ ch: EmbeddedChannel) throws -> [UInt8] { try NBDTestWire.outbound(ch) }

    typealias OptionReply = NBDTestWire.OptionReply
    func optionReplies(_ b: [UInt8]) -> [OptionReply] { NBDTestWire.optionReplies(b) }

    struct Chunk: Equatable { var flags: UInt16; var type: UInt16; var cookie: UInt64; var offset: UInt64; var payload: [UInt8] }
    /// Extended reply chunks; nil when anything else is on the wire (a simple or structured reply).
    func chunks(_ b: [UInt8]) -> [Chunk]? {
        var out: [Chunk] = [], i = 0
        while i < b.count {
            guard i + 32 <= b.count, u32(b, i) == NBD.extendedReplyMagic else { return nil }
            let n = Int(u64(b, i + 24))
            guard i + 32 + n <= b.count else { return nil }
            out.append(Chunk(flags: u16(b, i + 4), type: u16(b, i + 6), cookie: u64(b, i + 8), offset: u64(b, i + 16),
                             payload: Array(b[(i + 32)..<(i + 32 + n)])))
            i += 32 + n
        }
        return out
    }

    func u16(_ b: [UInt8], _ i: Int) -> UInt16 { b[i..<(i + 2)].reduce(0) { $0 << 8 | UInt16($1) } }
    func u32(_ b: [UInt8], _ i: Int) -> UInt32 { b[i..<(i + 4)].reduce(0) { $0 << 8 | UInt32($1) } }
    func u64(_ b: [UInt8], _ i: Int) -> UInt64 { b[i..<(i + 8)].reduce(0) { $0 << 8 | UInt64($1) } }

    /// Client flags, extended headers, base:allocation, GO: the transmission phase in extended mode.
    func negotiated(_ dir: TempDir) throws -> EmbeddedChannel {
        let ch = try channel(dir)
        let replies = optionReplies(try send(ch, be(UInt32(3)) + option(NBD.Option.extendedHeaders.rawValue) + setAllocation() + go()))
        #expect(replies.first == OptionReply(option: NBD.Option.extendedHeaders.rawValue, type: NBD.Reply.ack, data: []))
        #expect(replies.contains { $0.type == NBD.MetaContext.reply })
        #expect(replies.last?.option == NBD.Option.go.rawValue && replies.last?.type == NBD.Reply.ack)
        // NBD_INFO_EXPORT: size, then transmission flags with DF (chunks are in use).
        if let export = replies.first(where: { $0.type == NBD.Reply.info && $0.data.count == 12 }) {
            #expect(u64(export.data, 2) == 8 * Self.gib)
            #expect(u16(export.data, 10) & NBD.TransmissionFlag.sendDF != 0)
        } else {
            Issue.record("no NBD_INFO_EXPORT in \(replies)")
        }
        return ch
    }

    @Test func theOptionIsAcknowledgedOnceAndSupersedesStructuredReplies() throws {
        let dir = TempDir()
        let ch = try channel(dir)
        let eh = NBD.Option.extendedHeaders.rawValue, sr = NBD.Option.structuredReply.rawValue
        let replies = optionReplies(try send(ch, be(UInt32(3)) + option(sr) + option(eh, [0]) + option(eh) + option(eh) + option(sr)))
        #expect(replies.map(\.option) == [sr, eh, eh, eh, sr])
        // Structured replies first is allowed; data with the option is invalid; a second request
        // is invalid; structured replies after extended headers get EXT_HEADER_REQD (QEMU's order).
        #expect(replies.map(\.type) == [NBD.Reply.ack, NBD.Reply.errInvalid, NBD.Reply.ack, NBD.Reply.errInvalid, NBD.Reply.errExtHeaderReqd])
        #expect(ch.isActive)
    }

    @Test func exportNameAfterExtendedHeadersClosesTheConnection() throws {
        let dir = TempDir()
        let ch = try channel(dir)
        let out = try send(ch, be(UInt32(3)) + option(NBD.Option.extendedHeaders.rawValue) + option(NBD.Option.exportName.rawValue, Array("disk".utf8)))
        #expect(optionReplies(out).map(\.type) == [NBD.Reply.ack])   // and no export-name reply
        #expect(!ch.isActive)
    }

    @Test func requestsAndRepliesUse32ByteHeadersWith64BitLengths() throws {
        let dir = TempDir()
        let ch = try negotiated(dir)
        let at = 5 * Self.gib
        let data = (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 1) }

        // WRITE with NBD_CMD_FLAG_PAYLOAD_LEN: a NONE chunk echoing cookie and offset.
        let w = chunks(try send(ch, request(.write, flags: NBD.CommandFlag.payloadLength, cookie: 11, offset: at, length: 4096, payload: data)))
        #expect(w == [Chunk(flags: NBD.replyFlagDone, type: NBD.ReplyType.none, cookie: 11, offset: at, payload: [])])

        // READ: one OFFSET_DATA chunk, its 64-bit length covering the offset field and the data.
        let r = chunks(try send(ch, request(.read, cookie: 12, offset: at, length: 4096)))
        #expect(r?.count == 1 && r?[0].type == NBD.ReplyType.offsetData && r?[0].offset == at && r?[0].cookie == 12)
        #expect(r.map { u64($0[0].payload, 0) } == at)
        #expect(r.map { Array($0[0].payload.dropFirst(8)) } == data)

        // BLOCK_STATUS over all 8 GiB in one request: an effect length no compact header can
        // carry, answered with BLOCK_STATUS_EXT (id, count, then 64-bit length/status pairs).
        let s = chunks(try send(ch, request(.blockStatus, cookie: 13, offset: 0, length: 8 * Self.gib)))
        guard let bs = s?.first, s?.count == 1 else { Issue.record("block status reply: \(String(describing: s))"); return }
        #expect(bs.type == NBD.replyTypeBlockStatusExtended && bs.cookie == 13 && bs.offset == 0)
        #expect(u32(bs.payload, 0) == NBD.MetaContext.allocationID)
        let count = Int(u32(bs.payload, 4))
        #expect(bs.payload.count == 8 + 16 * count)
        let descriptors = (0..<count).map { (length: u64(bs.payload, 8 + 16 * $0), status: u64(bs.payload, 16 + 16 * $0)) }
        #expect(descriptors.reduce(0) { $0 + $1.length } == 8 * Self.gib)
        #expect(descriptors[0].length >= 4 * Self.gib && descriptors[0].status == 3)   // the hole before the data: > 32 bits
        var start: UInt64 = 0
        for d in descriptors {
            if start <= at && at < start + d.length { #expect(d.status == 0) }   // the written block is data
            #expect(d.status >> 32 == 0)
            start += d.length
        }

        // TRIM of 6 GiB in one request, then the block reads as zeroes.
        let t = chunks(try send(ch, request(.trim, cookie: 14, offset: 0, length: 6 * Self.gib)))
        #expect(t == [Chunk(flags: NBD.replyFlagDone, type: NBD.ReplyType.none, cookie: 14, offset: 0, payload: [])])
        let z = chunks(try send(ch, request(.read, cookie: 15, offset: at, length: 4096)))
        #expect(z.map { Array($0[0].payload.dropFirst(8)) } == [UInt8](repeating: 0, count: 4096))
        #expect(ch.isActive)
    }

    @Test func errorsAreExtendedChunksAndAnUnwantedPayloadIsConsumed() throws {
        let dir = TempDir()
        let ch = try negotiated(dir)
        // FLUSH with a 16-byte payload: EINVAL (no payload form), the payload read past, and the
        // next request is framed right.
        let out = chunks(try send(ch, request(.flush, flags: NBD.CommandFlag.payloadLength, cookie: 21, length: 16,
                                              payload: [UInt8](repeating: 0xEE, count: 16))
                                      + request(.read, cookie: 22, offset: 512, length: 512)))
        #expect(out?.map(\.cookie) == [21, 22])
        #expect(out?.first?.type == NBD.ReplyType.error)
        #expect(out.map { u32($0[0].payload, 0) } == NBD.WireError.einval.rawValue)
        #expect(out.map { Int(u16($0[0].payload, 4)) == $0[0].payload.count - 6 } == true)   // message length
        #expect(out?.last?.type == NBD.ReplyType.offsetData)
        // A READ longer than the maximum payload: EINVAL, the connection stays.
        let big = chunks(try send(ch, request(.read, cookie: 23, length: 64 << 20)))
        #expect(big?.map(\.type) == [NBD.ReplyType.error] && big?.first?.offset == 0)
        // Past the end of the 8 GiB export with a 64-bit length: EINVAL, not a wrapped range.
        let past = chunks(try send(ch, request(.trim, cookie: 24, offset: Self.gib, length: UInt64.max - 1)))
        #expect(past?.map(\.type) == [NBD.ReplyType.error])
        #expect(ch.isActive)
    }

    @Test func aCompactRequestAfterExtendedHeadersClosesTheConnection() throws {
        let dir = TempDir()
        let ch = try negotiated(dir)
        let compact = be(NBD.requestMagic) + be(UInt16(0)) + be(UInt16(0)) + be(UInt64(1)) + be(UInt64(0)) + be(UInt32(512))
        let out = try send(ch, compact)
        #expect(out.isEmpty)
        #expect(!ch.isActive)
    }

    @Test func aPayloadOverTheMaximumClosesAtOnceWithoutWaitingForIt() throws {
        let dir = TempDir()
        let ch = try negotiated(dir)
        // 1 TiB announced: nothing of it is read or buffered, the header alone ends the connection.
        let out = try send(ch, request(.write, flags: NBD.CommandFlag.payloadLength, cookie: 31, length: 1 << 40))
        #expect(out.isEmpty)
        #expect(!ch.isActive)
    }

    @Test func aWriteWithoutThePayloadFlagStillCarriesItsPayloadAsInQEMU() throws {
        let dir = TempDir()
        let ch = try negotiated(dir)
        let out = chunks(try send(ch, request(.write, cookie: 41, offset: 0, length: 4, payload: [1, 2, 3, 4])
                                      + request(.read, cookie: 42, offset: 0, length: 4)))
        #expect(out?.map(\.cookie) == [41, 42])
        #expect(out?.first?.type == NBD.ReplyType.none)
        #expect(out.map { Array($0[1].payload.dropFirst(8)) } == [1, 2, 3, 4])
    }
}
