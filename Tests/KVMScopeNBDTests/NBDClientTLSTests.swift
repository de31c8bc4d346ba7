import Foundation
import Testing
import KVMScopeTestSupport
import KVMScopeCore
@testable import KVMScopeNBD

/// kvmscope's NBD client through TLS (`nbds://`, `nbds+unix://`, X.509): qemu-nbd with QEMU's
/// tls-creds-x509 (which checks client certificates by default) and kvmscope's own
/// `nbd serve --tls require` as upstreams, `kvmscope io` and `nbd serve --upstream` as clients;
/// and the refusals: a server certificate from another CA, a server without TLS. Certificates
/// come from `NBDTLSTests.PKI` (openssl, for the run).
@Suite(.serialized) struct NBDClientTLSTests {
    let dir = TempDir()

    static func withoutRates(_ s: String) -> [Substring] { s.split(separator: "\n").filter { !$0.contains("ops/sec") } }

    /// qemu-nbd serving `image` on a UNIX socket through TLS (tls-creds-x509 endpoint=server;
    /// verify-peer defaults to on: clients need a certificate signed by the CA).
    func qemuNbdTLS(_ pki: NBDTLSTests.PKI, _ image: String) throws -> BackgroundPeer? {
        guard let qemuNbd = QemuTools.require("qemu-nbd") else { return nil }
        let sock = dir.path + "/q.sock"
        return try BackgroundPeer(qemuNbd, ["--object", "tls-creds-x509,id=tls0,dir=\(pki.server),endpoint=server", "--tls-creds", "tls0",
                                            // -t: keep serving after a client leaves (qemu-nbd exits after its first by default).
                                            "-t", "-f", "raw", "-k", sock, image], socket: sock, stderrPath: dir.path + "/q.stderr")
    }

    static func uri(_ peer: BackgroundPeer, _ certificates: String, hostname: String = "localhost") -> String {
        "nbds+unix:///?socket=\(peer.socket)&tls-certificates=\(certificates)&tls-hostname=\(hostname)"
    }

