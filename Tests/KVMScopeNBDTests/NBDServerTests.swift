import Foundation
import NIOCore
import NIOEmbedded
import Testing
import KVMScopeTestSupport
import KVMScopeCore
import KVMScopeFaults
@testable import KVMScopeNBD

/// Records what the server reports.
final class RecordingObserver: NBDServerObserver, @unchecked Sendable {
    private let lock = NSLock()
    private var _faults: [(InjectedFault, String, NBD.WireError?)] = []
    private var _violations: [String] = []
    var faults: [(InjectedFault, String, NBD.WireError?)] { lock.lock(); defer { lock.unlock() }; return _faults }
    var violations: [String] { lock.lock(); defer { lock.unlock() }; return _violations }
    private var _connected: [String] = []
    private var _disconnected: [(String, NBDConnectionSummary)] = []
    private var _refused: [(String, Int, Int)] = []
    private var _acceptFailures: [String] = []
    var connected: [String] { lock.lock(); defer { lock.unlock() }; return _connected }
    var disconnected: [(String, NBDConnectionSummary)] { lock.lock(); defer { lock.unlock() }; return _disconnected }
    var refused: [(String, Int, Int)] { lock.lock(); defer { lock.unlock() }; return _refused }
    var acceptFailures: [String] { lock.lock(); defer { lock.unlock() }; return _acceptFailures }
    func clientConnected(_ client: String) { lock.lock(); _connected.append(client); lock.unlock() }
    func clientDisconnected(_ client: String, _ summary: NBDConnectionSummary) {
        lock.lock(); _disconnected.append((client, summary)); lock.unlock()
    }
    func connectionRefused(_ client: String, limit: Int, alsoRefused: Int) {
        lock.lock(); _refused.append((client, limit, alsoRefused)); lock.unlock()
    }
    func acceptFailed(_ error: String, pauseSeconds: Double, failures: Int) {
        lock.lock(); _acceptFailures.append(error); lock.unlock()
    }
    func protocolViolation(_ client: String, _ message: String) { lock.lock(); _violations.append(message); lock.unlock() }
    func faultInjected(_ fault: InjectedFault, client: String, command: String, wireError: NBD.WireError?) {
        lock.lock(); _faults.append((fault, command, wireError)); lock.unlock()
    }
}

/// A kvmscope NBD server on 127.0.0.1 and an ephemeral port, stopped when the test ends.
final class TestServer {
    let dir = TempDir()
    let image: String
    let backend: FaultInjectingBackend
    let server: NBDServer
    let observer = RecordingObserver()
    let port: Int
    var uri: String { "nbd://127.0.0.1:\(port)" }

    /// - sparseData: make the image sparse (ftruncate) with data only at these (offset, bytes).
    init(rules: String? = nil, size: Int = 16 << 20, fill: Bool = false, socket: Bool = false,
         limits: NBDServerLimits = NBDServerLimits(), sparseData: [(Int64, Int)]? = nil) throws {
        let dir = self.dir
        if let sparseData {
            image = sparseImage(dir, "disk.img", size: Int64(size), data: sparseData)
        } else {
            image = dir.image("disk.img", size: size, fill: fill)
        }
        let config = rules.map { BlkdebugConfigReader().parse($0, file: "rules.cfg").config }
        backend = FaultInjectingBackend(image: try RawImageFile(path: image), rules: config)
        var listen: [NBDServer.Listen] = [.tcp(host: "127.0.0.1", port: 0)]
        if socket { listen.append(.unix(path: dir.path + "/nbd.sock")) }
        server = NBDServer(export: NBDExport(name: "disk", backend: backend), listen: listen, observer: observer, threads: 2,
                           limits: limits)
        try server.start()
        port = server.tcpPort!
    }

    deinit { server.shutdown() }
}

