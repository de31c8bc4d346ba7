import Foundation
import Testing
import KVMScopeTestSupport
@testable import KVMScopeNBD

/// `nbd serve --upstream URI --upstream-reconnect SECONDS`: qemu-nbd killed (SIGKILL) under a
/// running qemu-io session and started again, not started again, or started on another image.
@Suite(.serialized) struct NBDUpstreamReconnectTests {
    let dir = TempDir()

    static func withoutRates(_ s: String) -> [Substring] { s.split(separator: "\n").filter { !$0.contains(" ops; ") } }

    func image(_ name: String, size: Int) -> String {
        let p = dir.file(name, "")
        #expect(truncate(p, off_t(size)) == 0)
        return p
    }

    func startQemuNbd(_ qemuNbd: String, _ image: String) throws -> BackgroundPeer {
        let sock = dir.path + "/up.sock"
        unlink(sock)   // the one a killed qemu-nbd left
        let peer = try BackgroundPeer(qemuNbd, ["-f", "raw", "-t", "-k", sock, image], socket: sock, stderrPath: dir.path + "/qemu-nbd.stderr")
        peer.stopSignal = SIGKILL
        return peer
    }

    func startProxy(_ upstream: BackgroundPeer, reconnect: String) throws -> BackgroundPeer {
        let sock = dir.path + "/k.sock"
        return try BackgroundPeer(CLIRunner.binary.path, ["nbd", "serve", "--upstream", upstream.uri, "--socket", sock,
                                                          "--upstream-reconnect", reconnect],
                                  socket: sock, stderrPath: dir.path + "/k.stderr")
    }

    /// qemu-io, started in the background; its result when it ends.
    final class Session: @unchecked Sendable {
        private let done = DispatchSemaphore(value: 0)
        private var result: ProcessResult?
        init(_ qemuIO: String, _ uri: String, _ commands: [String]) {
            DispatchQueue.global().async { [self] in
                result = try? runProcess(qemuIO, ["-f", "raw", uri] + commands.flatMap { ["-c", $0] })
                done.signal()
            }
        }
        func wait() -> ProcessResult? { _ = done.wait(timeout: .now() + 60); return result }
    }

