import Foundation
import Testing
@testable import KVMScope
@testable import KVMScopeNBD

/// Hostile clients against the real server process (issue 17): each attack runs while a
/// well-behaved client keeps reading and checking data, and the server's peak memory (VmHWM of
/// its process) must stay under the documented bound: 64 MiB + the per-connection buffer
/// (README, NBD limits). Loops are bounded; nothing here asserts a duration.
@Suite(.serialized) struct NBDHostileClientSuiteTests {
    typealias RawClient = NBDHostileClientTests.RawClient

    /// The documented bound for one hostile client: 64 MiB + `--max-connection-buffer`.
    static func memoryBoundMiB(connectionBufferMiB: Int = 64) -> Double { Double(64 + connectionBufferMiB) }

    /// A client that reads `count` 4 KiB blocks and checks each against the image (filled with a
    /// pattern by TempDir); true when every read came back right.
    static func wellBehavedReads(port: Int, image: String, count: Int) -> Bool {
        guard let c = try? RawClient(port: port), c.negotiate(),
              let file = FileHandle(forReadingAtPath: image) else { return false }
        defer { try? file.close() }
        for i in 0..<count {
            let offset = UInt64((i * 7919) % 1000) * 4096
            c.send(c.request(NBD.Command.read.rawValue, offset: offset, length: 4096, cookie: UInt64(i)))
            guard c.simpleReplyError() == 0, let data = c.recv(4096) else { return false }
            try? file.seek(toOffset: offset)
            guard let expected = try? file.read(upToCount: 4096), Array(expected) == data else { return false }
        }
        return true
    }

    /// The server's peak RSS after giving it `seconds` to take in what it will (sampled, and
    /// returned early once over the bound: a server without limits takes gigabytes).
    static func peakMemory(_ s: NBDServerProcess, seconds: Double) -> Double? {
        var peak = s.memoryMiB("VmHWM")
        for _ in 0..<Int(seconds * 10) where (peak ?? 0) < memoryBoundMiB() {
            Thread.sleep(forTimeInterval: 0.1)
            peak = s.memoryMiB("VmHWM") ?? peak
        }
        return peak
    }

    @Test func flushAtOffset2To63GetsEINVALAndTheProcessLives() throws {
        let s = try NBDServerProcess()
        let c = try RawClient(port: s.port)
        #expect(c.negotiate())
        c.send(c.request(NBD.Command.flush.rawValue, offset: 1 << 63, length: 0))
        #expect(c.simpleReplyError() == 22)
        #expect(s.isRunning)
        #expect(Self.wellBehavedReads(port: s.port, image: s.image, count: 50))
        #expect(s.stop() != nil)
    }

