import Foundation
import Testing
import KVMScopeTestSupport

/// The kvmscope binary under test (KVMSCOPE_TEST_BINARY: another build, to show the test fails there).
private var kvmscope: String {
    ProcessInfo.processInfo.environment["KVMSCOPE_TEST_BINARY"] ?? CLIRunner.binary.path
}

/// A blocking NBD client on a TCP socket: fixed newstyle, NBD_OPT_GO, simple replies.
private final class Connection {
    let fd: Int32
    init?(port: Int) {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var tv = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard rc == 0, recv(18) != nil else { close(fd); return nil }
        // Client flags (fixed newstyle, no zeroes), then GO for the default export.
        send(be(UInt32(3)) + be(UInt64(0x4948_4156_454f_5054)) + be(UInt32(7)) + be(UInt32(6)) + be(UInt32(0)) + be(UInt16(0)))
        while true {
            guard let head = recv(20) else { close(fd); return nil }
            let type = head[12..<16].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            let length = Int(head[16..<20].reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
            if length > 0 && recv(length) == nil { close(fd); return nil }
            if type == 1 { break }
            if type & (1 << 31) != 0 { close(fd); return nil }
        }
    }
    deinit { close(fd) }

    func be<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.bigEndian) { Array($0) } }
    func send(_ bytes: [UInt8]) { SocketBytes.send(fd, bytes) }
    func recv(_ n: Int) -> [UInt8]? { SocketBytes.recv(fd, n) }
    /// Sends one request and returns the simple reply's error (nil: no reply, or another cookie).
    func request(_ type: UInt16, cookie: UInt64, offset: UInt64 = 0, payload: [UInt8] = [], length: UInt32 = 0) -> UInt32? {
        send(be(UInt32(0x2560_9513)) + be(UInt16(0)) + be(type) + be(cookie) + be(offset) + be(payload.isEmpty ? length : UInt32(payload.count)) + payload)
        guard let r = recv(16), r[8..<16].reduce(UInt64(0), { $0 << 8 | UInt64($1) }) == cookie else { return nil }
        return r[4..<8].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
    }
}

/// NBD_FLAG_CAN_MULTI_CONN's promise (proto.md, "Transmission flags": "the effects of
/// NBD_CMD_FLUSH ... MUST be visible across all connections"): a write answered on connection A
/// is made durable by a flush on connection B. Seen in the server's system calls: B's flush
/// reply comes only after an fdatasync of the image that follows A's pwrite and A's reply. A
/// server that kept dirty state per connection (a flush that only syncs what its own connection
/// wrote, or skips the sync because its connection wrote nothing) fails here.
@Suite(.serialized) struct NBDMultiConnFlushTests {
    @Test func aFlushOnOneConnectionSyncsWritesAnsweredOnAnother() throws {
        guard let strace = QemuTools.path("strace") else {
            Issue.record("strace not found in PATH: apt-get install -y strace")
            return
        }
        let dir = TempDir()
        let img = dir.image("disk.img", size: 4 << 20)
        let log = dir.path + "/strace.log"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: strace)
        // -y: descriptors with their paths, so the sync is seen to be on the image.
        process.arguments = ["-f", "-qq", "-y", "-o", log, "-e", "trace=pwrite64,pwritev,fdatasync,fsync,write,writev,sendmsg",
                             kvmscope, "nbd", "serve", "-f", "raw", img, "--port", "0", "--quiet"]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        let tracer = process.processIdentifier
        DispatchQueue.global().asyncAfter(deadline: .now() + 60) { kill(tracer, SIGKILL) }
        let uri = out.fileHandleForReading.readNextLine().trimmingCharacters(in: .whitespacesAndNewlines)
        guard let port = uri.split(separator: ":").last.flatMap({ Int($0) }), let a = Connection(port: port), let b = Connection(port: port) else {
            Issue.record("server did not start or negotiate: '\(uri)'")
            kill(tracer, SIGKILL)
            return
        }
        // Cookies "AAAAAAAA" and "BBBBBBBB" make each reply recognisable in the trace.
        let payload = [UInt8](repeating: 0x57, count: 65536)   // "WWWW..."
        #expect(a.request(1, cookie: 0x4141_4141_4141_4141, offset: 1 << 20, payload: payload) == 0)
        #expect(b.request(3, cookie: 0x4242_4242_4242_4242) == 0)
        // SIGKILL the server (strace's child): no orderly shutdown, no sync at exit.
        let children = (try? String(contentsOfFile: "/proc/\(tracer)/task/\(tracer)/children", encoding: .utf8)) ?? ""
        for pid in children.split(separator: " ").compactMap({ Int32($0) }) { kill(pid, SIGKILL) }
        process.waitUntilExit()

        var events: [String] = []
        for l in ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n") {
            if l.contains("pwrite64(") && l.contains("disk.img>") && l.contains("\"WWWW") { events.append("write A") }
            else if (l.contains("fdatasync(") || l.contains("fsync(")) && l.contains("disk.img>") { events.append("sync image") }
            else if l.contains("AAAAAAAA") { events.append("reply A") }
            else if l.contains("BBBBBBBB") { events.append("reply B") }
        }
        #expect(events == ["write A", "reply A", "sync image", "reply B"], "\(events)")
        // And the bytes are in the image after the kill.
        let bytes = FileManager.default.contents(atPath: img) ?? Data()
        #expect(bytes.count == 4 << 20 && bytes[(1 << 20)..<((1 << 20) + 65536)].allSatisfy { $0 == 0x57 })
    }
}
