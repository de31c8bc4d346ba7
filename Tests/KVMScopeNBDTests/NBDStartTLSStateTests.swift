import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import Testing
import KVMScopeTestSupport
@testable import KVMScopeNBD

/// What STARTTLS does to the negotiation state, with a TLS client of the test's own (swift-nio-ssl):
/// no real client asks for STARTTLS twice or negotiates in the clear first and then relies on it.
/// proto.md "TLS support": whatever was negotiated before TLS is forgotten (a man in the middle
/// could have chosen it), so structured replies, extended headers and the meta context must
/// be asked for again inside TLS; a second STARTTLS is invalid.
@Suite(.serialized) struct NBDStartTLSStateTests {
    /// Collects what the server sends, decrypted once the TLS handler is in front.
    final class Collector: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        private let lock = NSLock()
        private var bytes: [UInt8] = []
        private var closed = false
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var b = unwrapInboundIn(data)
            lock.lock(); bytes += b.readBytes(length: b.readableBytes) ?? []; lock.unlock()
        }
        func channelInactive(context: ChannelHandlerContext) { lock.lock(); closed = true; lock.unlock() }
        func errorCaught(context: ChannelHandlerContext, error: Error) { context.close(promise: nil) }

        /// The next `n` bytes, waiting up to 10 s; nil if the connection closed or time ran out first.
        func take(_ n: Int) -> [UInt8]? {
            let deadline = Date().addingTimeInterval(10)
            while Date() < deadline {
                lock.lock()
                if bytes.count >= n { let out = Array(bytes.prefix(n)); bytes.removeFirst(n); lock.unlock(); return out }
                let gone = closed
                lock.unlock()
                if gone { return nil }
                usleep(2000)
            }
            return nil
        }
    }

    func be<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.bigEndian) { Array($0) } }
    func option(_ code: NBD.Option, _ data: [UInt8] = []) -> [UInt8] { be(NBD.optionMagic) + be(code.rawValue) + be(UInt32(data.count)) + data }
    func u32(_ b: [UInt8], _ i: Int) -> UInt32 { b[i..<(i + 4)].reduce(0) { $0 << 8 | UInt32($1) } }
    func u64(_ b: [UInt8], _ i: Int) -> UInt64 { b[i..<(i + 8)].reduce(0) { $0 << 8 | UInt64($1) } }

    /// One option reply: (option, reply type, data).
    func reply(_ c: Collector) -> (UInt32, UInt32, [UInt8])? {
        guard let h = c.take(20) else { return nil }
        let n = Int(u32(h, 16))
        guard let data = n == 0 ? [] : c.take(n) else { return nil }
        return (u32(h, 8), u32(h, 12), data)
    }

    @Test func optionsFromTheClearAreForgottenAndASecondStartTLSIsInvalid() throws {
        guard let pki = try NBDTLSTests.PKI() else { return }
        let s = try NBDServerProcess(size: 1 << 20, arguments: ["-f", "raw", "--tls-certificates", pki.server, "--tls", "allow"])
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let collector = Collector()
        let channel = try ClientBootstrap(group: group)
            .channelInitializer { ch in ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(collector) } }
            .connect(host: "127.0.0.1", port: s.port).wait()
        defer { channel.close(promise: nil) }
        func send(_ b: [UInt8]) throws { try channel.writeAndFlush(ByteBuffer(bytes: b)).wait() }

        #expect(collector.take(18) != nil)                              // greeting
        // In the clear (--tls allow lets it): structured replies, extended headers, a context.
        let name = Array("".utf8), ctx = Array(NBD.MetaContext.allocation.utf8)
        let setMeta = option(.setMetaContext, be(UInt32(name.count)) + name + be(UInt32(1)) + be(UInt32(ctx.count)) + ctx)
        try send(be(UInt32(3)) + option(.structuredReply) + option(.extendedHeaders) + setMeta + option(.startTLS))
        #expect(reply(collector).map { [$0.0, $0.1] } == [NBD.Option.structuredReply.rawValue, NBD.Reply.ack])
        #expect(reply(collector).map { [$0.0, $0.1] } == [NBD.Option.extendedHeaders.rawValue, NBD.Reply.ack])
        #expect(reply(collector)?.1 == NBD.MetaContext.reply)
        #expect(reply(collector)?.1 == NBD.Reply.ack)
        #expect(reply(collector).map { [$0.0, $0.1] } == [NBD.Option.startTLS.rawValue, NBD.Reply.ack])

        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .file(pki.server + "/ca-cert.pem")
        let handler = try NIOSSLClientHandler(context: NIOSSLContext(configuration: tls), serverHostname: "localhost")
        try channel.eventLoop.submit { try channel.pipeline.syncOperations.addHandler(handler, position: .first) }.wait()

        // Inside TLS: a second STARTTLS is invalid; the context needs chunks negotiated again
        // (both were forgotten); extended headers are new again (ACK, not "already").
        try send(option(.startTLS) + setMeta + option(.extendedHeaders) + setMeta
                 + option(.go, be(UInt32(0)) + be(UInt16(0))))
        let again = reply(collector)
        #expect(again.map { [$0.0, $0.1] } == [NBD.Option.startTLS.rawValue, NBD.Reply.errInvalid])
        #expect(again.map { String(decoding: $0.2, as: UTF8.self) } == "TLS is already in use on this connection")
        let forgotten = reply(collector)
        #expect(forgotten.map { [$0.0, $0.1] } == [NBD.Option.setMetaContext.rawValue, NBD.Reply.errInvalid])
        #expect(forgotten.map { String(decoding: $0.2, as: UTF8.self).contains("needs NBD_OPT_STRUCTURED_REPLY or NBD_OPT_EXTENDED_HEADERS first") } == true)
        #expect(reply(collector).map { [$0.0, $0.1] } == [NBD.Option.extendedHeaders.rawValue, NBD.Reply.ack])
        #expect(reply(collector)?.1 == NBD.MetaContext.reply)
        #expect(reply(collector)?.1 == NBD.Reply.ack)
        var go = reply(collector)
        while let r = go, r.1 == NBD.Reply.info { go = reply(collector) }
        #expect(go.map { [$0.0, $0.1] } == [NBD.Option.go.rawValue, NBD.Reply.ack])

        // Transmission inside TLS with extended headers: a 32-byte read, an extended data chunk.
        try send(be(NBD.extendedRequestMagic) + be(UInt16(0)) + be(NBD.Command.read.rawValue) + be(UInt64(7)) + be(UInt64(4096)) + be(UInt64(512)))
        let header = collector.take(32)
        #expect(header.map { u32($0, 0) } == NBD.extendedReplyMagic)
        #expect(header.map { u64($0, 8) } == 7 && header.map { u64($0, 16) } == 4096 && header.map { u64($0, 24) } == 8 + 512)
        let data = collector.take(8 + 512)
        let image = try #require(FileManager.default.contents(atPath: s.image))
        #expect(data.map { Array($0.dropFirst(8)) } == Array(image[4096..<4608]))
        try send(be(NBD.extendedRequestMagic) + be(UInt16(0)) + be(NBD.Command.disconnect.rawValue) + be(UInt64(8)) + be(UInt64(0)) + be(UInt64(0)))
        #expect(s.stop() != nil)
        #expect(s.stderrLines(containing: "(TLSv1.3, extended headers)").count == 1, "\(s.stderr)")
    }
}