@Suite(.serialized) struct NBDServerWithRealClientsTests {
    @Test func qemuIOWritesAndReadsWithAndWithoutRules() throws {
        guard let qemuIO = QemuTools.require("qemu-io") else { return }
        let s = try TestServer(rules: "[inject-error]\nevent = \"none\"\niotype = \"write\"\nsector = \"2048\"\nerrno = \"5\"\n")
        let r = try runProcess(qemuIO, ["-f", "raw", s.uri, "-c", "write -P 0xab 0 4k", "-c", "read -P 0xab 0 4k",
                                        "-c", "write -P 0xcd 1M 4k", "-c", "read -P 0 1M 4k", "-c", "write -f -P 0x5a 2M 64k",
                                        "-c", "flush", "-c", "write -z 3M 1M", "-c", "discard 4M 1M"])
        let lines = r.stdout.split(separator: "\n").filter { !$0.contains(" ops; ") }
        #expect(lines == ["wrote 4096/4096 bytes at offset 0", "read 4096/4096 bytes at offset 0",
                          "write failed: Input/output error", "read 4096/4096 bytes at offset 1048576",
                          "wrote 65536/65536 bytes at offset 2097152", "wrote 1048576/1048576 bytes at offset 3145728",
                          "discard 1048576/1048576 bytes at offset 4194304"])
        #expect(r.status == 1)
        #expect(s.observer.faults.count == 1)
        let (fault, command, wire) = s.observer.faults[0]
        #expect(command == "write" && fault.offset == 1 << 20 && fault.length == 4096 && wire == .eio && fault.rule.location.line == 1)
        // What the client wrote is in the image.
        let data = FileManager.default.contents(atPath: s.image)!
        #expect(data[0..<4096].allSatisfy { $0 == 0xab } && data[(2 << 20)..<((2 << 20) + 65536)].allSatisfy { $0 == 0x5a })
        #expect(data[(1 << 20)..<((1 << 20) + 4096)].allSatisfy { $0 == 0 })   // the failed write changed nothing
    }

    @Test func errnosAreMappedToNBDValues() throws {
        guard let qemuIO = QemuTools.require("qemu-io") else { return }
        let s = try TestServer(rules: """
        [inject-error]
        event = "none"
        iotype = "write"
        sector = "0"
        errno = "122"
        [inject-error]
        event = "none"
        iotype = "read"
        sector = "0"
        errno = "3"
        [inject-error]
        event = "none"
        iotype = "read"
        sector = "8"
        errno = "1"
        """)
        let r = try runProcess(qemuIO, ["-f", "raw", s.uri, "-c", "write 0 512", "-c", "read 0 512", "-c", "read 4k 512"])
        #expect(r.stdout == "write failed: No space left on device\nread failed: Input/output error\nread failed: Operation not permitted\n")
        #expect(s.observer.faults.map { $0.2 } == [.enospc, .eio, .eperm])
        #expect(s.observer.faults.map(\.0.errno) == [122, 3, 1])
    }

    @Test func qemuImgConvertAndCompareAWholeImage() throws {
        guard let qemuImg = QemuTools.require("qemu-img") else { return }
        let s = try TestServer(size: 16 << 20)
        let src = s.dir.image("src.img", size: 16 << 20, fill: true)
        let convert = try runProcess(qemuImg, ["convert", "-n", "-f", "raw", "-O", "raw", src, s.uri])
        #expect(convert.status == 0, "\(convert.stderr)")
        let compare = try runProcess(qemuImg, ["compare", "-f", "raw", "-F", "raw", src, s.uri])
        #expect(compare.status == 0 && compare.stdout == "Images are identical.\n", "\(compare.stdout)\(compare.stderr)")
        #expect(FileManager.default.contents(atPath: src) == FileManager.default.contents(atPath: s.image))
        let info = try runProcess(qemuImg, ["info", "--output=json", s.uri])
        #expect(info.stdout.contains("\"virtual-size\": 16777216"))
    }

    @Test func severalClientsAtOnceAndAUnixSocket() throws {
        guard let qemuIO = QemuTools.require("qemu-io") else { return }
        let s = try TestServer(socket: true)
        let group = DispatchGroup()
        var results = [ProcessResult?](repeating: nil, count: 4)
        let lock = NSLock()
        for i in 0..<4 {
            group.enter()
            DispatchQueue.global().async {
                let target = i % 2 == 0 ? s.uri : "nbd+unix:///?socket=\(s.dir.path)/nbd.sock"
                let r = try? runProcess(qemuIO, ["-f", "raw", target, "-c", "write -P \(i + 1) \(i)M 1M", "-c", "read -P \(i + 1) \(i)M 1M"])
                lock.lock(); results[i] = r; lock.unlock()
                group.leave()
            }
        }
        #expect(group.wait(timeout: .now() + 60) == .success)
        for (i, r) in results.enumerated() {
            #expect(r?.status == 0 && r?.stdout.contains("read 1048576/1048576 bytes at offset \(i << 20)") == true, "\(r?.stdout ?? "") \(r?.stderr ?? "")")
        }
    }

    @Test func delayedRepliesArriveLate() throws {
        guard let qemuIO = QemuTools.require("qemu-io") else { return }
        let s = try TestServer(rules: "[inject-error]\nevent = \"none\"\niotype = \"read\"\nerrno = \"0\"\ndelay = \"300ms\"\n")
        let t0 = Date()
        let r = try runProcess(qemuIO, ["-f", "raw", s.uri, "-c", "read 0 4k"])
        #expect(r.status == 0 && Date().timeIntervalSince(t0) >= 0.3)
        #expect(s.observer.faults.first?.0.delayNanoseconds == 300_000_000 && s.observer.faults.first?.2 == nil)
    }
}

