import Foundation
import NIOCore
import NIOEmbedded
import Testing
import KVMScopeTestSupport
import KVMScopeCore
@testable import KVMScopeFaults
@testable import KVMScopeNBD

/// The pipeline the server uses (`configureNBDServerPipeline`), on EmbeddedChannels: the switch
/// from handshake to transmission handlers, back-pressure, the shared byte budget, and what the
/// decoders report when a client vanishes mid-message.
@Suite struct NBDPipelineTests {
    /// Counts read() calls that reach the channel (sits next to the head).
    final class ReadCounter: ChannelOutboundHandler {
        typealias OutboundIn = NIOAny
        var reads = 0
        func read(context: ChannelHandlerContext) { reads += 1; context.read() }
    }

    func be<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.bigEndian) { Array($0) } }
    func go() -> [UInt8] { be(NBD.optionMagic) + be(UInt32(7)) + be(UInt32(6)) + be(UInt32(0)) + be(UInt16(0)) }
    func read(cookie: UInt64, offset: UInt64 = 0, length: UInt32) -> [UInt8] {
        be(NBD.requestMagic) + be(UInt16(0)) + be(UInt16(0)) + be(cookie) + be(offset) + be(length)
    }

    func channel(_ dir: TempDir, rules: String? = nil, budget: NBDMemoryBudget? = nil,
                 limits: NBDServerLimits = NBDServerLimits()) throws -> (EmbeddedChannel, ReadCounter) {
        // A sparse image (ftruncate), not a 64 MiB buffer written out per channel.
        let img = dir.path + "/d\(UUID().uuidString).img"
        let fd = open(img, O_CREAT | O_RDWR, 0o644)
        #expect(fd >= 0 && ftruncate(fd, 64 << 20) == 0)
        close(fd)
        let config = rules.map { BlkdebugConfigReader().parse($0, file: "r.cfg").config }
        let backend = FaultInjectingBackend(image: try RawImageFile(path: img), rules: config)
        let ch = EmbeddedChannel()
        let counter = ReadCounter()
        try ch.pipeline.syncOperations.addHandler(counter)
        try ch.pipeline.syncOperations.configureNBDServerPipeline(
            configuration: NBDServerConfiguration(export: NBDExport(name: "disk", backend: backend), limits: limits, budget: budget))
        try ch.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return (ch, counter)
    }

    func outbound(_ ch: EmbeddedChannel) throws -> [UInt8] {
        var all: [UInt8] = []
        while var b = try ch.readOutbound(as: ByteBuffer.self) { all += b.readBytes(length: b.readableBytes)! }
        return all
    }

    /// Simple-reply cookies in `bytes` (replies to 4 KiB reads: 16-byte header + data).
    func cookies(_ bytes: [UInt8], dataLength: Int) -> [UInt64] {
        stride(from: 0, to: bytes.count, by: 16 + dataLength).map { i in bytes[(i + 8)..<(i + 16)].reduce(0) { $0 << 8 | UInt64($1) } }
    }

    @Test func requestsSentWithTheGoOptionAreServedAfterTheSwitch() throws {
        let dir = TempDir()
        let (ch, _) = try channel(dir)
        _ = try outbound(ch)   // greeting
        // Client flags, GO and two reads in one segment: the handshake decoder must hand the
        // reads to the request decoder when it is removed.
        try ch.writeInbound(ByteBuffer(bytes: be(UInt32(3)) + go() + read(cookie: 1, length: 4096) + read(cookie: 2, length: 4096)))
        ch.embeddedEventLoop.run()
        let out = try outbound(ch)
        #expect(Array(out.suffix(2 * (16 + 4096)).enumerated().filter { $0.offset % (16 + 4096) < 4 }.map(\.element))
                == be(NBD.simpleReplyMagic) + be(NBD.simpleReplyMagic))
        #expect(cookies(Array(out.suffix(2 * (16 + 4096))), dataLength: 4096) == [1, 2])
        // The handshake handlers are gone, the transmission ones in place.
        #expect(throws: (any Error).self) { try ch.pipeline.syncOperations.handler(type: NBDHandshakeHandler.self) }
        #expect(throws: (any Error).self) { try ch.pipeline.syncOperations.handler(type: ByteToMessageHandler<NBDHandshakeDecoder>.self) }
        #expect(throws: Never.self) { try ch.pipeline.syncOperations.handler(type: NBDTransmissionHandler.self) }
        #expect(throws: Never.self) { try ch.pipeline.syncOperations.handler(type: ByteToMessageHandler<NBDRequestDecoder>.self) }
    }

    @Test func anUnwritableChannelHoldsRequestsAndReads() throws {
        let dir = TempDir()
        let (ch, counter) = try channel(dir)
        try ch.writeInbound(ByteBuffer(bytes: be(UInt32(3)) + go()))
        ch.embeddedEventLoop.run()
        _ = try outbound(ch)
        // The client stops reading its replies: the socket's send buffer is full.
        ch.isWritable = false
        ch.pipeline.fireChannelWritabilityChanged()
        try ch.writeInbound(ByteBuffer(bytes: (1...3).flatMap { read(cookie: UInt64($0), length: 4096) }))
        let readsBefore = counter.reads
        ch.read()
        #expect(counter.reads == readsBefore, "read() must be held back while requests wait")
        #expect(try outbound(ch).isEmpty, "no request may start while the channel is unwritable")
        // Writable again: the three are answered in order and reading resumes.
        ch.isWritable = true
        ch.pipeline.fireChannelWritabilityChanged()
        #expect(cookies(try outbound(ch), dataLength: 4096) == [1, 2, 3])
        #expect(counter.reads == readsBefore + 1)
    }

    @Test func theSharedBudgetMakesAClientWaitUntilAnotherGivesBytesBack() throws {
        let dir = TempDir()
        let budget = NBDMemoryBudget(limit: NBDServerLimits.minimumConnectionBytes)
        // A's 32 MiB read is delayed an hour by a rule: its bytes stay reserved.
        let (a, _) = try channel(dir, rules: "[inject-error]\nevent = \"none\"\niotype = \"read\"\nerrno = \"0\"\ndelay = \"3600s\"\n", budget: budget)
        let (b, bReads) = try channel(dir, budget: budget)
        for ch in [a, b] {
            try ch.writeInbound(ByteBuffer(bytes: be(UInt32(3)) + go()))
            ch.embeddedEventLoop.run()
            _ = try outbound(ch)
        }
        try a.writeInbound(ByteBuffer(bytes: read(cookie: 1, length: 32 << 20)))
        #expect(budget.usage.current == (32 << 20) + NBDServerLimits.requestOverheadBytes)
        try b.writeInbound(ByteBuffer(bytes: read(cookie: 2, length: 4096)))
        let readsBefore = bReads.reads
        b.read()
        #expect(try outbound(b).isEmpty, "B's read must wait for budget")
        #expect(bReads.reads == readsBefore)
        // A leaves: its reservation is given back (the hour-long timer cancelled) and B goes on.
        _ = try? a.finish()
        #expect(budget.usage.current <= NBDServerLimits.requestOverheadBytes + 4096)
        b.embeddedEventLoop.run()
        #expect(cookies(try outbound(b), dataLength: 4096) == [2])
        #expect(budget.usage.current == 0)
        #expect(bReads.reads == readsBefore + 1)
    }

    @Test func tooManyRequestsInFlightWait() throws {
        let dir = TempDir()
        var limits = NBDServerLimits()
        limits.maxRequestsInFlight = 2
        // Every read is delayed, so each stays in flight until its timer fires.
        let (ch, _) = try channel(dir, rules: "[inject-error]\nevent = \"none\"\niotype = \"read\"\nerrno = \"0\"\ndelay = \"1s\"\n", limits: limits)
        try ch.writeInbound(ByteBuffer(bytes: be(UInt32(3)) + go()))
        ch.embeddedEventLoop.run()
        _ = try outbound(ch)
        try ch.writeInbound(ByteBuffer(bytes: (1...5).flatMap { read(cookie: UInt64($0), length: 512) }))
        #expect(try outbound(ch).isEmpty)
        ch.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(cookies(try outbound(ch), dataLength: 512) == [1, 2])
        ch.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(cookies(try outbound(ch), dataLength: 512) == [3, 4])
        ch.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(cookies(try outbound(ch), dataLength: 512) == [5])
    }
}

