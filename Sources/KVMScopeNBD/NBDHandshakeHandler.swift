import Foundation
import KVMScopeFaults
import NIOCore
import NIOSSL
import NIOTLS

/// The handshake phase of one connection: greeting, client flags, options. When the client
/// picks the export (NBD_OPT_GO or NBD_OPT_EXPORT_NAME) it hands the connection over to the
/// transmission phase by reconfiguring the pipeline — adding the request decoder and
/// `NBDTransmissionHandler`, removing itself and the handshake decoder — the way NIOHTTP1's
/// `HTTPServerUpgradeHandler` hands a connection to the upgraded protocol. Nothing shared is
/// mutated under a decoder: what the handshake decided travels as an `NBDSession` value.
public final class NBDHandshakeHandler: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = NBDHandshakeMessage
    public typealias OutboundOut = NBDServerMessage

    /// nbdkit gives up on a client after 32 options (server/protocol-handshake-newstyle.c,
    /// MAX_NR_OPTIONS); real clients send a handful. This also bounds the replies queued for a
    /// client that never reads them.
    static let maximumOptions = 32

    private let configuration: NBDServerConfiguration
    private var client = "?"
    private var connectedAt = NIODeadline.now()
    private var started = false
    private var finished = false
    private var noZeroes = false
    private var structuredReplies = false
    /// NBD_OPT_EXTENDED_HEADERS acknowledged: 32-byte headers both ways in transmission.
    private var extendedHeaders = false
    /// The export for which the last NBD_OPT_SET_META_CONTEXT selected `base:allocation` (nil:
    /// no context selected). Block status is allowed only if the client then picks that export.
    private var allocationContextExport: Int?
    private var options = 0
    private var timeout: Scheduled<Void>?
    private var summary = NBDConnectionSummary()
    private let startTLS: NBDStartTLSGate
    /// The TLS version once the TLS handshake after NBD_OPT_STARTTLS completed.
    private var tlsVersion: String?

    public convenience init(configuration: NBDServerConfiguration) {
        self.init(configuration: configuration, startTLS: NBDStartTLSGate())
    }

    init(configuration: NBDServerConfiguration, startTLS: NBDStartTLSGate) {
        self.configuration = configuration
        self.startTLS = startTLS
    }

    private var observer: (any NBDServerObserver)? { configuration.observer }

    private func transmissionFlags(_ backend: any BlockBackend) -> UInt16 {
        // Only what the disk does: a proxy for an upstream without TRIM or WRITE_ZEROES (or one
        // that is read-only) announces neither, so that clients do not send what would fail.
        let can = backend.capabilities
        var f = NBD.TransmissionFlag.hasFlags
        if can.flush { f |= NBD.TransmissionFlag.sendFlush }
        if can.fua { f |= NBD.TransmissionFlag.sendFUA }
        if can.trim { f |= NBD.TransmissionFlag.sendTrim }
        if can.writeZeroes { f |= NBD.TransmissionFlag.sendWriteZeroes }
        if can.multiConn { f |= NBD.TransmissionFlag.canMultiConn }
        if backend.isReadOnly { f |= NBD.TransmissionFlag.readOnly }
        // Reads are always answered in one chunk, so "don't fragment" is honoured by construction.
        if structuredReplies || extendedHeaders { f |= NBD.TransmissionFlag.sendDF }
        return f
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { start(context) }
    }

    public func channelActive(context: ChannelHandlerContext) {
        start(context)
        context.fireChannelActive()
    }

    private func start(_ context: ChannelHandlerContext) {
        guard !started else { return }
        started = true
        connectedAt = .now()
        client = NBDPeer.describe(context.channel)
        observer?.clientConnected(client)
        context.writeAndFlush(wrapOutboundOut(.greeting(handshakeFlags: NBD.HandshakeFlag.fixedNewstyle | NBD.HandshakeFlag.noZeroes)),
                              promise: nil)
        let limit = configuration.limits.handshakeTimeout
        timeout = context.eventLoop.scheduleTask(in: limit) { [self] in
            close(context, because: "handshake not finished after \(NBDPeer.seconds(limit))")
        }
    }

    public func channelInactive(context: ChannelHandlerContext) {
        timeout?.cancel()
        if !finished {
            finished = true
            summary.connectedSeconds = Double((NIODeadline.now() - connectedAt).nanoseconds) / 1e9
            observer?.clientDisconnected(client, summary)
        }
        context.fireChannelInactive()
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let tlsEvent = event as? TLSUserEvent, case .handshakeCompleted = tlsEvent {
            startTLS.pending = false
            let version = (try? context.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self))?.tlsVersion
            tlsVersion = version.map(Self.name) ?? "TLS"
            summary.tls = tlsVersion
            // What was negotiated in the clear is forgotten (proto.md "TLS support": a
            // man-in-the-middle could have chosen it); the client negotiates again inside TLS.
            structuredReplies = false
            extendedHeaders = false
            allocationContextExport = nil
        }
        context.fireUserInboundEventTriggered(event)
    }

    private static func name(_ v: TLSVersion) -> String {
        switch v {
        case .tlsv1: return "TLSv1.0"
        case .tlsv11: return "TLSv1.1"
        case .tlsv12: return "TLSv1.2"
        case .tlsv13: return "TLSv1.3"
        }
    }

    public func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let e = error as? NBDTruncatedMessage {
            summary.truncated = e
            return
        }
        // A TLS client that closes its socket without TLS's close_notify (QEMU's NBD client does,
        // after NBD_CMD_DISC) has left like one that resets the connection.
        if let e = error as? NIOSSLError, e == .uncleanShutdown { return }
        if let e = error as? IOError, e.errnoCode == ECONNRESET || e.errnoCode == EPIPE {
            // The client went away; channelInactive reports it.
            return
        }
        if startTLS.pending && !(error is NBDProtocolError) {
            return violation(context, "TLS handshake failed: \(NBDTLS.describe(handshakeError: error))")
        }
        violation(context, (error as? NBDProtocolError)?.description ?? "\(error)")
    }

    private func violation(_ context: ChannelHandlerContext, _ message: String) {
        observer?.protocolViolation(client, message)
        close(context, because: message)
    }

    private func close(_ context: ChannelHandlerContext, because reason: String) {
        if summary.closedBecause == nil { summary.closedBecause = reason }
        context.close(promise: nil)
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !finished else { return }
        switch unwrapInboundIn(data) {
        case let .clientFlags(flags):
            let known = NBD.ClientFlag.fixedNewstyle | NBD.ClientFlag.noZeroes
            guard flags & ~known == 0 else {
                return violation(context, NBDProtocolError.unknownClientFlags(flags).description)
            }
            noZeroes = flags & NBD.ClientFlag.noZeroes != 0
        case let .option(code, data):
            options += 1
            guard options <= Self.maximumOptions else {
                return violation(context, NBDProtocolError.tooManyOptions(Self.maximumOptions).description)
            }
            handleOption(context: context, code: code, data: data)
        }
    }

    // MARK: - negotiation

    private func reply(_ context: ChannelHandlerContext, _ option: UInt32, _ type: UInt32, _ data: ByteBuffer? = nil) {
        context.write(wrapOutboundOut(.optionReply(option: option, type: type, data: data ?? ByteBuffer())), promise: nil)
    }

    private func errorReply(_ context: ChannelHandlerContext, _ option: UInt32, _ type: UInt32, _ message: String) {
        reply(context, option, type, ByteBuffer(string: message))
        context.flush()
    }

    private func handleOption(context: ChannelHandlerContext, code: UInt32, data: ByteBuffer) {
        var data = data
        if let tls = configuration.tls, tls.mode == .require, tlsVersion == nil,
           code != NBD.Option.startTLS.rawValue, code != NBD.Option.abort.rawValue {
            guard code != NBD.Option.exportName.rawValue else {
                // NBD_OPT_EXPORT_NAME has no error reply: the spec's only answer is to close.
                return violation(context, "asked for an export before NBD_OPT_STARTTLS, and TLS is required (--tls require)")
            }
            return errorReply(context, code, NBD.Reply.errTLSReqd, "TLS is required: send NBD_OPT_STARTTLS first")
        }
        switch NBD.Option(rawValue: code) {
        case .startTLS:
            guard let tls = configuration.tls else {
                return errorReply(context, code, NBD.Reply.errUnsup, "TLS is not enabled on this server (kvmscope nbd serve --tls)")
            }
            guard tlsVersion == nil else {
                return errorReply(context, code, NBD.Reply.errInvalid, "TLS is already in use on this connection")
            }
            guard data.readableBytes == 0 else {
                return errorReply(context, code, NBD.Reply.errInvalid, "NBD_OPT_STARTTLS takes no data")
            }
            // The acknowledgement goes out in the clear, ahead of the TLS handler: written and
            // flushed before that handler is in the pipeline. From here until the TLS handshake
            // completes, any byte reaching the option decoder was sent in the clear: it closes.
            startTLS.pending = true
            context.writeAndFlush(wrapOutboundOut(.optionReply(option: code, type: NBD.Reply.ack, data: ByteBuffer())), promise: nil)
            do {
                try context.pipeline.syncOperations.addHandler(tls.makeHandler(), name: NBDHandlerName.tls, position: .first)
            } catch {
                close(context, because: "cannot start TLS: \(error)")
            }

        case .exportName:
            guard !extendedHeaders else {
                // proto.md: after extended headers "a client MUST NOT use NBD_OPT_EXPORT_NAME";
                // it has no error reply, so the only answer is to close (as QEMU's server does).
                return violation(context, "NBD_OPT_EXPORT_NAME after NBD_OPT_EXTENDED_HEADERS (the client must use NBD_OPT_GO)")
            }
            let name = data.readString(length: data.readableBytes) ?? ""
            guard let index = configuration.exportIndex(named: name) else {
                // NBD_OPT_EXPORT_NAME has no error reply: the spec's only answer is to close.
                return violation(context, "asked for unknown export '\(name)'")
            }
            let backend = configuration.exports[index].backend
            context.write(wrapOutboundOut(.exportNameReply(size: UInt64(backend.size), transmissionFlags: transmissionFlags(backend),
                                                            padWithZeroes: !noZeroes)), promise: nil)
            enterTransmission(context, exportIndex: index)

        case .abort:
            context.writeAndFlush(wrapOutboundOut(.optionReply(option: code, type: NBD.Reply.ack, data: ByteBuffer())))
                .whenComplete { _ in context.close(promise: nil) }

        case .list:
            guard data.readableBytes == 0 else {
                return errorReply(context, code, NBD.Reply.errInvalid, "NBD_OPT_LIST takes no data")
            }
            for export in configuration.exports {
                var entry = ByteBuffer()
                entry.writeInteger(UInt32(export.name.utf8.count))
                entry.writeString(export.name)
                entry.writeString(export.description)
                reply(context, code, NBD.Reply.server, entry)
            }
            reply(context, code, NBD.Reply.ack)
            context.flush()

        case .info, .go:
            guard let nameLength = data.readInteger(as: UInt32.self), nameLength <= 4096,
                  data.readableBytes >= Int(nameLength) + 2,
                  let name = data.readString(length: Int(nameLength)),
                  let count = data.readInteger(as: UInt16.self), data.readableBytes == Int(count) * 2 else {
                return errorReply(context, code, NBD.Reply.errInvalid, "malformed NBD_OPT_INFO/GO data")
            }
            var wanted: Set<UInt16> = []
            for _ in 0..<count { wanted.insert(data.readInteger(as: UInt16.self)!) }
            guard let index = configuration.exportIndex(named: name) else {
                return errorReply(context, code, NBD.Reply.errUnknown, "no export named '\(name)'")
            }
            let export = configuration.exports[index], backend = export.backend
            var info = ByteBuffer()
            info.writeInteger(NBD.Info.export)
            info.writeInteger(UInt64(backend.size))
            info.writeInteger(transmissionFlags(backend))
            reply(context, code, NBD.Reply.info, info)
            if wanted.contains(NBD.Info.name) {
                var b = ByteBuffer(); b.writeInteger(NBD.Info.name); b.writeString(export.name)
                reply(context, code, NBD.Reply.info, b)
            }
            if wanted.contains(NBD.Info.description) && !export.description.isEmpty {
                var b = ByteBuffer(); b.writeInteger(NBD.Info.description); b.writeString(export.description)
                reply(context, code, NBD.Reply.info, b)
            }
            var sizes = ByteBuffer()
            sizes.writeInteger(NBD.Info.blockSize)
            sizes.writeInteger(backend.capabilities.minimumBlockSize)
            sizes.writeInteger(backend.capabilities.preferredBlockSize)
            sizes.writeInteger(NBD.maximumPayload)
            reply(context, code, NBD.Reply.info, sizes)
            reply(context, code, NBD.Reply.ack)
            if NBD.Option(rawValue: code) == .go { enterTransmission(context, exportIndex: index) } else { context.flush() }

        case .structuredReply:
            guard data.readableBytes == 0 else {
                return errorReply(context, code, NBD.Reply.errInvalid, "NBD_OPT_STRUCTURED_REPLY takes no data")
            }
            // QEMU's server order (nbd/server.c, nbd_negotiate_options): extended headers take
            // precedence over structured replies (proto.md: NBD_REP_ERR_EXT_HEADER_REQD).
            guard !extendedHeaders else {
                return errorReply(context, code, NBD.Reply.errExtHeaderReqd, "extended headers already negotiated")
            }
            guard !structuredReplies else {
                return errorReply(context, code, NBD.Reply.errInvalid, "structured replies already negotiated")
            }
            structuredReplies = true
            reply(context, code, NBD.Reply.ack)
            context.flush()

        case .extendedHeaders:
            guard data.readableBytes == 0 else {
                return errorReply(context, code, NBD.Reply.errInvalid, "NBD_OPT_EXTENDED_HEADERS takes no data")
            }
            guard !extendedHeaders else {
                return errorReply(context, code, NBD.Reply.errInvalid, "extended headers already negotiated")
            }
            // A client may ask for structured replies first; extended headers supersede them.
            extendedHeaders = true
            reply(context, code, NBD.Reply.ack)
            context.flush()

        case .listMetaContext, .setMetaContext:
            handleMetaContext(context, code: code, data: data, listing: code == NBD.Option.listMetaContext.rawValue)

        default:
            // NBD_OPT_PEEK_EXPORT (withdrawn) and unknown options.
            errorReply(context, code, NBD.Reply.errUnsup, "option \(code) is not supported by kvmscope")
        }
    }

    /// NBD_OPT_LIST_META_CONTEXT / NBD_OPT_SET_META_CONTEXT (proto.md, "Option types"). Both need
    /// structured replies or extended headers first (block status replies are chunks; QEMU's
    /// nbd/server.c refuses both the same way). A SET replaces the previous selection even
    /// when it fails.
    private func handleMetaContext(_ context: ChannelHandlerContext, code: UInt32, data: ByteBuffer, listing: Bool) {
        if !listing { allocationContextExport = nil }
        let name = listing ? "NBD_OPT_LIST_META_CONTEXT" : "NBD_OPT_SET_META_CONTEXT"
        guard structuredReplies || extendedHeaders else {
            return errorReply(context, code, NBD.Reply.errInvalid, "\(name) needs NBD_OPT_STRUCTURED_REPLY or NBD_OPT_EXTENDED_HEADERS first")
        }
        guard let request = NBDMetaContextOption(data) else {
            return errorReply(context, code, NBD.Reply.errInvalid, "malformed \(name) data")
        }
        guard let index = configuration.exportIndex(named: request.exportName) else {
            return errorReply(context, code, NBD.Reply.errUnknown, "no export named '\(request.exportName)'")
        }
        if request.namesAllocation(listing: listing) {
            // In a list the id "is reserved and SHOULD be set to zero".
            var entry = ByteBuffer()
            entry.writeInteger(listing ? 0 : NBD.MetaContext.allocationID)
            entry.writeString(NBD.MetaContext.allocation)
            reply(context, code, NBD.MetaContext.reply, entry)
            if !listing { allocationContextExport = index }
        }
        reply(context, code, NBD.Reply.ack)
        context.flush()
    }

    /// The export is chosen: swap the handshake handlers for the transmission ones.
    private func enterTransmission(_ context: ChannelHandlerContext, exportIndex: Int) {
        context.flush()
        finished = true
        timeout?.cancel()
        // proto.md: block status only if the last SET_META_CONTEXT named the export chosen now.
        let allocationID = allocationContextExport == exportIndex ? NBD.MetaContext.allocationID : nil
        var session = NBDSession(client: client, structuredReplies: structuredReplies, connectedAt: connectedAt,
                                 allocationContextID: allocationID)
        session.exportIndex = exportIndex
        session.extendedHeaders = extendedHeaders
        session.tls = tlsVersion
        do {
            try context.pipeline.syncOperations.enterNBDTransmissionPhase(configuration: configuration, session: session,
                                                                          handshakeHandler: self)
        } catch {
            observer?.protocolViolation(client, "cannot start the transmission phase: \(error)")
            context.close(promise: nil)
        }
    }
}

/// What the handshake decided, handed to the transmission phase.
public struct NBDSession: Sendable {
    public var client: String
    public var structuredReplies: Bool
    /// NBD_OPT_EXTENDED_HEADERS was acknowledged (it supersedes structured replies).
    public var extendedHeaders = false
    public var connectedAt: NIODeadline
    /// The id NBD_OPT_SET_META_CONTEXT gave `base:allocation` for this export; nil: the client
    /// selected no context, and NBD_CMD_BLOCK_STATUS gets EINVAL.
    public var allocationContextID: UInt32?
    /// The TLS version the connection runs under, nil in the clear.
    public var tls: String?
    /// Which of the configuration's exports the client chose.
    public var exportIndex = 0

    /// How replies look on this connection.
    public var replyStyle: NBDReplyStyle { extendedHeaders ? .extended : structuredReplies ? .structured : .simple }

    public init(client: String, structuredReplies: Bool, connectedAt: NIODeadline, allocationContextID: UInt32? = nil) {
        self.client = client
        self.structuredReplies = structuredReplies
        self.connectedAt = connectedAt
        self.allocationContextID = allocationContextID
    }
}
