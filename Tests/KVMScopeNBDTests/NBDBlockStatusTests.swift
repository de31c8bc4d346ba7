import Foundation
import NIOCore
import NIOEmbedded
import Testing
import KVMScopeTestSupport
import KVMScopeCore
@testable import KVMScopeFaults
@testable import KVMScopeNBD

/// A sparse image: `size` bytes of hole (ftruncate), with `data` written at each (offset, bytes).
func sparseImage(_ dir: TempDir, _ name: String = "sparse.img", size: Int64, data: [(Int64, Int)] = [], byte: UInt8 = 0x5a) -> String {
    let path = dir.path + "/" + name
    let fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0o644)
    precondition(fd >= 0 && ftruncate(fd, off_t(size)) == 0)
    for (offset, bytes) in data {
        let buffer = [UInt8](repeating: byte, count: bytes)
        precondition(pwrite(fd, buffer, bytes, off_t(offset)) == bytes)
    }
    close(fd)
    return path
}

/// NBD_OPT_LIST/SET_META_CONTEXT and NBD_CMD_BLOCK_STATUS on the server's pipeline
/// (EmbeddedChannel): the negotiation rules of proto.md, the reply's shape, hostile requests.
@Suite struct NBDBlockStatusTests {
    func be<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.bigEndian) { Array($0) } }
    func int<T: FixedWidthInteger>(_ b: ArraySlice<UInt8>, as: T.Type) -> T { b.reduce(T(0)) { $0 << 8 | T($1) } }

    func option(_ code: UInt32, _ data: [UInt8] = []) -> [UInt8] {
        be(NBD.optionMagic) + be(code) + be(UInt32(data.count)) + data
    }
    func metaContext(_ code: UInt32, export: String = "disk", _ queries: [String]) -> [UInt8] {
        var d = be(UInt32(export.utf8.count)) + Array(export.utf8) + be(UInt32(queries.count))
        for q in queries { d += be(UInt32(q.utf8.count)) + Array(q.utf8) }
        return option(code, d)
    }
    func go(_ export: String = "disk") -> [UInt8] {
        option(7, be(UInt32(export.utf8.count)) + Array(export.utf8) + be(UInt16(0)))
    }
    func blockStatus(cookie: UInt64, offset: UInt64, length: UInt32, flags: UInt16 = 0) -> [UInt8] {
        be(NBD.requestMagic) + be(flags) + be(NBD.Command.blockStatus.rawValue) + be(cookie) + be(offset) + be(length)
    }

    func channel(image: String, rules: String? = nil) throws -> EmbeddedChannel {
        let config = rules.map { BlkdebugConfigReader().parse($0, file: "r.cfg").config }
        let backend = FaultInjectingBackend(image: try RawImageFile(path: image), rules: config)
        let ch = EmbeddedChannel()
        try ch.pipeline.syncOperations.configureNBDServerPipeline(
            configuration: NBDServerConfiguration(export: NBDExport(name: "disk", backend: backend)))
        try ch.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        _ = try outbound(ch)   // greeting
        try ch.writeInbound(ByteBuffer(bytes: be(UInt32(3))))
        return ch
    }

    func send(_ ch: EmbeddedChannel, _ bytes: [UInt8]) throws -> [UInt8] {
        try ch.writeInbound(ByteBuffer(bytes: bytes))
        ch.embeddedEventLoop.run()
        ch.pipeline.fireChannelReadComplete()
        return try outbound(ch)
    }

    func outbound(_ ch: EmbeddedChannel) throws -> [UInt8] { try NBDTestWire.outbound(ch) }

    typealias OptionReply = NBDTestWire.OptionReply
    func optionReplies(_ bytes: [UInt8]) -> [OptionReply] { NBDTestWire.optionReplies(bytes) }
    func contextReply(_ option: UInt32, id: UInt32) -> OptionReply {
        OptionReply(option: option, type: 4, data: be(id) + Array("base:allocation".utf8))
    }
    let ack = { (o: UInt32) in OptionReply(option: o, type: 1, data: []) }

    /// A structured chunk: flags, type, cookie, payload.
    struct Chunk { var flags: UInt16; var type: UInt16; var cookie: UInt64; var payload: [UInt8] }
    func chunks(_ bytes: [UInt8]) -> [Chunk] {
        var out: [Chunk] = [], i = 0
        while i + 20 <= bytes.count, int(bytes[i..<(i + 4)], as: UInt32.self) == NBD.structuredReplyMagic {
            let len = Int(int(bytes[(i + 16)..<(i + 20)], as: UInt32.self))
            out.append(Chunk(flags: int(bytes[(i + 4)..<(i + 6)], as: UInt16.self), type: int(bytes[(i + 6)..<(i + 8)], as: UInt16.self),
                             cookie: int(bytes[(i + 8)..<(i + 16)], as: UInt64.self), payload: Array(bytes[(i + 20)..<min(bytes.count, i + 20 + len)])))
            i += 20 + len
        }
        return out
    }
    /// The descriptors of the first chunk of `bytes` (none when it is not a BLOCK_STATUS chunk).
    func firstDescriptors(_ bytes: [UInt8]) -> [NBDBlockDescriptor] {
        guard let c = chunks(bytes).first, c.type == 5, c.payload.count >= 4 else { return [] }
        return descriptors(c).1
    }
    /// (context id, [(length, flags)]) of a BLOCK_STATUS chunk.
    func descriptors(_ c: Chunk) -> (UInt32, [NBDBlockDescriptor]) {
        let id = int(c.payload[0..<4], as: UInt32.self)
        let d = stride(from: 4, to: c.payload.count, by: 8).map {
            NBDBlockDescriptor(length: UInt64(int(c.payload[$0..<($0 + 4)], as: UInt32.self)), flags: int(c.payload[($0 + 4)..<($0 + 8)], as: UInt32.self))
        }
        return (id, d)
    }
    /// The error value of a structured ERROR chunk or a simple reply.
    func errorValue(_ bytes: [UInt8]) -> UInt32? {
        guard bytes.count >= 16 else { return nil }
        let magic = int(bytes[0..<4], as: UInt32.self)
        if magic == NBD.simpleReplyMagic { return int(bytes[4..<8], as: UInt32.self) }
        guard let c = chunks(bytes).first, c.type & 0x8000 != 0, c.payload.count >= 4 else { return nil }
        return int(c.payload[0..<4], as: UInt32.self)
    }

    /// Structured replies, base:allocation, GO: a connection that may ask for block status.
    func negotiated(_ image: String, rules: String? = nil) throws -> EmbeddedChannel {
        let ch = try channel(image: image, rules: rules)
        _ = try send(ch, option(8))
        let set = optionReplies(try send(ch, metaContext(10, ["base:allocation"])))
        #expect(set == [contextReply(10, id: NBD.MetaContext.allocationID), ack(10)])
        _ = try send(ch, go())
        return ch
    }

    // MARK: - negotiation

    @Test func listAndSetFollowTheSpecRules() throws {
        let dir = TempDir()
        let ch = try channel(image: sparseImage(dir, size: 1 << 20))
        // Before structured replies: both refused with NBD_REP_ERR_INVALID.
        #expect(optionReplies(try send(ch, metaContext(9, []))).map(\.type) == [NBD.Reply.errInvalid])
        #expect(optionReplies(try send(ch, metaContext(10, ["base:allocation"]))).map(\.type) == [NBD.Reply.errInvalid])
        _ = try send(ch, option(8))
        // LIST: no query lists everything, "base:" is the wildcard, ids are 0 there.
        #expect(optionReplies(try send(ch, metaContext(9, []))) == [contextReply(9, id: 0), ack(9)])
        #expect(optionReplies(try send(ch, metaContext(9, ["base:"]))) == [contextReply(9, id: 0), ack(9)])
        #expect(optionReplies(try send(ch, metaContext(9, ["qemu:dirty-bitmap:b", "base:allocation"]))) == [contextReply(9, id: 0), ack(9)])
        #expect(optionReplies(try send(ch, metaContext(9, ["x-other:"]))) == [ack(9)])
        // SET: "base:" selects nothing, unknown names are ignored, the full name selects once.
        #expect(optionReplies(try send(ch, metaContext(10, ["base:"]))) == [ack(10)])
        #expect(optionReplies(try send(ch, metaContext(10, ["base:allocation", "base:nothing", "base:allocation"])))
                == [contextReply(10, id: 1), ack(10)])
        // An unknown export, and malformed data: a query length past the end, bytes left over.
        #expect(optionReplies(try send(ch, metaContext(10, export: "other", ["base:allocation"]))).map(\.type) == [NBD.Reply.errUnknown])
        let cut = be(UInt32(4)) + Array("disk".utf8) + be(UInt32(1)) + be(UInt32(100)) + Array("base:allocation".utf8)
        #expect(optionReplies(try send(ch, option(10, cut))).map(\.type) == [NBD.Reply.errInvalid])
        let extra = be(UInt32(4)) + Array("disk".utf8) + be(UInt32(0)) + [0]
        #expect(optionReplies(try send(ch, option(9, extra))).map(\.type) == [NBD.Reply.errInvalid])
        let huge = be(UInt32(4)) + Array("disk".utf8) + be(UInt32.max)
        #expect(optionReplies(try send(ch, option(10, huge))).map(\.type) == [NBD.Reply.errInvalid])
    }

    @Test func aFailedOrEmptySetClearsTheSelection() throws {
        let dir = TempDir()
        let image = sparseImage(dir, size: 1 << 20)
        // SET base:allocation, then a SET for an unknown export: the selection is gone.
        for second in [metaContext(10, export: "other", ["base:allocation"]), metaContext(10, []), metaContext(10, ["base:nothing"])] {
            let ch = try channel(image: image)
            _ = try send(ch, option(8))
            _ = try send(ch, metaContext(10, ["base:allocation"]))
            _ = try send(ch, second)
            _ = try send(ch, go())
            #expect(errorValue(try send(ch, blockStatus(cookie: 1, offset: 0, length: 4096))) == 22)
        }
    }

    // MARK: - replies

    @Test func holesAndDataOfASparseImage() throws {
        let dir = TempDir()
        let image = sparseImage(dir, size: 4 << 20, data: [(1 << 20, 65536), (3 << 20, 4096)])
        let ch = try negotiated(image)
        let c = chunks(try send(ch, blockStatus(cookie: 42, offset: 0, length: 4 << 20)))
        try #require(c.count == 1 && c[0].type == 5 && c[0].payload.count >= 4)
        #expect(c[0].flags == NBD.replyFlagDone && c[0].type == 5 && c[0].cookie == 42)
        let (id, d) = descriptors(c[0])
        #expect(id == NBD.MetaContext.allocationID)
        #expect(d == [NBDBlockDescriptor(length: 1 << 20, flags: 3), NBDBlockDescriptor(length: 65536, flags: 0),
                      NBDBlockDescriptor(length: (2 << 20) - 65536, flags: 3), NBDBlockDescriptor(length: 4096, flags: 0),
                      NBDBlockDescriptor(length: (1 << 20) - 4096, flags: 3)])
        // REQ_ONE: one descriptor, never longer than asked; a query from inside a data run.
        let one = firstDescriptors(try send(ch, blockStatus(cookie: 43, offset: 0, length: 4 << 20, flags: NBD.CommandFlag.reqOne)))
        #expect(one == [NBDBlockDescriptor(length: 1 << 20, flags: 3)])
        let inside = firstDescriptors(try send(ch, blockStatus(cookie: 44, offset: (1 << 20) + 4096, length: 8192, flags: NBD.CommandFlag.reqOne)))
        #expect(inside == [NBDBlockDescriptor(length: 8192, flags: 0)])
        // Unaligned, crossing a boundary: lengths add up to the request exactly.
        let odd = firstDescriptors(try send(ch, blockStatus(cookie: 45, offset: (1 << 20) - 100, length: 300)))
        #expect(odd == [NBDBlockDescriptor(length: 100, flags: 3), NBDBlockDescriptor(length: 200, flags: 0)])
    }

    @Test func aFragmentedImageGetsABoundedReplyAndTheRestOnTheNextQuery() throws {
        let dir = TempDir()
        // One 4 KiB block of data every 8 KiB: 2 runs per block, more than one reply holds.
        let blocks = NBD.maximumBlockStatusDescriptors / 2 + 100
        let size = Int64(blocks) * 8192
        let image = sparseImage(dir, size: size, data: (0..<blocks).map { (Int64($0) * 8192, 1) })
        let ch = try negotiated(image)
        let first = firstDescriptors(try send(ch, blockStatus(cookie: 1, offset: 0, length: UInt32(size))))
        #expect(first.count == NBD.maximumBlockStatusDescriptors)
        #expect(first.allSatisfy { $0.length == 4096 } && first.enumerated().allSatisfy { $0.element.flags == ($0.offset % 2 == 0 ? 0 : 3) })
        let covered = first.reduce(UInt64(0)) { $0 + UInt64($1.length) }
        #expect(covered < UInt64(size))
        let rest = firstDescriptors(try send(ch, blockStatus(cookie: 2, offset: covered, length: UInt32(UInt64(size) - covered))))
        #expect(rest.reduce(UInt64(0)) { $0 + UInt64($1.length) } == UInt64(size) - covered)
    }

    @Test func aHugeQueryOnAHugeSparseExportIsOneDescriptor() throws {
        let dir = TempDir()
        let image = sparseImage(dir, size: 8 << 30, data: [(6 << 30, 4096)])
        let ch = try negotiated(image)
        let d = firstDescriptors(try send(ch, blockStatus(cookie: 1, offset: 4096, length: UInt32.max)))
        #expect(d == [NBDBlockDescriptor(length: UInt64(UInt32.max), flags: 3)])
    }

    @Test func aBlockStatusRuleFailsOnlyBlockStatus() throws {
        let dir = TempDir()
        let image = sparseImage(dir, size: 1 << 20)
        let rules = "[inject-error]\nevent = \"none\"\niotype = \"block-status\"\nsector = \"16\"\nerrno = \"5\"\n"
        let ch = try negotiated(image, rules: rules)
        let failed = try send(ch, blockStatus(cookie: 9, offset: 0, length: 65536))
        #expect(chunks(failed).first?.type == NBD.ReplyType.error && errorValue(failed) == 5)
        #expect(chunks(try send(ch, blockStatus(cookie: 10, offset: 65536, length: 4096))).first?.type == 5)
        // A rule without iotype (blkdebug's default: all but block-status) leaves queries alone.
        let ch2 = try negotiated(image, rules: "[inject-error]\nevent = \"none\"\nerrno = \"5\"\n")
        #expect(chunks(try send(ch2, blockStatus(cookie: 11, offset: 0, length: 4096))).first?.type == 5)
    }

    // MARK: - hostile

    @Test func blockStatusWithoutAContextPastTheEndOrWithBadFlagsIsEINVALAndTheConnectionGoesOn() throws {
        let dir = TempDir()
        let image = sparseImage(dir, size: 1 << 20)
        // No structured replies, no context: a simple EINVAL reply (nothing structured may be sent).
        let plain = try channel(image: image)
        _ = try send(plain, go())
        let r = try send(plain, blockStatus(cookie: 1, offset: 0, length: 4096))
        #expect(int(r[0..<4], as: UInt32.self) == NBD.simpleReplyMagic && errorValue(r) == 22)
        // Structured replies but no SET_META_CONTEXT: a structured EINVAL.
        let noContext = try channel(image: image)
        _ = try send(noContext, option(8))
        _ = try send(noContext, go())
        let e = try send(noContext, blockStatus(cookie: 2, offset: 0, length: 4096))
        #expect(chunks(e).first?.type == NBD.ReplyType.error && errorValue(e) == 22)
        // With a context: past the end, offset overflow, huge length past the end, 0 bytes, bad flags.
        let ch = try negotiated(image)
        for (offset, length, flags) in [(UInt64(1 << 20), UInt32(1), UInt16(0)), (UInt64.max - 10, UInt32(4096), UInt16(0)),
                                        (UInt64(0), UInt32.max, UInt16(0)), (UInt64(0), UInt32(0), UInt16(0)),
                                        (UInt64(0), UInt32(4096), NBD.CommandFlag.fastZero)] {
            #expect(errorValue(try send(ch, blockStatus(cookie: 3, offset: offset, length: length, flags: flags))) == 22)
        }
        // And the connection still answers.
        #expect(chunks(try send(ch, blockStatus(cookie: 4, offset: 0, length: 4096))).first?.type == 5)
        #expect(ch.isActive)
    }

    @Test func fuaIsAcceptedOnEveryCommand() throws {
        // proto.md: with SEND_FUA the server "MUST accept all commands with this bit set".
        let dir = TempDir()
        let ch = try negotiated(sparseImage(dir, size: 1 << 20))
        let fua = NBD.CommandFlag.fua
        #expect(firstDescriptors(try send(ch, blockStatus(cookie: 1, offset: 0, length: 4096, flags: fua | NBD.CommandFlag.reqOne)))
                == [NBDBlockDescriptor(length: 4096, flags: 3)])
        let read = be(NBD.requestMagic) + be(fua) + be(NBD.Command.read.rawValue) + be(UInt64(2)) + be(UInt64(0)) + be(UInt32(512))
        #expect(chunks(try send(ch, read)).first?.type == NBD.ReplyType.offsetData)
        let flush = be(NBD.requestMagic) + be(fua) + be(NBD.Command.flush.rawValue) + be(UInt64(3)) + be(UInt64(0)) + be(UInt32(0))
        #expect(errorValue(try send(ch, flush)) == 0)
    }

    @Test func anExtendedRequestWithoutExtendedHeadersClosesTheConnection() throws {
        // Only structured replies negotiated: a 32-byte extended request is a framing violation
        // (the headers differ in length), so the connection is closed. NBDExtendedHeadersTests
        // has the negotiated case.
        let dir = TempDir()
        let ch = try channel(image: sparseImage(dir, size: 1 << 20))
        _ = try send(ch, option(8))
        _ = try send(ch, go())
        let extended = be(UInt32(0x21e4_1c71)) + be(UInt16(0)) + be(NBD.Command.read.rawValue) + be(UInt64(1)) + be(UInt64(0)) + be(UInt64(512))
        _ = try? send(ch, extended)
        #expect(!ch.isActive)
    }

    @Test func aBackendThatBreaksTheSeamDoesNotMakeTheServerBreakTheProtocol() {
        // Runs past the request, zero-length and negative runs, equal neighbours.
        let d = NBDBlockDescriptor.descriptors(for: [BlockExtent(length: 0), BlockExtent(length: 10), BlockExtent(length: -5),
                                                     BlockExtent(length: 20), BlockExtent(length: 100, isHole: true, readsAsZeroes: true)],
                                               requested: 50, one: false)
        #expect(d == [NBDBlockDescriptor(length: 30, flags: 0), NBDBlockDescriptor(length: 20, flags: 3)])
        #expect(NBDBlockDescriptor.descriptors(for: [], requested: 50, one: false).isEmpty)
        #expect(NBDBlockDescriptor.descriptors(for: [BlockExtent(length: 10), BlockExtent(length: 10, isHole: true)],
                                               requested: 50, one: true) == [NBDBlockDescriptor(length: 10, flags: 0)])
        #expect(NBDBlockDescriptor.descriptors(for: (0..<10).map { BlockExtent(length: 1, isHole: $0 % 2 == 1) },
                                               requested: 50, one: false, limit: 3).count == 3)
    }
}