/// Clients that break the protocol: the server must close that connection, write nothing
/// outside the image, and go on serving the next client.
@Suite(.serialized) struct NBDHostileClientTests {
    /// Blocking socket client with a receive timeout.
    final class RawClient {
        private(set) var fd: Int32
        init(port: Int) throws {
            fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var tv = timeval(tv_sec: 5, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = in_port_t(UInt16(port).bigEndian)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            guard rc == 0 else { throw KVMScopeError.cannotOpen(path: "nbd server", reason: "connect failed") }
        }
        /// Closes the socket once. A second close(2) of the same number could close a descriptor
        /// the kernel has since handed to someone else in this process (NIO's event loops of the
        /// in-process servers: epoll_ctl then fails with EBADF and NIO traps).
        func close() {
            guard fd >= 0 else { return }
            _ = Glibc.close(fd)
            fd = -1
        }
        deinit { close() }
        func send(_ bytes: [UInt8]) { SocketBytes.send(fd, bytes) }
        /// Exactly n bytes, or nil on EOF/timeout.
        func recv(_ n: Int) -> [UInt8]? { SocketBytes.recv(fd, n) }
        /// True when the server closed the connection (EOF within the timeout).
        func closedByServer() -> Bool {
            var b: UInt8 = 0
            return Glibc.recv(fd, &b, 1, 0) == 0
        }
        static func be<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.bigEndian) { Array($0) } }

        /// Greeting + client flags + NBD_OPT_GO for the default export.
        func negotiate() -> Bool {
            guard let greeting = recv(18), greeting[0..<8] == Self.be(NBD.nbdMagic)[...] else { return false }
            send(Self.be(UInt32(3)))
            send(Self.be(NBD.optionMagic) + Self.be(UInt32(7)) + Self.be(UInt32(6)) + Self.be(UInt32(0)) + Self.be(UInt16(0)))
            while true {
                guard let head = recv(20) else { return false }
                let type = head[12..<16].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
                let len = Int(head[16..<20].reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
                guard recv(len) != nil || len == 0 else { return false }
                if type == NBD.Reply.ack { return true }
                if type & NBD.Reply.errorBit != 0 { return false }
            }
        }
        func request(_ type: UInt16, offset: UInt64, length: UInt32, cookie: UInt64 = 7, flags: UInt16 = 0) -> [UInt8] {
            Self.be(NBD.requestMagic) + Self.be(flags) + Self.be(type) + Self.be(cookie) + Self.be(offset) + Self.be(length)
        }
        /// Simple reply → error value.
        func simpleReplyError() -> UInt32? {
            guard let r = recv(16) else { return nil }
            return r[4..<8].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        }
    }

    func serverStillServes(_ s: TestServer) throws {
        guard let qemuIO = QemuTools.require("qemu-io") else { return }
        let r = try runProcess(qemuIO, ["-f", "raw", s.uri, "-c", "write -P 0x77 0 4k", "-c", "read -P 0x77 0 4k"], timeout: 30)
        #expect(r.status == 0, "server no longer serves: \(r.stdout)\(r.stderr)")
    }

