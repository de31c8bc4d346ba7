import Foundation
import Testing
import KVMScopeTestSupport
import KVMScopeCore
import KVMScopeFaults
@testable import KVMScopeNBD

/// kvmscope's NBD client against an upstream that breaks the protocol on purpose: a scripted
/// server on 127.0.0.1 that negotiates (with or without NBD_OPT_EXTENDED_HEADERS), reads one
/// request and answers it with whatever the test says. Every broken answer must end in one
/// clear reason (`deadBecause`) and EIO for the caller: no trap, no hang, no huge allocation.
@Suite(.serialized) struct NBDClientHostileUpstreamTests {
    typealias W = NBDHostileClientTests.RawClient

    /// One connection's server side, run on its own thread.
    final class ScriptedUpstream: @unchecked Sendable {
        let listener: Int32
        let port: Int
        private let done = DispatchSemaphore(value: 0)
        /// What the script saw: the request header it read (28 or 32 bytes).
        private(set) var request: [UInt8] = []

        /// - extendedHeaders: acknowledge NBD_OPT_EXTENDED_HEADERS (else NBD_REP_ERR_UNSUP).
        /// - goAfterExtended: answer NBD_OPT_GO (false: NBD_REP_ERR_UNSUP, a broken server).
        /// - reply: the bytes sent for the first request, given its header.
        init(extendedHeaders: Bool, goAfterExtended: Bool = true, reply: @escaping @Sendable ([UInt8]) -> [UInt8]) throws {
            let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            self.listener = listener
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, len) } }
            listen(listener, 1)
            _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &len) } }
            port = Int(UInt16(bigEndian: addr.sin_port))
            Thread { [self] in
                defer { done.signal() }
                let fd = accept(listener, nil, nil)
                guard fd >= 0 else { return }
                defer { close(fd) }
                var tv = timeval(tv_sec: 10, tv_usec: 0)
                setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
                func send(_ b: [UInt8]) { SocketBytes.send(fd, b) }
                func recv(_ n: Int) -> [UInt8]? { SocketBytes.recv(fd, n) }
                func optionReply(_ option: UInt32, _ type: UInt32, _ data: [UInt8] = []) {
                    send(W.be(NBD.optionReplyMagic) + W.be(option) + W.be(type) + W.be(UInt32(data.count)) + data)
                }
                send(W.be(NBD.nbdMagic) + W.be(NBD.optionMagic) + W.be(UInt16(3)))
                guard recv(4) != nil else { return }
                var extended = false
                while let h = recv(16) {
                    let option = UInt32(bigEndian: h[8..<12].withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) })
                    let length = Int(UInt32(bigEndian: h[12..<16].withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }))
                    guard length <= 4096, recv(length) != nil else { return }
                    switch NBD.Option(rawValue: option) {
                    case .extendedHeaders?:
                        extended = extendedHeaders
                        optionReply(option, extendedHeaders ? NBD.Reply.ack : NBD.Reply.errUnsup)
                    case .structuredReply?: optionReply(option, NBD.Reply.ack)
                    case .setMetaContext?:
                        optionReply(option, NBD.MetaContext.reply, W.be(UInt32(7)) + Array("base:allocation".utf8))
                        optionReply(option, NBD.Reply.ack)
                    case .go?:
                        guard !extended || goAfterExtended else { optionReply(option, NBD.Reply.errUnsup); continue }
                        optionReply(option, NBD.Reply.info, W.be(NBD.Info.export) + W.be(UInt64(1 << 20))
                                    + W.be(NBD.TransmissionFlag.hasFlags | NBD.TransmissionFlag.sendFlush))
                        optionReply(option, NBD.Reply.ack)
                        guard let r = recv(extended ? 32 : 28) else { return }
                        request = r
                        send(reply(r))
                        // Wait for the client to hang up (it must, after a broken reply).
                        _ = recv(1 << 16)
                        return
                    default: optionReply(option, NBD.Reply.errUnsup)
                    }
                }
            }.start()
        }

        var uri: NBDURI { try! NBDURI.parse("nbd://127.0.0.1:\(port)/") }

        deinit {
            shutdown(listener, Int32(SHUT_RDWR))
            close(listener)
            done.wait()
        }
    }

    /// The cookie of a request header (both styles keep it at bytes 8..<16).
    static func cookie(_ h: [UInt8]) -> UInt64 { h[8..<16].reduce(0) { $0 << 8 | UInt64($1) } }
    static func offset(_ h: [UInt8]) -> UInt64 { h[16..<24].reduce(0) { $0 << 8 | UInt64($1) } }

    /// An extended reply chunk header (proto.md "Extended reply chunk message").
    static func extendedChunk(flags: UInt16 = NBD.replyFlagDone, type: UInt16, cookie: UInt64, offset: UInt64, length: UInt64) -> [UInt8] {
        W.be(NBD.extendedReplyMagic) + W.be(flags) + W.be(type) + W.be(cookie) + W.be(offset) + W.be(length)
    }

    /// Connects, sends one request with `perform`, and returns its errno and why the client gave up.
    static func outcome(_ upstream: ScriptedUpstream, _ command: NBD.Command = .read, length: UInt64 = 4096)
        throws -> (errno: Int32, dead: String?, request: [UInt8]) {
        let client = try NBDClient(uri: upstream.uri, timeout: 10)
        defer { client.close() }
        var buf = [UInt8](repeating: 0, count: command == .read ? Int(length) : 0)
        let r = buf.withUnsafeMutableBytes { client.perform(command, offset: 4096, length: length, into: command == .read ? $0 : nil) }
        return (r.errno, client.deadBecause, upstream.request)
    }

    @Test func aWellFormedExtendedReplyIsTakenAndTheRequestHeaderIsExtended() throws {
        let up = try ScriptedUpstream(extendedHeaders: true) { h in
            Self.extendedChunk(type: NBD.ReplyType.offsetData, cookie: Self.cookie(h), offset: Self.offset(h), length: 8 + 4096)
                + W.be(Self.offset(h)) + [UInt8](repeating: 0x5a, count: 4096)
        }
        let r = try Self.outcome(up)
        #expect(r.errno == 0 && r.dead == nil, "\(r.dead ?? "")")
        // 32 bytes: extended magic, flags, type, cookie, offset, a 64-bit length.
        #expect(Array(r.request[0..<4]) == W.be(NBD.extendedRequestMagic) && Array(r.request[24..<32]) == W.be(UInt64(4096)))
    }

    @Test func aSimpleReplyAfterExtendedHeadersIsAProtocolError() throws {
        let up = try ScriptedUpstream(extendedHeaders: true) { h in W.be(NBD.simpleReplyMagic) + W.be(UInt32(0)) + Array(h[8..<16]) }
        let r = try Self.outcome(up)
        #expect(r.errno == EIO && r.dead == "protocol error: a simple reply after extended headers were negotiated", "\(r.dead ?? "")")
    }

    @Test func anExtendedReplyWithoutExtendedHeadersIsAProtocolError() throws {
        let up = try ScriptedUpstream(extendedHeaders: false) { h in
            Self.extendedChunk(type: NBD.ReplyType.none, cookie: Self.cookie(h), offset: Self.offset(h), length: 0)
        }
        let r = try Self.outcome(up)
        #expect(Array(r.request[0..<4]) == W.be(NBD.requestMagic) && r.request.count == 28)
        #expect(r.errno == EIO && r.dead == "protocol error: an extended reply header, but NBD_OPT_EXTENDED_HEADERS was not negotiated", "\(r.dead ?? "")")
    }

    @Test func aReplyForAnotherOffsetIsAProtocolError() throws {
        let up = try ScriptedUpstream(extendedHeaders: true) { h in
            Self.extendedChunk(type: NBD.ReplyType.none, cookie: Self.cookie(h), offset: 0, length: 0)
        }
        let r = try Self.outcome(up, .flush, length: 0)
        #expect(r.errno == EIO && r.dead?.contains("at offset 0, but its flush request was at 4096") == true, "\(r.dead ?? "")")
    }

    @Test func aHugeReplyLengthIsRefusedBeforeAnythingIsRead() throws {
        let up = try ScriptedUpstream(extendedHeaders: true) { h in
            Self.extendedChunk(type: NBD.ReplyType.offsetData, cookie: Self.cookie(h), offset: Self.offset(h), length: 1 << 62)
        }
        let r = try Self.outcome(up)
        #expect(r.errno == EIO && r.dead == "protocol error: NBD_REPLY_TYPE_OFFSET_DATA of \(UInt64(1) << 62) bytes for read of 4096", "\(r.dead ?? "")")
        let error = try ScriptedUpstream(extendedHeaders: true) { h in
            Self.extendedChunk(type: NBD.ReplyType.error, cookie: Self.cookie(h), offset: Self.offset(h), length: UInt64.max)
        }
        let e = try Self.outcome(error)
        #expect(e.errno == EIO && e.dead == "protocol error: error chunk of \(UInt64.max) bytes", "\(e.dead ?? "")")
    }

    @Test func aReplyForACookieNeverSentIsAProtocolError() throws {
        let up = try ScriptedUpstream(extendedHeaders: true) { h in
            Self.extendedChunk(type: NBD.ReplyType.none, cookie: Self.cookie(h) &+ 1000, offset: Self.offset(h), length: 0)
        }
        let r = try Self.outcome(up, .flush, length: 0)
        #expect(r.errno == EIO && r.dead?.hasPrefix("protocol error: a reply for cookie ") == true && r.dead?.hasSuffix(", which no request has") == true,
                "\(r.dead ?? "")")
    }

    @Test func blockStatusChunksOfTheWrongStyleOrCountAreProtocolErrors() throws {
        // The compact chunk (type 5) where extended headers require type 6.
        let compact = try ScriptedUpstream(extendedHeaders: true) { h in
            Self.extendedChunk(type: NBD.replyTypeBlockStatus, cookie: Self.cookie(h), offset: Self.offset(h), length: 12)
                + W.be(UInt32(7)) + W.be(UInt32(4096)) + W.be(UInt32(0))
        }
        let a = try Self.outcome(compact, .blockStatus)
        #expect(a.errno == EIO && a.dead == "protocol error: NBD_REPLY_TYPE_BLOCK_STATUS after extended headers were negotiated", "\(a.dead ?? "")")
        // Two descriptors in the payload, a count of 3.
        let miscounted = try ScriptedUpstream(extendedHeaders: true) { h in
            Self.extendedChunk(type: NBD.replyTypeBlockStatusExtended, cookie: Self.cookie(h), offset: Self.offset(h), length: 8 + 32)
                + W.be(UInt32(7)) + W.be(UInt32(3)) + W.be(UInt64(2048)) + W.be(UInt64(0)) + W.be(UInt64(2048)) + W.be(UInt64(3))
        }
        let b = try Self.outcome(miscounted, .blockStatus)
        #expect(b.errno == EIO && b.dead == "protocol error: NBD_REPLY_TYPE_BLOCK_STATUS_EXT of 40 bytes says 3 descriptors", "\(b.dead ?? "")")
        // A well-formed one: 64-bit descriptors, cut at the request's length.
        let good = try ScriptedUpstream(extendedHeaders: true) { h in
            Self.extendedChunk(type: NBD.replyTypeBlockStatusExtended, cookie: Self.cookie(h), offset: Self.offset(h), length: 8 + 32)
                + W.be(UInt32(7)) + W.be(UInt32(2)) + W.be(UInt64(1024)) + W.be(UInt64(0)) + W.be(UInt64(1) << 40) + W.be(UInt64(3))
        }
        let client = try NBDClient(uri: good.uri, timeout: 10)
        defer { client.close() }
        let r = client.perform(.blockStatus, offset: 4096, length: 8 << 30)
        #expect(r.errno == 0 && r.extents == [BlockExtent(length: 1024), BlockExtent(length: (8 << 30) - 1024, isHole: true, readsAsZeroes: true)])
        #expect(Array(good.request[24..<32]) == W.be(UInt64(8) << 30))
        // The same type 6 chunk from a server that refused extended headers.
        let unasked = try ScriptedUpstream(extendedHeaders: false) { h in
            W.be(NBD.structuredReplyMagic) + W.be(NBD.replyFlagDone) + W.be(NBD.replyTypeBlockStatusExtended) + Array(h[8..<16]) + W.be(UInt32(24))
                + W.be(UInt32(7)) + W.be(UInt32(1)) + W.be(UInt64(4096)) + W.be(UInt64(0))
        }
        let c = try Self.outcome(unasked, .blockStatus, length: 8 << 30)
        #expect(c.errno == EIO && c.dead == "protocol error: NBD_REPLY_TYPE_BLOCK_STATUS_EXT without extended headers", "\(c.dead ?? "")")
        // A compact block status request is cut below 2 GiB, as QEMU's (the length is a hint).
        #expect(Array(unasked.request[24..<28]) == W.be(UInt32(Int32.max)))
    }

    @Test func aServerThatAcknowledgesExtendedHeadersButRefusesGoIsRefused() throws {
        let up = try ScriptedUpstream(extendedHeaders: true, goAfterExtended: false) { _ in [] }
        let e = #expect(throws: NBDClientError.self) { try NBDClient(uri: up.uri, timeout: 10) }
        #expect(e?.message == "\(up.uri): protocol error: NBD_OPT_GO refused after NBD_OPT_EXTENDED_HEADERS was acknowledged")
    }
}
