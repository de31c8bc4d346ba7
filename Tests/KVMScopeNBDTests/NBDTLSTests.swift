import Foundation
import Testing
import KVMScopeTestSupport
import KVMScopeCore
@testable import KVMScopeNBD

/// `nbd serve --tls`: QEMU's NBD client (qemu-io with tls-creds-x509 / tls-creds-psk objects)
/// and libnbd's nbdinfo through TLS, both modes, client certificates, and the attacks on
/// STARTTLS: a client that skips it, one that slips plaintext in behind it.
@Suite(.serialized) struct NBDTLSTests {
    typealias RawClient = NBDHostileClientTests.RawClient

    /// A CA, a server certificate for 127.0.0.1/localhost and a client certificate, made with
    /// openssl into QEMU's directory layouts: `server/` for nbd serve, `client/` for QEMU's
    /// client (ca-cert.pem, client-cert.pem, client-key.pem), `anonymous/` with the CA only.
    final class PKI {
        let dir = TempDir()
        var server: String { dir.path + "/server" }
        var client: String { dir.path + "/client" }
        var anonymous: String { dir.path + "/anonymous" }

        init?() throws {
            guard let openssl = QemuTools.require("openssl") else { return nil }
            for d in [server, client, anonymous] { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) }
            let p = dir.path
            func run(_ args: [String]) throws {
                let r = try runProcess(openssl, args)
                guard r.status == 0 else { throw KVMScopeError.cannotOpen(path: "openssl", reason: r.stderr) }
            }
            try run(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", p + "/ca-key.pem", "-out", server + "/ca-cert.pem",
                     "-days", "2", "-subj", "/CN=kvmscope test CA"])
            for (name, cn, ext) in [("server", "localhost", "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"),
                                    ("client", "kvmscope-test-client", "extendedKeyUsage=clientAuth\n")] {
                let ext = dir.file(name + ".ext", "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n" + ext)
                let out = name == "server" ? server : client
                try run(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", out + "/\(name)-key.pem", "-out", p + "/\(name).csr", "-subj", "/CN=\(cn)"])
                try run(["x509", "-req", "-in", p + "/\(name).csr", "-CA", server + "/ca-cert.pem", "-CAkey", p + "/ca-key.pem",
                         "-CAcreateserial", "-out", out + "/\(name)-cert.pem", "-days", "2", "-extfile", ext])
            }
            for d in [client, anonymous] { try FileManager.default.copyItem(atPath: server + "/ca-cert.pem", toPath: d + "/ca-cert.pem") }
        }
    }

    static func qemuTLS(_ qemuIO: String, port: Int, creds: String, _ commands: [String]) throws -> ProcessResult {
        try runProcess(qemuIO, ["--object", creds, "--image-opts", "driver=nbd,host=127.0.0.1,port=\(port),tls-creds=tls0"]
                       + commands.flatMap { ["-c", $0] })
    }

    static func withoutRates(_ s: String) -> [Substring] { s.split(separator: "\n").filter { !$0.contains("ops/sec") } }

    @Test func requiredX509WithQemuAndNbdinfoAndNoWayAroundIt() throws {
        guard let qemuIO = QemuTools.require("qemu-io"), let nbdinfo = QemuTools.require("nbdinfo"), let pki = try PKI() else { return }
        let s = try NBDServerProcess(size: 16 << 20, arguments: ["-f", "raw", "--tls-certificates", pki.server])
        let creds = "tls-creds-x509,id=tls0,endpoint=client,dir=\(pki.anonymous)"
        let tls = try Self.qemuTLS(qemuIO, port: s.port, creds: creds, ["write -P 0x42 0 64k", "read -P 0x42 0 64k"])
        #expect(tls.status == 0 && Self.withoutRates(tls.stdout) == ["wrote 65536/65536 bytes at offset 0", "read 65536/65536 bytes at offset 0"],
                "\(tls.stdout)\(tls.stderr)")
        // In the clear: QEMU's client asks for the export and gets NBD_REP_ERR_TLS_REQD.
        let plain = try runProcess(qemuIO, ["-f", "raw", "nbd://127.0.0.1:\(s.port)", "-c", "read 0 4k"])
        #expect(plain.status == 1 && plain.stderr.contains("TLS negotiation required before option 7 (go)"), "\(plain.stderr)")
        #expect(plain.stderr.contains("server reported: TLS is required: send NBD_OPT_STARTTLS first"))
        let info = try runProcess(nbdinfo, ["nbds://localhost:\(s.port)/?tls-certificates=\(pki.anonymous)"])
        #expect(info.status == 0 && info.stdout.contains("protocol: newstyle-fixed with TLS"), "\(info.stdout)\(info.stderr)")
        // A certificate from another CA is not trusted by the client.
        let other = try #require(try PKI())
        let wrong = try Self.qemuTLS(qemuIO, port: s.port, creds: "tls-creds-x509,id=tls0,endpoint=client,dir=\(other.anonymous)", ["read 0 4k"])
        #expect(wrong.status == 1)
        #expect(s.stop() != nil)
        #expect(s.stderr.contains("TLS required (X.509 certificate \(pki.server)/server-cert.pem)"), "\(s.stderr)")
        #expect(s.stderrLines(containing: "(TLSv1.3): 4 requests (1 read 64 KiB, 1 write 64 KiB").count == 1, "\(s.stderr)")
        // QEMU closes its TLS socket without close_notify: a normal end, not a violation.
        #expect(s.stderrLines(containing: "uncleanShutdown").isEmpty, "\(s.stderr)")
    }

    @Test func allowLetsBothKindsOfClientIn() throws {
        guard let qemuIO = QemuTools.require("qemu-io"), let pki = try PKI() else { return }
        let s = try NBDServerProcess(size: 16 << 20, arguments: ["-f", "raw", "--tls", "allow", "--tls-certificates", pki.server])
        let plain = try runProcess(qemuIO, ["-f", "raw", "nbd://127.0.0.1:\(s.port)", "-c", "write -P 0x31 0 4k"])
        #expect(plain.status == 0, "\(plain.stderr)")
        let tls = try Self.qemuTLS(qemuIO, port: s.port, creds: "tls-creds-x509,id=tls0,endpoint=client,dir=\(pki.anonymous)", ["read -P 0x31 0 4k"])
        #expect(tls.status == 0 && Self.withoutRates(tls.stdout) == ["read 4096/4096 bytes at offset 0"], "\(tls.stderr)")
        #expect(s.stop() != nil)
        #expect(s.stderrLines(containing: "(TLSv1.3)").count == 1 && s.stderrLines(containing: "disconnected after").count == 2, "\(s.stderr)")
    }

    @Test func clientCertificatesWithVerifyPeer() throws {
        guard let qemuIO = QemuTools.require("qemu-io"), let pki = try PKI() else { return }
        let s = try NBDServerProcess(size: 16 << 20, arguments: ["-f", "raw", "--tls-certificates", pki.server, "--tls-verify-peer"])
        let withCert = try Self.qemuTLS(qemuIO, port: s.port, creds: "tls-creds-x509,id=tls0,endpoint=client,dir=\(pki.client)", ["read 0 4k"])
        #expect(withCert.status == 0, "\(withCert.stderr)")
        let without = try Self.qemuTLS(qemuIO, port: s.port, creds: "tls-creds-x509,id=tls0,endpoint=client,dir=\(pki.anonymous)", ["read 0 4k"])
        #expect(without.status == 1)
        #expect(s.stop() != nil)
        #expect(s.stderrLines(containing: "TLS handshake failed: the client sent no certificate (--tls-verify-peer requires one); connection closed").count == 1, "\(s.stderr)")
    }

    @Test func preSharedKeysWithQemuAndNbdinfo() throws {
        guard let qemuIO = QemuTools.require("qemu-io"), let nbdinfo = QemuTools.require("nbdinfo") else { return }
        let dir = TempDir()
        try FileManager.default.createDirectory(atPath: dir.path + "/psk", withIntermediateDirectories: true)
        let keys = dir.file("psk/keys.psk", "alice:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n")
        let s = try NBDServerProcess(size: 16 << 20, arguments: ["-f", "raw", "--tls-psk", keys])
        let qemu = try Self.qemuTLS(qemuIO, port: s.port, creds: "tls-creds-psk,id=tls0,endpoint=client,dir=\(dir.path)/psk,username=alice",
                                    ["write -P 0x7 0 4k", "read -P 0x7 0 4k"])
        #expect(qemu.status == 0, "\(qemu.stderr)")
        let size = try runProcess(nbdinfo, ["--size", "nbds://alice@localhost:\(s.port)/?tls-psk-file=\(keys)"])
        #expect(size.status == 0 && size.stdout == "16777216\n", "\(size.stderr)")
        let bad = dir.file("bad.psk", "mallory:00112233445566778899aabbccddeeff\n")
        let refused = try runProcess(nbdinfo, ["--size", "nbds://mallory@localhost:\(s.port)/?tls-psk-file=\(bad)"])
        #expect(refused.status != 0)
        #expect(s.stop() != nil)
        #expect(s.stderrLines(containing: "(TLSv1.2)").count == 2, "\(s.stderr)")
        #expect(s.stderrLines(containing: "TLS handshake failed: unknown PSK identity (not in the --tls-psk file); connection closed").count == 1, "\(s.stderr)")
    }

    /// A man in the middle strips STARTTLS (the client then asks in the clear), or a client
    /// sends options in the clear right behind STARTTLS hoping they count as negotiated inside
    /// TLS. Neither gets through, and the server goes on serving.
    @Test func downgradeAndPlaintextInjectionAreRefused() throws {
        guard let pki = try PKI() else { return }
        let s = try NBDServerProcess(size: 1 << 20, arguments: ["-f", "raw", "--tls-certificates", pki.server])
        func option(_ code: UInt32, _ data: [UInt8] = []) -> [UInt8] {
            RawClient.be(NBD.optionMagic) + RawClient.be(code) + RawClient.be(UInt32(data.count)) + data
        }
        let go = option(7, RawClient.be(UInt32(0)) + RawClient.be(UInt16(0)))
        let stripped = try RawClient(port: s.port)
        #expect(stripped.recv(18) != nil)
        stripped.send(RawClient.be(UInt32(1)) + go + option(8))
        // Each is answered NBD_REP_ERR_TLS_REQD: magic, option, reply type, length, message.
        for code: UInt32 in [7, 8] {
            let header = stripped.recv(20) ?? []
            #expect(Array(header[8..<12]) == RawClient.be(code) && Array(header[12..<16]) == RawClient.be(NBD.Reply.errTLSReqd))
            let length = header.count == 20 ? Int(UInt32(bigEndian: header[16..<20].withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) })) : 0
            _ = stripped.recv(length)
        }
        stripped.send(option(1, Array("".utf8)))                   // NBD_OPT_EXPORT_NAME has no error reply: closed
        #expect(stripped.closedByServer())

        let injector = try RawClient(port: s.port)
        #expect(injector.recv(18) != nil)
        injector.send(RawClient.be(UInt32(1)) + option(5) + go)   // STARTTLS and GO in one segment
        let ack = injector.recv(20) ?? []
        #expect(ack.count == 20 && Array(ack[12..<16]) == RawClient.be(NBD.Reply.ack))
        #expect(injector.closedByServer())
        #expect(s.stderrLines(containing: "bytes sent in the clear after NBD_OPT_STARTTLS, before TLS (a plaintext injection attempt); connection closed").count == 1, "\(s.stderr)")
        #expect(s.stderrLines(containing: "asked for an export before NBD_OPT_STARTTLS, and TLS is required (--tls require); connection closed").count == 1)
        #expect(s.stop() != nil)
    }

    @Test func badCredentialsAreOneLineAndNothingListens() throws {
        let dir = TempDir()
        let img = dir.image("d.img", size: 1 << 20)
        let missing = try CLIRunner.run(["nbd", "serve", "-f", "raw", img, "--port", "0", "--tls-certificates", dir.path + "/nope"])
        #expect(missing.status == 1 && missing.stderr == "kvmscope: cannot read the certificate \(dir.path)/nope/server-cert.pem: no such file\n", "\(missing.stderr)")
        let junk = dir.file("junk.psk", "no colon here\n")
        let badPSK = try CLIRunner.run(["nbd", "serve", "-f", "raw", img, "--port", "0", "--tls-psk", junk])
        #expect(badPSK.status == 1 && badPSK.stderr.contains("junk.psk:1: expected IDENTITY:HEXKEY"), "\(badPSK.stderr)")
        let usage = try CLIRunner.run(["nbd", "serve", "-f", "raw", img, "--tls", "require"])
        #expect(usage.status == 2 && usage.stderr.contains("--tls needs credentials"))
        let mode = try CLIRunner.run(["nbd", "serve", "-f", "raw", img, "--tls", "maybe", "--tls-psk", junk])
        #expect(mode.status == 2 && mode.stderr.contains("--tls must be require or allow"))
    }
}