    @Test func garbageMagicClosesOnlyThatConnection() throws {
        let s = try TestServer()
        let c = try RawClient(port: s.port)
        #expect(c.recv(18) != nil)
        c.send(RawClient.be(UInt32(1)))
        c.send(Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        #expect(c.closedByServer())
        #expect(s.observer.violations.contains { $0.hasPrefix("option without IHAVEOPT magic") })
        // Bad request magic after a good negotiation.
        let d = try RawClient(port: s.port)
        #expect(d.negotiate())
        d.send([UInt8](repeating: 0x41, count: 64))
        #expect(d.closedByServer())
        try serverStillServes(s)
    }

    @Test func unknownClientFlagsAndHugeOptionsAreRefused() throws {
        let s = try TestServer()
        let c = try RawClient(port: s.port)
        _ = c.recv(18)
        c.send(RawClient.be(UInt32(0x80)))
        #expect(c.closedByServer())
        let d = try RawClient(port: s.port)
        _ = d.recv(18)
        d.send(RawClient.be(UInt32(1)) + RawClient.be(NBD.optionMagic) + RawClient.be(UInt32(7)) + RawClient.be(UInt32(0xFFFF_FFF0)))
        #expect(d.closedByServer())
        try serverStillServes(s)
    }

    @Test func oversizedAndOutOfRangeRequestsGetErrorsAndTheConnectionGoesOn() throws {
        let s = try TestServer(size: 1 << 20)
        let c = try RawClient(port: s.port)
        #expect(c.negotiate())
        // Read past the end: EINVAL. Write past the end: ENOSPC. Offset overflow: EINVAL.
        c.send(c.request(NBD.Command.read.rawValue, offset: 1 << 20, length: 512))
        #expect(c.simpleReplyError() == 22)
        c.send(c.request(NBD.Command.write.rawValue, offset: (1 << 20) - 256, length: 512) + [UInt8](repeating: 0xee, count: 512))
        #expect(c.simpleReplyError() == 28)
        c.send(c.request(NBD.Command.trim.rawValue, offset: UInt64.max - 10, length: 512))
        #expect(c.simpleReplyError() == 22)
        // A 64 MiB write payload (over the 32 MiB maximum) is skipped, not buffered: EINVAL.
        c.send(c.request(NBD.Command.write.rawValue, offset: 0, length: 64 << 20))
        let chunk = [UInt8](repeating: 0xee, count: 1 << 20)
        for _ in 0..<64 { c.send(chunk) }
        #expect(c.simpleReplyError() == 22)
        // Unknown command and unknown flag: EINVAL.
        c.send(c.request(42, offset: 0, length: 0))
        #expect(c.simpleReplyError() == 22)
        c.send(c.request(NBD.Command.flush.rawValue, offset: 0, length: 0, flags: 1 << 4))
        #expect(c.simpleReplyError() == 22)
        // And still a working connection: a read returns the (zero) data.
        c.send(c.request(NBD.Command.read.rawValue, offset: 0, length: 512))
        #expect(c.simpleReplyError() == 0)
        #expect(c.recv(512) == [UInt8](repeating: 0, count: 512))
        // Nothing was written anywhere: the image is all zeroes and has its size.
        let data = FileManager.default.contents(atPath: s.image)!
        #expect(data.count == 1 << 20 && data.allSatisfy { $0 == 0 })
    }

    @Test func disconnectMidWriteAppliesNothing() throws {
        let s = try TestServer(size: 4 << 20)
        let c = try RawClient(port: s.port)
        #expect(c.negotiate())
        c.send(c.request(NBD.Command.write.rawValue, offset: 1 << 20, length: 1 << 20) + [UInt8](repeating: 0xee, count: 100_000))
        c.close()   // vanish mid-payload
        Thread.sleep(forTimeInterval: 0.2)
        let data = FileManager.default.contents(atPath: s.image)!
        #expect(data.allSatisfy { $0 == 0 })
        try serverStillServes(s)
    }
}

/// The codecs alone, on an EmbeddedChannel (no sockets).
@Suite struct NBDCodecTests {
    func channel(size: Int = 1 << 20, rules: String? = nil) throws -> (EmbeddedChannel, TempDir) {
        let dir = TempDir()
        let img = dir.image("d.img", size: size)
        let config = rules.map { BlkdebugConfigReader().parse($0, file: "r.cfg").config }
        let backend = FaultInjectingBackend(image: try RawImageFile(path: img), rules: config)
        let ch = EmbeddedChannel()
        try ch.pipeline.syncOperations.configureNBDServerPipeline(
            configuration: NBDServerConfiguration(export: NBDExport(name: "disk", backend: backend)))
        try ch.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return (ch, dir)
    }

    func outbound(_ ch: EmbeddedChannel) throws -> [UInt8] {
        var all: [UInt8] = []
        while var b = try ch.readOutbound(as: ByteBuffer.self) { all += b.readBytes(length: b.readableBytes)! }
        return all
    }