    @Test func kvmscopeIoAndTheProxyReadThroughTLSFromQemuNbd() throws {
        guard let qemuIO = QemuTools.require("qemu-io"), let pki = try NBDTLSTests.PKI() else { return }
        let image = dir.image("d.img", size: 16 << 20)
        guard let upstream = try qemuNbdTLS(pki, image) else { return }
        let uri = Self.uri(upstream, pki.client)
        let io = try CLIRunner.run(["io", "-f", "raw", uri, "-c", "write -P 0x42 1M 64k", "-c", "read -P 0x42 1M 64k", "-c", "flush"])
        #expect(io.status == 0 && Self.withoutRates(io.stdout) == ["wrote 65536/65536 bytes at offset 1048576", "read 65536/65536 bytes at offset 1048576"],
                "\(io.stdout)\(io.stderr)")
        // The proxy in the clear in front of the TLS upstream; QEMU's qemu-io reads through it.
        let sock = dir.path + "/k.sock"
        let proxy = try BackgroundPeer(CLIRunner.binary.path, ["nbd", "serve", "--upstream", uri, "--socket", sock], socket: sock,
                                       stderrPath: dir.path + "/k.stderr")
        let r = try runProcess(qemuIO, ["-f", "raw", proxy.uri, "-c", "read -P 0x42 1M 64k", "-c", "write -P 0x43 2M 4k"])
        #expect(r.status == 0 && Self.withoutRates(r.stdout) == ["read 65536/65536 bytes at offset 1048576", "wrote 4096/4096 bytes at offset 2097152"],
                "\(r.stdout)\(r.stderr)")
        proxy.stop()
        upstream.stop()
        let data = try #require(FileManager.default.contents(atPath: image))
        #expect(data[(1 << 20)..<((1 << 20) + 65536)].allSatisfy { $0 == 0x42 } && data[(2 << 20)..<((2 << 20) + 4096)].allSatisfy { $0 == 0x43 })
    }

    @Test func aServerCertificateFromAnotherCAIsRefusedWithOneLine() throws {
        guard let pki = try NBDTLSTests.PKI(), let other = try NBDTLSTests.PKI() else { return }
        guard let upstream = try qemuNbdTLS(pki, dir.image("d.img", size: 1 << 20)) else { return }
        let r = try CLIRunner.run(["io", "-f", "raw", Self.uri(upstream, other.client), "-c", "read 0 4k"])
        #expect(r.status == 1 && r.stdout.isEmpty, "\(r.stdout)")
        #expect(r.stderr.split(separator: "\n").count == 1 && r.stderr.contains("TLS handshake failed: the server's certificate is not signed by a trusted CA"),
                "\(r.stderr)")
        // The right CA, but a name the certificate does not carry (DNS:localhost, IP:127.0.0.1).
        let name = try CLIRunner.run(["io", "-f", "raw", Self.uri(upstream, pki.client, hostname: "example.org"), "-c", "read 0 4k"])
        #expect(name.status == 1 && name.stderr.contains("TLS handshake failed: the server's certificate is not for this host"), "\(name.stderr)")
        // A client without the certificate qemu-nbd's verify-peer asks for.
        let anonymous = try CLIRunner.run(["io", "-f", "raw", Self.uri(upstream, pki.anonymous), "-c", "read 0 4k"])
        #expect(anonymous.status == 1 && anonymous.stderr.split(separator: "\n").count == 1, "\(anonymous.stderr)")
        // The proxy does not start on it either.
        let proxy = try CLIRunner.run(["nbd", "serve", "--upstream", Self.uri(upstream, other.client), "--socket", dir.path + "/k.sock"])
        #expect(proxy.status == 1 && proxy.stderr.contains("TLS handshake failed"), "\(proxy.stderr)")
        upstream.stop()
    }

    @Test func kvmscopesOwnTLSServerByAddressAndByName() throws {
        guard let pki = try NBDTLSTests.PKI() else { return }
        let s = try NBDServerProcess(size: 4 << 20, arguments: ["-f", "raw", "--tls", "require", "--tls-certificates", pki.server])
        // By IP (the certificate's IP:127.0.0.1) and by name (DNS:localhost).
        for host in ["127.0.0.1", "localhost"] {
            let r = try CLIRunner.run(["io", "-f", "raw", "nbds://\(host):\(s.port)/?tls-certificates=\(pki.anonymous)",
                                       "-c", "write -P 0x21 0 4k", "-c", "read -P 0x21 0 4k"])
            #expect(r.status == 0 && Self.withoutRates(r.stdout) == ["wrote 4096/4096 bytes at offset 0", "read 4096/4096 bytes at offset 0"],
                    "\(host): \(r.stdout)\(r.stderr)")
        }
        // In the clear the server requires TLS: the client says what to use.
        let plain = try CLIRunner.run(["io", "-f", "raw", "nbd://127.0.0.1:\(s.port)/", "-c", "read 0 4k"])
        #expect(plain.status == 1 && plain.stderr.contains("requires TLS") && plain.stderr.contains("use nbds://"), "\(plain.stderr)")
        #expect(s.stop() != nil)
        #expect(s.stderrLines(containing: "(TLSv1.3, extended headers): 3 requests").count == 2, "\(s.stderr)")
    }

    @Test func aServerWithoutTLSIsRefusedNeverUsedInTheClear() throws {
        guard let pki = try NBDTLSTests.PKI() else { return }
        let s = try NBDServerProcess(size: 1 << 20, arguments: ["-f", "raw"])
        let r = try CLIRunner.run(["io", "-f", "raw", "nbds://127.0.0.1:\(s.port)/?tls-certificates=\(pki.anonymous)", "-c", "read 0 4k"])
        #expect(r.status == 1 && r.stdout.isEmpty && r.stderr.split(separator: "\n").count == 1, "\(r.stdout)\(r.stderr)")
        #expect(r.stderr.contains("does not offer TLS (NBD_REP_ERR_UNSUP to NBD_OPT_STARTTLS)") && r.stderr.contains("does not go on in the clear"),
                "\(r.stderr)")
        // nbdkit without --tls answers NBD_REP_ERR_POLICY.
        if let nbdkit = QemuTools.require("nbdkit") {
            let sock = dir.path + "/nk.sock"
            let kit = try BackgroundPeer(nbdkit, ["-f", "-U", sock, "memory", "size=1M"], socket: sock, stderrPath: dir.path + "/nk.stderr")
            kit.stopSignal = SIGKILL   // see NBDProxyTests.nbdkit
            let k = try CLIRunner.run(["io", "-f", "raw", "nbds+unix:///?socket=\(sock)&tls-certificates=\(pki.anonymous)", "-c", "read 0 4k"])
            #expect(k.status == 1 && k.stderr.hasSuffix(": refused NBD_OPT_STARTTLS by policy; the URI asks for TLS, so kvmscope does not go on in the clear\n"),
                    "\(k.stderr)")
            kit.stop()
        }
        #expect(s.stop() != nil)
        // Nothing went on in the clear: the connection ended in the handshake, on STARTTLS.
        #expect(s.stderrLines(containing: "disconnected after").count == 1 && s.stderrLines(containing: "without choosing an export").count == 1,
                "\(s.stderr)")
    }
}