    @Test(arguments: [10_000, 100_000])
    func pipelinedSmallReadsNeverReadStayUnderTheBound(count: Int) throws {
        let s = try NBDServerProcess()
        let flood = try FloodClient(port: s.port)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count * 28)
        for i in 0..<count { bytes += FloodClient.request(.read, offset: UInt64(i % 16_000) * 4096, length: 4096, cookie: UInt64(i)) }
        let sent = flood.send(bytes, within: 10)
        // The server reads until its limits stop it; the rest waits in the socket buffers.
        #expect(sent > 0)
        #expect(Self.wellBehavedReads(port: s.port, image: s.image, count: 200))
        let peak = try #require(Self.peakMemory(s, seconds: 3))
        #expect(peak < Self.memoryBoundMiB(), "server peak RSS \(peak) MiB with \(count) unread 4 KiB reads (\(sent / 28) sent)")
        #expect(s.isRunning)
        let seconds = s.stop()
        #expect(seconds != nil, "the server did not exit on SIGTERM")
    }

    @Test func pipelined32MiBReadsNeverReadStayUnderTheBound() throws {
        let s = try NBDServerProcess(size: 64 << 20)
        let flood = try FloodClient(port: s.port)
        var bytes: [UInt8] = []
        for i in 0..<40 { bytes += FloodClient.request(.read, offset: UInt64(i % 2) << 25, length: 32 << 20, cookie: UInt64(i)) }
        #expect(flood.send(bytes, within: 5) == bytes.count)
        #expect(Self.wellBehavedReads(port: s.port, image: s.image, count: 200))
        let peak = try #require(Self.peakMemory(s, seconds: 3))
        #expect(peak < Self.memoryBoundMiB(), "server peak RSS \(peak) MiB with 40 unread 32 MiB reads")
        #expect(s.stop() != nil)
    }

    @Test func aClientThatReadsNoRepliesIsClosedAfterTheWriteTimeout() throws {
        let s = try NBDServerProcess(arguments: ["--write-timeout", "1"])
        let c = try RawClient(port: s.port)
        #expect(c.negotiate())
        var bytes: [UInt8] = []
        for i in 0..<8 { bytes += FloodClient.request(.read, offset: 0, length: 32 << 20, cookie: UInt64(i)) }
        c.send(bytes)
        // Read nothing, wait (bounded) for the server to give up on us.
        var closed = false
        for _ in 0..<100 where !closed {
            Thread.sleep(forTimeInterval: 0.1)
            closed = !s.stderrLines(containing: "read none of its replies for 1 s").isEmpty
        }
        #expect(closed, "\(s.stderr)")
        #expect(Self.wellBehavedReads(port: s.port, image: s.image, count: 50))
        #expect(s.stop() != nil)
    }

    @Test func aSlowReaderThatMakesProgressIsNotClosedByTheWriteTimeout() throws {
        let s = try NBDServerProcess(arguments: ["--write-timeout", "1"])
        let c = try RawClient(port: s.port)
        var small: Int32 = 64 << 10
        setsockopt(c.fd, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
        #expect(c.negotiate())
        c.send(FloodClient.request(.read, offset: 0, length: 32 << 20, cookie: 9))
        // About 7 MiB/s: the 32 MiB reply takes ~5 s, the socket stays unwritable for most of it.
        #expect(c.simpleReplyError() == 0)
        var got = 0
        while got < 32 << 20, let part = c.recv(min(1 << 20, (32 << 20) - got)) {
            got += part.count
            Thread.sleep(forTimeInterval: 0.15)
        }
        #expect(got == 32 << 20, "the server closed a slow reader that was making progress: \(s.stderr)")
        #expect(s.stderrLines(containing: "read none of its replies").isEmpty)
        #expect(s.stop() != nil)
    }

    @Test func aClientStalledMidHandshakeIsClosedByTheHandshakeTimeout() throws {
        let s = try NBDServerProcess(arguments: ["--handshake-timeout", "1"])
        let silent = try RawClient(port: s.port)        // reads the greeting, says nothing
        #expect(silent.recv(18) != nil)
        let halfway = try RawClient(port: s.port)       // client flags, then half an option
        #expect(halfway.recv(18) != nil)
        halfway.send(RawClient.be(UInt32(3)) + RawClient.be(NBD.optionMagic))
        // A slowloris: one byte of an option every 200 ms, never finishing in time.
        let slow = try RawClient(port: s.port)
        #expect(slow.recv(18) != nil)
        let option = RawClient.be(UInt32(3)) + RawClient.be(NBD.optionMagic) + RawClient.be(UInt32(7)) + RawClient.be(UInt32(6))
        for b in option.prefix(10) { slow.send([b]); Thread.sleep(forTimeInterval: 0.2) }
        // Each recv times out after 5 s (RawClient); EOF means the server closed the connection.
        #expect(silent.closedByServer())
        #expect(halfway.closedByServer())
        #expect(slow.closedByServer())
        #expect(s.stderrLines(containing: "handshake not finished after 1 s").count == 3, "\(s.stderr)")
        #expect(Self.wellBehavedReads(port: s.port, image: s.image, count: 50))
        #expect(s.stop() != nil)
    }

    @Test func aSlowlorisWritePayloadIsClosedByTheRequestTimeout() throws {
        let s = try NBDServerProcess(arguments: ["--request-timeout", "1"])
        let before = FileManager.default.contents(atPath: s.image)!.prefix(1 << 20)
        let c = try RawClient(port: s.port)
        #expect(c.negotiate())
        c.send(FloodClient.request(.write, offset: 0, length: 1 << 20, cookie: 1))
        var closed = false
        for _ in 0..<50 where !closed {
            c.send([0xee])
            Thread.sleep(forTimeInterval: 0.2)
            closed = !s.stderrLines(containing: "write's payload did not arrive within 1 s").isEmpty
        }
        #expect(closed, "\(s.stderr)")
        #expect(c.closedByServer())
        #expect(Self.wellBehavedReads(port: s.port, image: s.image, count: 50))
        // Nothing of the unfinished write reached the image.
        #expect(FileManager.default.contents(atPath: s.image)!.prefix(1 << 20) == before)
        #expect(s.stop() != nil)
    }

    @Test func thousandConnectionsHitTheCapAndAreReportedBriefly() throws {
        let s = try NBDServerProcess(arguments: ["--max-connections", "50"])
        // The well-behaved client connects first and keeps its place.
        let good = try RawClient(port: s.port)
        #expect(good.negotiate())
        var crowd: [RawClient] = []
        for _ in 0..<1000 { if let c = try? RawClient(port: s.port) { crowd.append(c) } }
        #expect(crowd.count == 1000)
        // 49 of them got a greeting; the rest are closed at once without one.
        var greeted = 0, refused = 0
        for c in crowd {
            var tv = timeval(tv_sec: 0, tv_usec: 500_000)
            setsockopt(c.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            if c.recv(18) != nil { greeted += 1 } else { refused += 1 }
        }
        #expect(greeted == 49 && refused == 951, "greeted \(greeted), refused \(refused)")
        for i in 0..<50 {
            good.send(good.request(NBD.Command.read.rawValue, offset: UInt64(i) * 4096, length: 4096, cookie: UInt64(i)))
            #expect(good.simpleReplyError() == 0)
            #expect(good.recv(4096) != nil)
        }
        let lines = s.stderrLines(containing: "refused connection from 127.0.0.1:")
        #expect(!lines.isEmpty && lines.count <= 10, "\(lines.count) refusal lines")
        #expect(lines.first?.contains("50 clients connected (--max-connections 50)") == true)
        #expect(s.stop() != nil)
    }

    @Test func acceptAtTheDescriptorLimitPausesInsteadOfSpinning() throws {
        // 64 descriptors: the server's own (stdio, epoll, eventfds, timerfds, listener, image)
        // and a few dozen clients.
        let s = try NBDServerProcess(fileLimit: 64)
        var crowd: [RawClient] = []
        for _ in 0..<120 { if let c = try? RawClient(port: s.port) { crowd.append(c) } }
        // The kernel accepted them all into the backlog; the server has run out of descriptors.
        Thread.sleep(forTimeInterval: 0.5)
        let ticks0 = try #require(s.cpuTicks)
        Thread.sleep(forTimeInterval: 2)
        let ticks1 = try #require(s.cpuTicks)
        // A spinning accept loop burns a whole core (about 200 ticks in 2 s); a paused one nothing.
        #expect(ticks1 - ticks0 < 100, "server used \(ticks1 - ticks0) ticks of CPU in 2 s at EMFILE")
        let failures = s.stderrLines(containing: "accept failed")
        #expect(!failures.isEmpty && failures.count < 40, "\(failures.count) accept-failure lines")
        #expect(failures.first?.contains("pausing new connections") == true)
        // Free the descriptors: accepting resumes and a client is served.
        crowd.removeAll()
        var served = false
        for _ in 0..<20 where !served {
            Thread.sleep(forTimeInterval: 0.3)
            served = Self.wellBehavedReads(port: s.port, image: s.image, count: 20)
        }
        #expect(served)
        #expect(s.stop() != nil)
    }

    @Test func sigtermWithClientsConnectedExits() throws {
        let s = try NBDServerProcess()
        var clients: [RawClient] = []
        for _ in 0..<5 { let c = try RawClient(port: s.port); #expect(c.negotiate()); clients.append(c) }
        let flood = try FloodClient(port: s.port)
        var bytes: [UInt8] = []
        for i in 0..<20 { bytes += FloodClient.request(.read, offset: 0, length: 32 << 20, cookie: UInt64(i)) }
        flood.send(bytes, within: 2)
        let stalled = try RawClient(port: s.port)   // mid-handshake
        _ = stalled.recv(18)
        Thread.sleep(forTimeInterval: 0.5)
        // Bounded wait for exit (a hang shows as nil); the time itself goes in the README.
        let seconds = s.stop(timeout: 5)
        #expect(seconds != nil, "no exit within 5 s of SIGTERM")
        #expect(s.process.terminationStatus == 0)
        for c in clients { #expect(c.closedByServer()) }
    }

    @Test func eachConnectionIsLoggedWithItsPeerAndCounts() throws {
        let s = try NBDServerProcess()
        let c = try RawClient(port: s.port)
        var address = sockaddr_in(), length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(c.fd, $0, &length) } }
        let peer = "127.0.0.1:\(UInt16(bigEndian: address.sin_port))"
        #expect(c.negotiate())
        for i in 0..<3 {
            c.send(c.request(NBD.Command.read.rawValue, offset: UInt64(i) * 4096, length: 4096, cookie: UInt64(i)))
            #expect(c.simpleReplyError() == 0)
            _ = c.recv(4096)
        }
        c.send(c.request(NBD.Command.write.rawValue, offset: 0, length: 4096) + [UInt8](repeating: 1, count: 4096))
        #expect(c.simpleReplyError() == 0)
        c.send(c.request(NBD.Command.read.rawValue, offset: 1 << 40, length: 512))
        #expect(c.simpleReplyError() == 22)
        c.send(c.request(NBD.Command.disconnect.rawValue, offset: 0, length: 0))
        #expect(c.closedByServer())
        var line: Substring?
        for _ in 0..<50 where line == nil {
            Thread.sleep(forTimeInterval: 0.1)
            line = s.stderrLines(containing: "client \(peer) disconnected").first
        }
        #expect(s.stderrLines(containing: "client \(peer) connected").count == 1)
        let text = String(line ?? "")
        #expect(text.contains(": 6 requests (3 reads 12 KiB, 1 write 4 KiB, 1 error reply)"), "\(s.stderr)")
        #expect(s.stop() != nil)
    }
}
