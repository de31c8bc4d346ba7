import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS

/// The byte stream under `NBDClient` and its handshake: the plain socket, or TLS over it after
/// NBD_OPT_STARTTLS. Both wait in slices and ask `stillWaiting` between them (never a hang).
protocol NBDClientTransport: AnyObject, Sendable {
    /// Sends every byte: 0 or an errno (ETIMEDOUT when `stillWaiting` said to give up).
    func sendAll(_ buffer: UnsafeRawBufferPointer, stillWaiting: () -> Bool) -> Int32
    /// Fills `buffer`: 0, ESHUTDOWN when the peer closed, ETIMEDOUT when `stillWaiting` said to give up.
    func receive(into buffer: UnsafeMutableRawBufferPointer, stillWaiting: () -> Bool) -> Int32
    /// Wakes a thread blocked in `receive` or `sendAll` (they return an error at once).
    func shutdownBoth()
}

extension NBDClientSocket: NBDClientTransport {}

/// TLS toward an upstream (`nbds://`, `nbds+unix://`), with X.509 credentials in QEMU's
/// `tls-creds-x509` layout (crypto/tlscredsx509.c, which libnbd's `tls-certificates` and
/// nbdkit also read): `ca-cert.pem` checks the server's certificate; `client-cert.pem` and
/// `client-key.pem`, when both are there, are this client's (for a server that verifies peers).
struct NBDClientTLS: Sendable {
    let context: NIOSSLContext
    /// The name the server's certificate must carry: the URI's host (or `tls-hostname`). Nil:
    /// an IP address, checked against the certificate's IP addresses; or a UNIX socket without
    /// `tls-hostname`, where only the chain is checked (libnbd does the same).
    let serverHostname: String?

    static func make(_ uri: NBDURI) throws -> NBDClientTLS {
        guard let tls = uri.tls else { throw NBDClientError("not a TLS URI") }
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12   // proto.md "TLS versions": 1.2 or later
        var hostname = tls.hostname
        var isIP = false
        if hostname == nil, case let .tcp(host, _) = uri.transport { hostname = host }
        if let h = hostname {
            var v4 = in_addr(), v6 = in6_addr()
            isIP = inet_pton(AF_INET, h, &v4) == 1 || inet_pton(AF_INET6, h, &v6) == 1
        }
        if !tls.verifyPeer {
            configuration.certificateVerification = .none
        } else if hostname == nil {
            configuration.certificateVerification = .noHostnameVerification
        }
        if let dir = tls.certificates {
            let ca = dir + "/ca-cert.pem"
            guard FileManager.default.isReadableFile(atPath: ca) else {
                throw NBDClientError("tls-certificates=\(dir) has no readable ca-cert.pem")
            }
            configuration.trustRoots = .file(ca)
            let cert = dir + "/client-cert.pem", key = dir + "/client-key.pem"
            let haveCert = FileManager.default.fileExists(atPath: cert), haveKey = FileManager.default.fileExists(atPath: key)
            if haveCert != haveKey {
                throw NBDClientError("tls-certificates=\(dir) has \(haveCert ? "client-cert.pem without client-key.pem" : "client-key.pem without client-cert.pem")")
            }
            if haveCert {
                do {
                    configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(cert).map { .certificate($0) }
                    configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
                } catch {
                    throw NBDClientError("cannot use \(cert) and \(key): \(error)")
                }
            }
        }
        do {
            return NBDClientTLS(context: try NIOSSLContext(configuration: configuration), serverHostname: isIP ? nil : hostname)
        } catch {
            throw NBDClientError("cannot set up TLS: \(error)")
        }
    }

    /// Why a client handshake failed, in words an admin can act on.
    static func describe(_ error: Error) -> String {
        let text = "\(error)"
        if let e = error as? NIOSSLExtraError, e == .failedToValidateHostname {
            return "the server's certificate is not for this host (\(text))"
        }
        guard let r = text.range(of: "OPENSSL_internal:") else { return text }
        let code = String(text[r.upperBound...].prefix { $0.isLetter || $0.isNumber || $0 == "_" })
        switch code {
        case "CERTIFICATE_VERIFY_FAILED": return "the server's certificate is not signed by a trusted CA (CERTIFICATE_VERIFY_FAILED)"
        case "TLSV1_ALERT_UNKNOWN_CA", "SSLV3_ALERT_BAD_CERTIFICATE", "TLSV1_ALERT_BAD_CERTIFICATE", "TLSV1_CERTIFICATE_REQUIRED",
             "SSLV3_ALERT_HANDSHAKE_FAILURE":
            return "the server refused this client's certificate (\(code))"
        case "WRONG_VERSION_NUMBER": return "what the server sent is not TLS (\(code))"
        default: return code.isEmpty ? text : code
        }
    }
}

/// TLS over a connected socket: a NIO channel (NIOSSL's client handler) on the shared event
/// loop group, bridged to the blocking `NBDClientTransport` calls `NBDClient` makes from its own
/// threads, never from an event loop (so waiting on the channel's futures cannot deadlock).
/// Reads are pulled (autoRead off) and stop while `Inbox.limit` bytes are waiting, so a server
/// that sends faster than the reader takes cannot grow memory without bound.
final class NBDClientTLSTransport: NBDClientTransport, @unchecked Sendable {
    private let channel: Channel
    private let inbox: Inbox

    final class Inbox: @unchecked Sendable {
        static let limit = 4 << 20
        let condition = NSCondition()
        var bytes = ByteBuffer()
        var handshakeDone = false
        var closed = false
        var failure: String?
        var paused = false
    }

