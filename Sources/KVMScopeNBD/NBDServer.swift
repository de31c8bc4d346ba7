import Foundation
import KVMScopeFaults
import NIOCore
import NIOPosix

/// A fault-injecting NBD server on SwiftNIO: one export, any number of clients, TCP and/or UNIX
/// sockets. `start()` binds and returns; `wait()` blocks until `shutdown()`.
public final class NBDServer: @unchecked Sendable {
    public enum Listen: Sendable, Equatable {
        case tcp(host: String, port: Int)
        case unix(path: String)
    }

    public let export: NBDExport
    public let listen: [Listen]
    private let group: MultiThreadedEventLoopGroup
    private let observer: (any NBDServerObserver)?
    private var channels: [Channel] = []
    private let ownsGroup: Bool

    /// - threads: event loops (default: one per core).
    public init(export: NBDExport, listen: [Listen], observer: (any NBDServerObserver)? = nil,
                threads: Int = System.coreCount) {
        self.export = export
        self.listen = listen
        self.observer = observer
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, threads))
        self.ownsGroup = true
    }

    /// Binds every address. Returns them as NBD URIs (`nbd://127.0.0.1:10809`, `nbd+unix:///?socket=...`),
    /// with the real port when 0 was asked for.
    @discardableResult
    public func start() throws -> [String] {
        var uris: [String] = []
        for l in listen {
            let export = self.export, observer = self.observer
            let bootstrap = ServerBootstrap(group: group)
                .serverChannelOption(ChannelOptions.backlog, value: 256)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let phase = NBDConnectionPhase()
                        try channel.pipeline.syncOperations.addHandlers([
                            ByteToMessageHandler(NBDClientMessageDecoder(phase: phase)),
                            MessageToByteHandler(NBDServerMessageEncoder()),
                            NBDServerHandler(export: export, phase: phase, observer: observer),
                        ])
                    }
                }
                .childChannelOption(ChannelOptions.allowRemoteHalfClosure, value: false)
            let channel: Channel
            do {
                switch l {
                case let .tcp(host, port):
                    channel = try bootstrap
                        .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
                        .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
                        .bind(host: host, port: port).wait()
                case let .unix(path):
                    channel = try bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).wait()
                }
            } catch {
                let what: String
                switch l {
                case let .tcp(host, port): what = "\(host):\(port)"
                case let .unix(path): what = path
                }
                shutdown()
                throw NBDServerError.cannotListen(address: what, reason: "\(error)")
            }
            channels.append(channel)
            switch l {
            case .tcp:
                let a = channel.localAddress!
                let host = a.ipAddress ?? "?"
                uris.append(a.protocol == .inet6 ? "nbd://[\(host)]:\(a.port ?? 0)" : "nbd://\(host):\(a.port ?? 0)")
            case let .unix(path):
                uris.append("nbd+unix:///?socket=\(path)")
            }
        }
        return uris
    }

    /// The bound TCP port of the first TCP listener (tests bind port 0).
    public var tcpPort: Int? {
        channels.lazy.compactMap { $0.localAddress }.first { $0.protocol != .unix }?.port
    }

    /// Blocks until every listener is closed.
    public func wait() {
        for c in channels { try? c.closeFuture.wait() }
    }

    /// Closes the listeners and every client connection, then stops the event loops.
    public func shutdown() {
        for c in channels { try? c.close().wait() }
        channels.removeAll()
        if ownsGroup { try? group.syncShutdownGracefully() }
        for l in listen { if case let .unix(path) = l { unlink(path) } }
    }
}