    @Test func aRestartedUpstreamTakesTheRequestsThatWaitedAndNothingIsLost() throws {
        guard let qemuNbd = QemuTools.require("qemu-nbd"), let qemuIO = QemuTools.require("qemu-io") else { return }
        let img = image("d.img", size: 64 << 20)
        var upstream = try startQemuNbd(qemuNbd, img)
        let proxy = try startProxy(upstream, reconnect: "20")
        // One qemu-io connection through it all: a write, a pause during which qemu-nbd dies
        // and comes back, then a read of that write, another write and a flush.
        let session = Session(qemuIO, proxy.uri, ["write -P 0x11 0 4k", "sleep 2500", "read -P 0x11 0 4k", "write -P 0x22 64k 4k", "flush"])
        Thread.sleep(forTimeInterval: 1)
        upstream.stop(signal: SIGKILL)
        Thread.sleep(forTimeInterval: 0.5)
        upstream = try startQemuNbd(qemuNbd, img)
        let r = try #require(session.wait())
        #expect(Self.withoutRates(r.stdout) == ["wrote 4096/4096 bytes at offset 0", "read 4096/4096 bytes at offset 0",
                                                "wrote 4096/4096 bytes at offset 65536"], "\(r.stdout)\(r.stderr)\n\(proxy.stderr)")
        #expect(r.status == 0)
        #expect(proxy.stderr.contains("closed the connection; reconnecting; requests wait up to 20 s for it"), "\(proxy.stderr)")
        #expect(proxy.stderr.contains("reconnected") && proxy.stderr.contains("requests go on"), "\(proxy.stderr)")
        proxy.stop()
        let bytes = try #require(FileManager.default.contents(atPath: img))
        #expect(bytes[0..<4096].allSatisfy { $0 == 0x11 } && bytes[65536..<69632].allSatisfy { $0 == 0x22 })
    }

    @Test func anUpstreamThatStaysAwayFailsRequestsAfterTheDelayNotForEver() throws {
        guard let qemuNbd = QemuTools.require("qemu-nbd"), let qemuIO = QemuTools.require("qemu-io") else { return }
        let upstream = try startQemuNbd(qemuNbd, image("d.img", size: 16 << 20))
        let proxy = try startProxy(upstream, reconnect: "1.5")
        upstream.stop(signal: SIGKILL)
        let start = Date()
        let r = try runProcess(qemuIO, ["-f", "raw", proxy.uri, "-c", "read 0 4k", "-c", "read 0 4k"])
        let took = Date().timeIntervalSince(start)
        // The first read waited for the delay, the second (past it) failed at once.
        #expect(Self.withoutRates(r.stdout) == ["read failed: Input/output error", "read failed: Input/output error"], "\(r.stdout)\(r.stderr)")
        #expect(took >= 1.4 && took < 15, "took \(took) s")
        #expect(proxy.stderr.contains("reconnecting: cannot connect to"), "\(proxy.stderr)")
        proxy.stop()
    }

    @Test func anUpstreamBackWithAnotherDiskIsNotUsed() throws {
        guard let qemuNbd = QemuTools.require("qemu-nbd"), let qemuIO = QemuTools.require("qemu-io") else { return }
        let first = image("a.img", size: 16 << 20), other = image("b.img", size: 8 << 20)
        var upstream = try startQemuNbd(qemuNbd, first)
        let proxy = try startProxy(upstream, reconnect: "5")
        upstream.stop(signal: SIGKILL)
        upstream = try startQemuNbd(qemuNbd, other)
        let r = try runProcess(qemuIO, ["-f", "raw", proxy.uri, "-c", "write -P 0x33 0 4k"])
        #expect(Self.withoutRates(r.stdout) == ["write failed: Input/output error"], "\(r.stdout)\(r.stderr)")
        #expect(proxy.stderr.contains("came back with size 8388608 instead of 16777216 bytes: that is another disk, not used"), "\(proxy.stderr)")
        #expect(try #require(FileManager.default.contents(atPath: other)).prefix(4096).allSatisfy { $0 == 0 })   // nothing written to it
        // The attempts go on: the right upstream, started later, is taken.
        upstream.stop(signal: SIGKILL)
        upstream = try startQemuNbd(qemuNbd, first)
        // Past the delay requests fail at once until the upstream is back: wait for the log line.
        let deadline = Date().addingTimeInterval(20)
        while !proxy.stderr.contains("reconnected") && Date() < deadline { usleep(50_000) }
        let again = try runProcess(qemuIO, ["-f", "raw", proxy.uri, "-c", "write -P 0x44 0 4k", "-c", "read -P 0x44 0 4k"])
        #expect(Self.withoutRates(again.stdout) == ["wrote 4096/4096 bytes at offset 0", "read 4096/4096 bytes at offset 0"],
                "\(again.stdout)\(again.stderr)\n\(proxy.stderr)")
        proxy.stop()
        #expect(try #require(FileManager.default.contents(atPath: first)).prefix(4096).allSatisfy { $0 == 0x44 })
    }

    @Test func sigtermLetsRequestsWaitingForAReconnectionGo() throws {
        guard let qemuNbd = QemuTools.require("qemu-nbd"), let qemuIO = QemuTools.require("qemu-io") else { return }
        let upstream = try startQemuNbd(qemuNbd, image("d.img", size: 16 << 20))
        let proxy = try startProxy(upstream, reconnect: "3600")
        upstream.stop(signal: SIGKILL)
        let session = Session(qemuIO, proxy.uri, ["read 0 4k"])
        Thread.sleep(forTimeInterval: 1)   // the read is waiting for the upstream now
        proxy.stop(signal: SIGTERM)        // stop() gives it 10 s before SIGKILL
        #expect(!proxy.process.isRunning)
        #expect(proxy.process.terminationReason == .exit, "killed instead of stopping: \(proxy.stderr)")
        #expect(!proxy.stderr.contains("Cannot schedule tasks"), "\(proxy.stderr)")
        _ = session.wait()
    }
}