    /// Takes over `socket` (the connection just acknowledged NBD_OPT_STARTTLS) and runs the TLS
    /// handshake, within `deadline`; the error says why it failed.
    static func start(over socket: NBDClientSocket, tls: NBDClientTLS, deadline: Date) throws -> NBDClientTLSTransport {
        let fd = dup(socket.fd)
        guard fd >= 0 else { throw NBDClientError("cannot start TLS: \(String(cString: strerror(errno)))") }
        let inbox = Inbox()
        let bridge = Bridge(inbox)
        let channel: Channel
        do {
            channel = try ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .channelOption(ChannelOptions.autoRead, value: false)
                .channelInitializer { ch in
                    ch.eventLoop.makeCompletedFuture {
                        let handler = try NIOSSLClientHandler(context: tls.context, serverHostname: tls.serverHostname)
                        try ch.pipeline.syncOperations.addHandlers(handler, bridge)
                    }
                }
                .withConnectedSocket(fd).wait()
        } catch {
            throw NBDClientError("cannot start TLS: \(error)")
        }
        let transport = NBDClientTLSTransport(channel: channel, inbox: inbox)
        inbox.condition.lock()
        while !inbox.handshakeDone && !inbox.closed && Date() < deadline { _ = inbox.condition.wait(until: min(deadline, Date().addingTimeInterval(0.5))) }
        let done = inbox.handshakeDone, failure = inbox.failure
        inbox.condition.unlock()
        guard done else {
            channel.close(promise: nil)
            throw NBDClientError(failure.map { "TLS handshake failed: \($0)" } ?? (Date() >= deadline ? "TLS handshake not finished in time" : "closed the connection during the TLS handshake"))
        }
        return transport
    }

    private init(channel: Channel, inbox: Inbox) {
        self.channel = channel
        self.inbox = inbox
    }

    deinit { channel.close(promise: nil) }

    func sendAll(_ buffer: UnsafeRawBufferPointer, stillWaiting: () -> Bool) -> Int32 {
        guard buffer.count > 0 else { return 0 }
        // The write's future completes once NIO has handed the bytes to the socket (or failed):
        // waited for in slices, so a server that stops reading is given up on like a plain one.
        final class Outcome: @unchecked Sendable { var failed = true }
        let sent = DispatchSemaphore(value: 0)
        let outcome = Outcome()
        channel.writeAndFlush(channel.allocator.buffer(bytes: buffer)).whenComplete { r in
            if case .success = r { outcome.failed = false }
            sent.signal()
        }
        while sent.wait(timeout: .now() + NBDClientSocket.slice) == .timedOut {
            if !stillWaiting() { return ETIMEDOUT }
        }
        return outcome.failed ? EPIPE : 0
    }

    func receive(into buffer: UnsafeMutableRawBufferPointer, stillWaiting: () -> Bool) -> Int32 {
        var done = 0
        let c = inbox.condition
        c.lock()
        defer { c.unlock() }
        while done < buffer.count {
            let n = min(inbox.bytes.readableBytes, buffer.count - done)
            if n > 0 {
                inbox.bytes.withUnsafeReadableBytes { buffer.baseAddress!.advanced(by: done).copyMemory(from: $0.baseAddress!, byteCount: n) }
                inbox.bytes.moveReaderIndex(forwardBy: n)
                done += n
                if inbox.paused && inbox.bytes.readableBytes < Inbox.limit {
                    inbox.paused = false
                    inbox.bytes.discardReadBytes()
                    channel.read()
                }
                continue
            }
            if inbox.closed { return inbox.failure == nil ? ESHUTDOWN : ECONNRESET }
            if !c.wait(until: Date().addingTimeInterval(NBDClientSocket.slice)) {
                c.unlock()
                let go = stillWaiting()
                c.lock()
                if !go { return ETIMEDOUT }
            }
        }
        return 0
    }

    func shutdownBoth() {
        inbox.condition.lock()
        inbox.closed = true
        inbox.condition.broadcast()
        inbox.condition.unlock()
        channel.close(promise: nil)
    }

    /// The channel's end of the inbox: plaintext in, the handshake's outcome, the close.
    final class Bridge: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        let inbox: Inbox
        init(_ inbox: Inbox) { self.inbox = inbox }

        func channelActive(context: ChannelHandlerContext) {
            context.read()
            context.fireChannelActive()
        }

        func handlerAdded(context: ChannelHandlerContext) {
            if context.channel.isActive { context.read() }
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var b = unwrapInboundIn(data)
            inbox.condition.lock()
            inbox.bytes.writeBuffer(&b)
            inbox.condition.broadcast()
            inbox.condition.unlock()
        }

        func channelReadComplete(context: ChannelHandlerContext) {
            inbox.condition.lock()
            let full = inbox.bytes.readableBytes >= Inbox.limit
            inbox.paused = full
            inbox.condition.unlock()
            if !full { context.read() }
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if case TLSUserEvent.handshakeCompleted = event {
                inbox.condition.lock()
                inbox.handshakeDone = true
                inbox.condition.broadcast()
                inbox.condition.unlock()
            }
            context.fireUserInboundEventTriggered(event)
        }

        func errorCaught(context: ChannelHandlerContext, error: Error) {
            inbox.condition.lock()
            // A server that closes without close_notify after the last reply is a close, not a failure.
            if case NIOSSLError.uncleanShutdown = error {} else if inbox.failure == nil { inbox.failure = NBDClientTLS.describe(error) }
            inbox.condition.unlock()
            context.close(promise: nil)
        }

        func channelInactive(context: ChannelHandlerContext) {
            inbox.condition.lock()
            inbox.closed = true
            inbox.condition.broadcast()
            inbox.condition.unlock()
        }
    }
}
