import Foundation
import KVMScopeCore
import NIOCore
import NIOSSL

/// TLS for `nbd serve` (proto.md "TLS support"): the client sends NBD_OPT_STARTTLS, the server
/// acknowledges it in the clear, and the rest of the connection — the remaining options and the
/// whole transmission phase — runs inside TLS. The credentials are read the way QEMU's
/// `tls-creds-x509`/`tls-creds-psk` objects and nbdkit's `--tls-certificates`/`--tls-psk` read
/// them, so one set of files serves qemu-nbd, nbdkit and kvmscope.
public struct NBDTLS: Sendable {
    public enum Mode: String, Sendable, CaseIterable {
        /// Every client must start TLS before anything but NBD_OPT_ABORT (NBD_REP_ERR_TLS_REQD;
        /// NBD_OPT_EXPORT_NAME, which has no error reply, closes the connection).
        case require
        /// Clients may start TLS or not.
        case allow
    }

    public let mode: Mode
    let context: NIOSSLContext
    /// For the start-up line: "X.509 certificate DIR/server-cert.pem" or "PSK, 2 identities from FILE".
    public let summary: String

    /// QEMU's x509 directory layout (crypto/tlscredsx509.c; nbdkit's the same): `server-cert.pem`
    /// (the certificate, then its chain), `server-key.pem`, and `ca-cert.pem`, which checks the
    /// clients' certificates when `verifyPeer` asks for them (QEMU's verify-peer=on).
    public static func x509(directory: String, verifyPeer: Bool, mode: Mode) throws -> NBDTLS {
        let certPath = directory + "/server-cert.pem", keyPath = directory + "/server-key.pem"
        let caPath = directory + "/ca-cert.pem"
        let chain: [NIOSSLCertificate]
        let key: NIOSSLPrivateKey
        do { chain = try NIOSSLCertificate.fromPEMFile(certPath) } catch {
            throw NBDServerError.tls("cannot read the certificate \(certPath): \(Self.reason(error, certPath))")
        }
        guard !chain.isEmpty else { throw NBDServerError.tls("\(certPath) holds no PEM certificate") }
        do { key = try NIOSSLPrivateKey(file: keyPath, format: .pem) } catch {
            throw NBDServerError.tls("cannot read the private key \(keyPath): \(Self.reason(error, keyPath))")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) },
                                                                     privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        if verifyPeer {
            guard FileManager.default.fileExists(atPath: caPath) else {
                throw NBDServerError.tls("--tls-verify-peer checks client certificates against \(caPath), which does not exist")
            }
            configuration.trustRoots = .file(caPath)
            // A client certificate names a client, not a host: its chain is checked, no hostname.
            configuration.certificateVerification = .noHostnameVerification
        }
        let context: NIOSSLContext
        do { context = try NIOSSLContext(configuration: configuration) } catch {
            throw NBDServerError.tls("cannot use the certificate and key in \(directory): \(error)")
        }
        return NBDTLS(mode: mode, context: context,
                      summary: "X.509 certificate \(certPath)" + (verifyPeer ? ", client certificates checked against \(caPath)" : ""))
    }

    /// A PSK file as QEMU's `tls-creds-psk` (`keys.psk`) and nbdkit's `--tls-psk` read it, the
    /// format GnuTLS' psktool writes: one `IDENTITY:HEXKEY` per line. TLS 1.2 only: BoringSSL
    /// offers PSK cipher suites (ECDHE-PSK) in TLS 1.2 and not TLS 1.3's external PSKs.
    public static func psk(file: String, mode: Mode) throws -> NBDTLS {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw NBDServerError.tls("cannot read the PSK file \(file): \(KVMScopeError.systemMessage(errno))")
        }
        guard data.count <= 1 << 20 else { throw NBDServerError.tls("\(file) is over 1 MiB: not a PSK file") }
        var keys: [String: [UInt8]] = [:]
        for (n, raw) in String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let colon = line.lastIndex(of: ":"), colon != line.startIndex,
                  let key = hexBytes(line[line.index(after: colon)...]), !key.isEmpty, key.count <= 256 else {
                throw NBDServerError.tls("\(file):\(n + 1): expected IDENTITY:HEXKEY (as psktool writes it)")
            }
            keys[String(line[..<colon])] = key
        }
        guard !keys.isEmpty else { throw NBDServerError.tls("\(file) holds no IDENTITY:HEXKEY line") }
        var configuration = TLSConfiguration.makePreSharedKeyConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        configuration.maximumTLSVersion = .tlsv12
        let table = keys
        configuration.pskServerProvider = { context in
            guard let key = table[context.clientIdentity], key.count <= context.maxPSKLength else {
                throw NBDServerError.tls("unknown PSK identity '\(context.clientIdentity)'")
            }
            var secure = NIOSSLSecureBytes()
            secure.append(key)
            return PSKServerIdentityResponse(key: secure)
        }
        let context: NIOSSLContext
        do { context = try NIOSSLContext(configuration: configuration) } catch {
            throw NBDServerError.tls("cannot set up TLS-PSK: \(error)")
        }
        return NBDTLS(mode: mode, context: context, summary: "PSK, \(keys.count) identit\(keys.count == 1 ? "y" : "ies") from \(file)")
    }

    private static func hexBytes(_ s: Substring) -> [UInt8]? {
        guard s.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        var i = s.startIndex
        while i < s.endIndex {
            let j = s.index(i, offsetBy: 2)
            guard let b = UInt8(s[i..<j], radix: 16) else { return nil }
            out.append(b)
            i = j
        }
        return out
    }

    private static func reason(_ error: Error, _ path: String) -> String {
        FileManager.default.fileExists(atPath: path) ? "\(error)" : "no such file"
    }

    /// Why a TLS handshake failed, in words: BoringSSL's reason code (`OPENSSL_internal:CODE`)
    /// for the cases an admin meets, else the code itself.
    static func describe(handshakeError error: Error) -> String {
        let text = "\(error)"
        guard let r = text.range(of: "OPENSSL_internal:") else { return text }
        let code = String(text[r.upperBound...].prefix { $0.isLetter || $0.isNumber || $0 == "_" })
        switch code {
        case "PSK_IDENTITY_NOT_FOUND": return "unknown PSK identity (not in the --tls-psk file)"
        case "PEER_DID_NOT_RETURN_A_CERTIFICATE": return "the client sent no certificate (--tls-verify-peer requires one)"
        case "CERTIFICATE_VERIFY_FAILED": return "the client's certificate is not signed by ca-cert.pem"
        case "TLSV1_ALERT_UNKNOWN_CA", "TLSV1_ALERT_BAD_CERTIFICATE", "SSLV3_ALERT_BAD_CERTIFICATE":
            return "the client does not trust the server's certificate (\(code))"
        case "TLSV1_ALERT_DECRYPT_ERROR", "DECRYPTION_FAILED_OR_BAD_RECORD_MAC": return "the client's PSK key differs (\(code))"
        case "WRONG_VERSION_NUMBER", "HTTP_REQUEST", "UNKNOWN_PROTOCOL": return "what the client sent is not TLS (\(code))"
        case "NO_SHARED_CIPHER", "UNSUPPORTED_PROTOCOL": return "no TLS version or cipher in common (\(code))"
        default: return code.isEmpty ? text : code
        }
    }

    /// A handler for one connection that just acknowledged NBD_OPT_STARTTLS.
    func makeHandler() -> NIOSSLServerHandler { NIOSSLServerHandler(context: context) }
}

/// Whether a connection is between NBD_OPT_STARTTLS's acknowledgement and the end of the TLS
/// handshake. Until then the TLS handler consumes everything the client sends; any byte that
/// still reaches the option decoder arrived in the clear after STARTTLS, which is the plaintext
/// injection attack on STARTTLS protocols (CVE-2011-0411 in SMTP servers): the connection closes.
final class NBDStartTLSGate: @unchecked Sendable {
    var pending = false
}