    func be<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.bigEndian) { Array($0) } }

    @Test func greetingGoAndStructuredRead() throws {
        let (ch, dir) = try channel(rules: "[inject-error]\nevent = \"none\"\niotype = \"read\"\nsector = \"8\"\n")
        _ = dir
        #expect(try outbound(ch) == be(NBD.nbdMagic) + be(NBD.optionMagic) + be(UInt16(3)))
        try ch.writeInbound(ByteBuffer(bytes: be(UInt32(3))))
        // STRUCTURED_REPLY → ACK.
        try ch.writeInbound(ByteBuffer(bytes: be(NBD.optionMagic) + be(UInt32(8)) + be(UInt32(0))))
        #expect(try outbound(ch) == be(NBD.optionReplyMagic) + be(UInt32(8)) + be(UInt32(1)) + be(UInt32(0)))
        // GO for "disk" asking for NBD_INFO_BLOCK_SIZE.
        let name = Array("disk".utf8)
        try ch.writeInbound(ByteBuffer(bytes: be(NBD.optionMagic) + be(UInt32(7)) + be(UInt32(4 + 4 + 2 + 2)) + be(UInt32(4)) + name + be(UInt16(1)) + be(UInt16(3))))
        ch.embeddedEventLoop.run()   // the pipeline switches to the transmission handlers
        let go = try outbound(ch)
        let flags: UInt16 = 1 | 4 | 8 | 32 | 64 | 128 | 256
        let export = be(NBD.optionReplyMagic) + be(UInt32(7)) + be(UInt32(3)) + be(UInt32(12)) + be(UInt16(0)) + be(UInt64(1 << 20)) + be(flags)
        #expect(Array(go.prefix(export.count)) == export)
        let sizes = be(NBD.optionReplyMagic) + be(UInt32(7)) + be(UInt32(3)) + be(UInt32(14)) + be(UInt16(3)) + be(UInt32(1)) + be(UInt32(4096)) + be(UInt32(32 << 20))
        #expect(Array(go.dropFirst(export.count).prefix(sizes.count)) == sizes)
        #expect(Array(go.suffix(20)) == be(NBD.optionReplyMagic) + be(UInt32(7)) + be(UInt32(1)) + be(UInt32(0)))
        // A read: one OFFSET_DATA chunk with DONE.
        try ch.writeInbound(ByteBuffer(bytes: be(NBD.requestMagic) + be(UInt16(0)) + be(UInt16(0)) + be(UInt64(99)) + be(UInt64(0)) + be(UInt32(16))))
        ch.pipeline.fireChannelReadComplete()
        #expect(try outbound(ch) == be(NBD.structuredReplyMagic) + be(UInt16(1)) + be(UInt16(1)) + be(UInt64(99)) + be(UInt32(24)) + be(UInt64(0)) + [UInt8](repeating: 0, count: 16))
        // An injected read error: an ERROR chunk (never a simple reply once structured replies are on).
        try ch.writeInbound(ByteBuffer(bytes: be(NBD.requestMagic) + be(UInt16(0)) + be(UInt16(0)) + be(UInt64(100)) + be(UInt64(4096)) + be(UInt32(512))))
        let err = try outbound(ch)
        #expect(Array(err.prefix(20)) == be(NBD.structuredReplyMagic) + be(UInt16(1)) + be(UInt16(0x8001)) + be(UInt64(100)) + be(UInt32(6 + 19)))
        #expect(Array(err[20..<26]) == be(UInt32(5)) + be(UInt16(19)))
        #expect(String(decoding: err[26...], as: UTF8.self) == "injected by r.cfg:1")
    }

    @Test func exportNameListAndUnsupportedOptions() throws {
        let (ch, dir) = try channel()
        _ = dir
        _ = try outbound(ch)
        try ch.writeInbound(ByteBuffer(bytes: be(UInt32(1))))      // fixed newstyle, zero padding wanted
        try ch.writeInbound(ByteBuffer(bytes: be(NBD.optionMagic) + be(UInt32(3)) + be(UInt32(0))))
        let list = try outbound(ch)
        #expect(list == be(NBD.optionReplyMagic) + be(UInt32(3)) + be(UInt32(2)) + be(UInt32(8)) + be(UInt32(4)) + Array("disk".utf8)
                + be(NBD.optionReplyMagic) + be(UInt32(3)) + be(UInt32(1)) + be(UInt32(0)))
        try ch.writeInbound(ByteBuffer(bytes: be(NBD.optionMagic) + be(UInt32(99)) + be(UInt32(0))))
        let unsup = try outbound(ch)
        #expect(Array(unsup[8..<16]) == be(UInt32(99)) + be(NBD.Reply.errUnsup))
        try ch.writeInbound(ByteBuffer(bytes: be(NBD.optionMagic) + be(UInt32(1)) + be(UInt32(4)) + Array("disk".utf8)))
        let reply = try outbound(ch)
        #expect(reply.count == 8 + 2 + 124)
        #expect(Array(reply.prefix(8)) == be(UInt64(1 << 20)))
    }
}
