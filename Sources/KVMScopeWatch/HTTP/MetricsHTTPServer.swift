import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// `/metrics` over HTTP/1.1 on SwiftNIO's HTTP codec (NIOHTTP1: part of swift-nio, which the
/// package already builds, so no further dependency). A scrape renders the registry as it is:
/// no QMP round trip.
///
/// Hostile or broken clients are bounded: request heads by NIO's parser (llhttp's limits), request
/// bodies are discarded unread, a connection idle for `idleTimeout` is closed, and at most
/// `maxConnections` are open at once (more are closed on accept).
public final class MetricsHTTPServer: @unchecked Sendable {
    public static let maxConnections = 64
    public static let idleTimeout = TimeAmount.seconds(30)
    /// Content-Type of the Prometheus text format 0.0.4, which swift-prometheus 2.4.1 writes;
    /// a scraper whose `Accept` asks for OpenMetrics gets OpenMetricsText's conversion of it.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    private let group: MultiThreadedEventLoopGroup
    private let channel: any Channel
    /// Where it listens (the port the kernel chose, for `--listen 127.0.0.1:0`).
    public let boundAddress: String
    public let port: Int

    private init(group: MultiThreadedEventLoopGroup, channel: any Channel) {
        self.group = group
        self.channel = channel
        port = channel.localAddress?.port ?? 0
        boundAddress = channel.localAddress.map { a in
            let ip = a.ipAddress ?? "?"
            return ip.contains(":") ? "[\(ip)]:\(a.port ?? 0)" : "\(ip):\(a.port ?? 0)"
        } ?? "?"
    }

    /// Binds and serves; throws `WatchError.cannotListen` in one line (address in use, not local…).
    public static func start(_ listen: ListenAddress, render: @escaping @Sendable () -> [UInt8]) throws -> MetricsHTTPServer {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let open = ConnectionCount()
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    guard open.enter() else { throw ChannelError.ioOnClosedChannel }
                    channel.closeFuture.whenComplete { _ in open.leave() }
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: idleTimeout))
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(MetricsRequestHandler(render: render))
                }
            }
            .childChannelOption(.socketOption(.so_reuseaddr), value: 1)
        do {
            let channel = try bootstrap.bind(host: listen.host, port: listen.port).wait()
            return MetricsHTTPServer(group: group, channel: channel)
        } catch {
            try? group.syncShutdownGracefully()
            throw WatchError.cannotListen(address: listen.description, reason: Self.words(error))
        }
    }

    public func close() {
        try? channel.close().wait()
        try? group.syncShutdownGracefully()
    }

    static func words(_ error: any Error) -> String {
        if let io = error as? IOError {
            switch io.errnoCode {
            case EADDRINUSE: return "the port is already in use (another kvmscope watch or exporter?)"
            case EADDRNOTAVAIL: return "no interface of this host has that address"
            case EACCES: return "permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
            default: return String(cString: strerror(io.errnoCode))
            }
        }
        if error is SocketAddressError { return "not an address of this host (give an IP address, e.g. 127.0.0.1)" }
        return "\(error)"
    }
}

/// Open connections, bounded.
private final class ConnectionCount: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func enter() -> Bool { lock.withLock { guard n < MetricsHTTPServer.maxConnections else { return false }; n += 1; return true } }
    func leave() { lock.withLock { n -= 1 } }
}

/// GET (or HEAD) /metrics → the exposition; / → a pointer to it; anything else 404/405.
private final class MetricsRequestHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let render: @Sendable () -> [UInt8]
    private var head: HTTPRequestHead?

    init(render: @escaping @Sendable () -> [UInt8]) { self.render = render }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case let .head(h): head = h
        case .body: break                      // no endpoint takes a body: discarded, never buffered
        case .end:
            guard let h = head else { return }
            head = nil
            respond(context, h)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent { context.close(promise: nil) } else { context.fireUserInboundEventTriggered(event) }
    }

    private func respond(_ context: ChannelHandlerContext, _ h: HTTPRequestHead) {
        let path = h.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? h.uri
        var status = HTTPResponseStatus.ok
        var body: [UInt8]
        var type = "text/plain; charset=utf-8"
        var headers = HTTPHeaders()
        if h.method != .GET && h.method != .HEAD {
            status = .methodNotAllowed
            headers.add(name: "Allow", value: "GET, HEAD")
            body = Array("only GET and HEAD\n".utf8)
        } else if path == "/metrics" {
            body = render()
            type = MetricsHTTPServer.contentType
            if OpenMetricsText.isAccepted(h.headers["Accept"].joined(separator: ",")) {
                body = OpenMetricsText.convert(body)
                type = OpenMetricsText.contentType
            }
        } else if path == "/" {
            body = Array("kvmscope watch: Prometheus metrics at /metrics\n".utf8)
        } else {
            status = .notFound
            body = Array("not found: metrics are at /metrics\n".utf8)
        }
        headers.add(name: "Content-Type", value: type)
        headers.add(name: "Content-Length", value: String(body.count))
        let keepAlive = h.isKeepAlive
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: h.version, status: status, headers: headers))), promise: nil)
        if h.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
        }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            let ctx = NIOLoopBound(context, eventLoop: context.eventLoop)
            done.whenComplete { _ in ctx.value.close(promise: nil) }
        }
    }
}
