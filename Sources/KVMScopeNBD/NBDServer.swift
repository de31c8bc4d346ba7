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

    public var export: NBDExport { configuration.export }
    public let listen: [Listen]
    public let limits: NBDServerLimits
    public let configuration: NBDServerConfiguration
    private let group: MultiThreadedEventLoopGroup
    private let ioThreads: NIOThreadPool?
    private let observer: (any NBDServerObserver)?
    private let registry: NBDConnectionRegistry
    private let lock = NSLock()
    private var channels: [Channel] = []
    private var stopped = false
    /// Signalled when the first shutdown() has finished, so that later callers return only then.
    private let stoppedSignal = DispatchSemaphore(value: 0)

    /// - threads: event loops (default: one per core).
    /// - ioThreads: threads for flushes and FUA requests (nil: as many as event loops, at least
    ///   2; 0: they run on the event loops, where a slow fsync stalls the loop's other clients).
    public convenience init(export: NBDExport, listen: [Listen], observer: (any NBDServerObserver)? = nil,
                            threads: Int = System.coreCount, limits: NBDServerLimits = NBDServerLimits(), ioThreads: Int? = nil,
                            tls: NBDTLS? = nil) {
        self.init(exports: [export], listen: listen, observer: observer, threads: threads, limits: limits, ioThreads: ioThreads, tls: tls)
    }

    /// - exports: what clients may choose by name; the first is also the default export ("").
    public init(exports: [NBDExport], listen: [Listen], observer: (any NBDServerObserver)? = nil,
                threads: Int = System.coreCount, limits: NBDServerLimits = NBDServerLimits(), ioThreads: Int? = nil,
                tls: NBDTLS? = nil) {
        self.listen = listen
        self.observer = observer
        self.limits = limits
        // Threads for what reaches the disk: as many as event loops and at least 2, so that one
        // client's slow flush leaves a thread for the others.
        let pool = ioThreads == 0 ? nil : NIOThreadPool(numberOfThreads: ioThreads ?? max(2, threads))
        self.ioThreads = pool
        self.configuration = NBDServerConfiguration(exports: exports, limits: limits, observer: observer, ioThreads: pool, tls: tls)
        self.registry = NBDConnectionRegistry(limit: limits.maxConnections)
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, threads))
        pool?.start()
    }

    /// Binds every address. Returns them as NBD URIs of the default export (`nbd://127.0.0.1:10809`,
    /// `nbd://127.0.0.1:10809/disk` when it has a name, `nbd+unix:///disk?socket=...`), with the
    /// real port when 0 was asked for.
    @discardableResult
    public func start() throws -> [String] {
        if let problem = limits.problem { throw NBDServerError.invalidLimits(problem) }
        var uris: [String] = []
        // The NBD URI spec (uri.md): `nbds` when the client must use TLS.
        let scheme = configuration.tls?.mode == .require ? "nbds" : "nbd"
        for l in listen {
            let configuration = self.configuration, registry = self.registry, observer = self.observer
            let limits = self.limits
            let bootstrap = ServerBootstrap(group: group)
                .serverChannelOption(ChannelOptions.backlog, value: 256)
                .serverChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(NBDAcceptMonitor(limits: limits, observer: observer))
                    }
                }
                .childChannelInitializer { channel in
                    let admitted = registry.admit(channel)
                    if admitted.refused {
                        if let suppressed = admitted.report {
                            observer?.connectionRefused(NBDPeer.describe(channel), limit: registry.limit, alsoRefused: suppressed)
                        }
                        return channel.eventLoop.makeFailedFuture(NBDConnectionRefused())
                    }
                    return channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.configureNBDServerPipeline(configuration: configuration)
                    }
                }
                .childChannelOption(ChannelOptions.allowRemoteHalfClosure, value: false)
                // Writability flips at 1 MiB of unsent replies and back at 256 KiB: the
                // transmission handler starts no request while the channel is unwritable.
                .childChannelOption(ChannelOptions.writeBufferWaterMark,
                                    value: ChannelOptions.Types.WriteBufferWaterMark(low: 256 << 10, high: 1 << 20))
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
            lock.lock(); channels.append(channel); lock.unlock()
            // uri.md "NBD URI export name": the path, less its leading `/`, is the export name,
            // so a client given the URI asks for the default export by its name.
            let exportPath = Self.uriPath(exportName: configuration.export.name)
            switch l {
            case .tcp:
                let a = channel.localAddress!
                let host = a.ipAddress ?? "?"
                let authority = a.protocol == .inet6 ? "[\(host)]:\(a.port ?? 0)" : "\(host):\(a.port ?? 0)"
                uris.append("\(scheme)://\(authority)\(exportPath)")
            case let .unix(path):
                uris.append("\(scheme)+unix://\(Self.uriPath(exportName: configuration.export.name, always: true))?socket=\(Self.uriQueryValue(path))")
            }
        }
        return uris
    }

    /// `/NAME` with NAME percent-encoded as a URI path (RFC 3986: a space is `%20`, a `?` or `#`
    /// would end the path); nothing for the empty name unless `always` (`nbd+unix:///?socket=`
    /// keeps its slash).
    static func uriPath(exportName: String, always: Bool = false) -> String {
        guard !exportName.isEmpty else { return always ? "/" : "" }
        var allowed = CharacterSet.urlPathAllowed
        allowed.remove(charactersIn: ";")
        return "/" + (exportName.addingPercentEncoding(withAllowedCharacters: allowed) ?? exportName)
    }

    /// A query parameter's value percent-encoded (uri.md: query values are; RFC 3986 3.4): a
    /// space is `%20`; `&`, `=`, `+`, `#`, `;` and `%` are escaped so that no client reads them
    /// as a separator, a space or an escape. `/` stays (RFC 3986 allows it in a query).
    static func uriQueryValue(_ value: String) -> String {
        var allowed = CharacterSet.urlQueryAllowed
        allowed.remove(charactersIn: "&=+#;%")
        return value.addingPercentEncoding(withAllowedCharacters: allowed) ?? value
    }

    /// Tells every connection that the exports' rules changed, so that replies held back by
    /// rules that are gone (or shorter now) go out (`NBDRulesChanged`), and returns, once every
    /// connection has looked, how many held replies the change let go or shortened. Any thread
    /// but an event loop's (it waits for them).
    @discardableResult
    public func rulesChanged() -> NBDHeldRepliesChanged {
        let tally = NBDRulesChanged.Tally()
        var looked: [EventLoopFuture<Void>] = []
        registry.forEach { channel in
            looked.append(channel.eventLoop.submit { channel.pipeline.fireUserInboundEventTriggered(NBDRulesChanged(tally: tally)) })
        }
        for f in looked { try? f.wait() }      // a loop shutting down: its connections are closing anyway
        return tally.counts
    }

    /// The bound TCP port of the first TCP listener (tests bind port 0).
    public var tcpPort: Int? {
        lock.lock(); defer { lock.unlock() }
        return channels.lazy.compactMap { $0.localAddress }.first { $0.protocol != .unix }?.port
    }

    /// Clients connected now.
    public var connectionCount: Int { registry.count }

    /// Blocks until every listener is closed.
    public func wait() {
        lock.lock(); let listeners = channels; lock.unlock()
        for c in listeners { try? c.closeFuture.wait() }
    }

    /// Closes the listeners and every client connection (replies not yet written are dropped:
    /// the client sees the connection end, as after a crash of any server), then stops the event
    /// loops. Safe to call more than once and from any thread but an event loop's.
    public func shutdown() {
        lock.lock()
        let first = !stopped
        stopped = true
        let listeners = channels
        channels.removeAll()
        lock.unlock()
        guard first else {
            // Another thread (a signal handler) is shutting down: return once it is done.
            stoppedSignal.wait()
            stoppedSignal.signal()
            return
        }
        for c in listeners { try? c.close().wait() }
        try? registry.closeAll(on: group.next()).wait()
        try? group.syncShutdownGracefully()
        // I/O already running finishes (a pread or fsync cannot be interrupted); queued work is dropped.
        try? ioThreads?.syncShutdownGracefully()
        for l in listen { if case let .unix(path) = l { unlink(path) } }
        stoppedSignal.signal()
    }
}

/// Sent down every connection's pipeline when the exports' rules changed
/// (`NBDServer.rulesChanged`): the transmission handler lets go of the replies held back by
/// rules that are gone, and counts them in `tally`.
public struct NBDRulesChanged: Sendable {
    /// Shared by every connection's handler, on their own event loops.
    final class Tally: @unchecked Sendable {
        private let lock = NSLock()
        private var total = NBDHeldRepliesChanged()
        func add(released: Int, shortened: Int) {
            lock.lock(); total.released += released; total.shortened += shortened; lock.unlock()
        }
        var counts: NBDHeldRepliesChanged { lock.lock(); defer { lock.unlock() }; return total }
    }
    let tally: Tally
}

/// What a change of rules did to the replies held back when it came: `released` go out now
/// (their rule is gone, or what it still asks of them has passed), `shortened` still wait, less.
public struct NBDHeldRepliesChanged: Sendable, Equatable {
    public var released = 0
    public var shortened = 0
    public init(released: Int = 0, shortened: Int = 0) { self.released = released; self.shortened = shortened }
    public var isEmpty: Bool { released == 0 && shortened == 0 }
}