/// What the server says about a client that disconnected in the middle of a message.
@Suite(.serialized) struct NBDTruncatedMessageTests {
    typealias RawClient = NBDHostileClientTests.RawClient

    func lastSummary(_ s: TestServer) -> NBDConnectionSummary? {
        for _ in 0..<50 {
            if let last = s.observer.disconnected.last { return last.1 }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return nil
    }

    @Test func aWritePayloadCutOffIsReportedAndNothingApplied() throws {
        let s = try TestServer(size: 4 << 20)
        let c = try RawClient(port: s.port)
        #expect(c.negotiate())
        c.send(c.request(NBD.Command.write.rawValue, offset: 1 << 20, length: 1 << 20) + [UInt8](repeating: 0xee, count: 100_000))
        Thread.sleep(forTimeInterval: 0.2)
        c.close()
        let summary = try #require(lastSummary(s))
        #expect(summary.truncated == NBDTruncatedMessage(what: "write payload", receivedBytes: 100_000, missingBytes: (1 << 20) - 100_000))
        #expect(summary.requests == 1 && summary.writes == 0)
        #expect(FileManager.default.contents(atPath: s.image)!.allSatisfy { $0 == 0 })
    }

    // IdleStateHandler measures activity with the real clock, so this one runs on a real socket.
    @Test func theIdleTimeoutClosesOnlyAClientWithNothingInFlight() throws {
        var limits = NBDServerLimits()
        limits.idleTimeout = .seconds(1)
        let s = try TestServer(rules: "[inject-error]\nevent = \"none\"\niotype = \"read\"\nerrno = \"0\"\ndelay = \"2500ms\"\n",
                               limits: limits)
        let c = try RawClient(port: s.port)
        #expect(c.negotiate())
        // The reply is delayed past the idle timeout: the client is waiting for us, not idle,
        // and gets its reply.
        c.send(c.request(NBD.Command.read.rawValue, offset: 0, length: 512))
        #expect(c.simpleReplyError() == 0)
        #expect(c.recv(512) != nil)
        // Then nothing in flight and no traffic: closed.
        #expect(c.closedByServer())
        let summary = try #require(lastSummary(s))
        #expect(summary.closedBecause == "idle for 1 s")
    }

    @Test func aRequestHeaderCutOffIsReported() throws {
        let s = try TestServer()
        let c = try RawClient(port: s.port)
        #expect(c.negotiate())
        c.send(Array(c.request(NBD.Command.read.rawValue, offset: 0, length: 512).prefix(10)))
        Thread.sleep(forTimeInterval: 0.2)
        c.close()
        let summary = try #require(lastSummary(s))
        #expect(summary.truncated == NBDTruncatedMessage(what: "request header", receivedBytes: 10, missingBytes: nil))
    }

    @Test func anOptionCutOffIsReported() throws {
        let s = try TestServer()
        let c = try RawClient(port: s.port)
        _ = c.recv(18)
        c.send(RawClient.be(UInt32(3)) + RawClient.be(NBD.optionMagic) + RawClient.be(UInt32(7)))
        Thread.sleep(forTimeInterval: 0.2)
        c.close()
        let summary = try #require(lastSummary(s))
        #expect(summary.truncated == NBDTruncatedMessage(what: "option", receivedBytes: 12, missingBytes: nil))
        #expect(!summary.reachedTransmission)
    }
}
