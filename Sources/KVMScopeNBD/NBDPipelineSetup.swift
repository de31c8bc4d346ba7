import NIOCore
import NIOPosix

/// Everything a connection needs from its server: the export, the limits, the byte budget all
/// connections share, and who hears about it.
public struct NBDServerConfiguration: Sendable {
    /// The exports a client may choose, by name; the first is also the default export (the
    /// empty name), as qemu-nbd's and nbdkit's only export is.
    public var exports: [NBDExport]
    public var export: NBDExport { exports[0] }
    public var limits: NBDServerLimits
    public var observer: (any NBDServerObserver)?
    public let budget: NBDMemoryBudget
    /// Where disk I/O runs (started by the owner); nil: on the connection's event loop.
    public var ioThreads: NIOThreadPool?
    /// NBD_OPT_STARTTLS and whether clients must use it; nil: STARTTLS is unsupported.
    public var tls: NBDTLS?

    public init(export: NBDExport, limits: NBDServerLimits = NBDServerLimits(), observer: (any NBDServerObserver)? = nil,
                budget: NBDMemoryBudget? = nil, ioThreads: NIOThreadPool? = nil, tls: NBDTLS? = nil) {
        self.init(exports: [export], limits: limits, observer: observer, budget: budget, ioThreads: ioThreads, tls: tls)
    }

    public init(exports: [NBDExport], limits: NBDServerLimits = NBDServerLimits(), observer: (any NBDServerObserver)? = nil,
                budget: NBDMemoryBudget? = nil, ioThreads: NIOThreadPool? = nil, tls: NBDTLS? = nil) {
        precondition(!exports.isEmpty, "an NBD server needs an export")
        self.tls = tls
        self.exports = exports
        self.limits = limits
        self.observer = observer
        self.budget = budget ?? NBDMemoryBudget(limit: limits.maxTotalBytes)
        self.ioThreads = ioThreads
    }
}

/// Handler names in an NBD server pipeline.
public enum NBDHandlerName {
    public static let tls = "nbd.tls"
    public static let handshakeDecoder = "nbd.handshake-decoder"
    public static let encoder = "nbd.encoder"
    public static let handshake = "nbd.handshake"
    public static let requestDecoder = "nbd.request-decoder"
    public static let idle = "nbd.idle"
    public static let transmission = "nbd.transmission"
}

extension ChannelPipeline.SynchronousOperations {
    /// Sets up a server connection's pipeline for the handshake, like NIOHTTP1's
    /// `configureHTTPServerPipeline`; the server and the tests (EmbeddedChannel) both use it.
    ///
    ///     handshake:     [handshake decoder] [encoder] [NBDHandshakeHandler]
    ///     transmission:  [request decoder] [encoder] ([IdleStateHandler]) [NBDTransmissionHandler]
    ///
    /// The handshake handler switches to the second line itself once the export is chosen, and
    /// after NBD_OPT_STARTTLS puts the TLS handler in front of both ([NIOSSLServerHandler] ...).
    public func configureNBDServerPipeline(configuration: NBDServerConfiguration) throws {
        let startTLS = NBDStartTLSGate()
        try addHandler(ByteToMessageHandler(NBDHandshakeDecoder(startTLS: startTLS)), name: NBDHandlerName.handshakeDecoder)
        try addHandler(NBDServerMessageEncoder(), name: NBDHandlerName.encoder)
        try addHandler(NBDHandshakeHandler(configuration: configuration, startTLS: startTLS), name: NBDHandlerName.handshake)
    }

    /// The handshake is over: the request decoder goes right behind the handshake decoder, so the
    /// bytes the client sent after its last option — which the handshake decoder passes on when
    /// it is removed — are framed as requests; then the handshake handlers leave.
    func enterNBDTransmissionPhase(configuration: NBDServerConfiguration, session: NBDSession,
                                   handshakeHandler: NBDHandshakeHandler) throws {
        let handshakeDecoder = try handler(type: ByteToMessageHandler<NBDHandshakeDecoder>.self)
        try addHandler(ByteToMessageHandler(NBDRequestDecoder(extendedHeaders: session.extendedHeaders)), name: NBDHandlerName.requestDecoder,
                       position: .after(handshakeDecoder))
        let transmission = NBDTransmissionHandler(configuration: configuration, session: session)
        try addHandler(transmission, name: NBDHandlerName.transmission, position: .last)
        if let idle = configuration.limits.idleTimeout {
            try addHandler(IdleStateHandler(allTimeout: idle), name: NBDHandlerName.idle, position: .before(transmission))
        }
        removeHandler(handshakeHandler, promise: nil)
        removeHandler(handshakeDecoder, promise: nil)
    }
}
