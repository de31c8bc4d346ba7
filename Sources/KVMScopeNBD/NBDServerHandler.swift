import Foundation
import KVMScope
import NIOCore

/// What the server reports while it runs (the CLI prints it and writes the JSON fault log).
public protocol NBDServerObserver: AnyObject, Sendable {
    func clientConnected(_ client: String)
    func clientDisconnected(_ client: String, requests: Int)
    /// The client broke the protocol; the connection was closed.
    func protocolViolation(_ client: String, _ message: String)
    /// A rule injected a fault (or a delay) into a request.
    func faultInjected(_ fault: InjectedFault, client: String, command: String, wireError: NBD.WireError?)
}

/// The export the server offers: one raw image, any name accepted ("" is the default export).
public struct NBDExport: Sendable {
    public var name: String
    public var description: String
    public var backend: any BlockBackend

    public init(name: String, description: String = "", backend: any BlockBackend) {
        self.name = name
        self.description = description
        self.backend = backend
    }

    func matches(_ requested: String) -> Bool { requested.isEmpty || requested == name }
}

/// Answers one client: option negotiation, then requests, each by one call into the export's
/// `BlockBackend`. Replies to injected delays are scheduled on the event loop, never slept on.
/// Disk I/O itself runs on the event loop: it is page-cache I/O on a local file, and the group
/// has one loop per core so that clients on other loops are not held up by it.
public final class NBDServerHandler: ChannelInboundHandler {
    public typealias InboundIn = NBDClientMessage
    public typealias OutboundOut = NBDServerMessage

    private let export: NBDExport
    private let phase: NBDConnectionPhase
    private let observer: (any NBDServerObserver)?
    private var client = "?"
    private var noZeroes = false
    private var structuredReplies = false
    private var pendingReplies = 0
    private var disconnectRequested = false
    private var requests = 0
    /// Set when the server decides to drop the client (protocol violation, unknown export,
    /// NBD_OPT_ABORT). The decoder keeps handing over what else the client's last read held;
    /// none of it may be acted on, or a rejected client could still negotiate and write.
    private var droppingClient = false

    public init(export: NBDExport, phase: NBDConnectionPhase, observer: (any NBDServerObserver)?) {
        self.export = export
        self.phase = phase
        self.observer = observer
    }

    private var backend: any BlockBackend { export.backend }

    private var transmissionFlags: UInt16 {
        var f = NBD.TransmissionFlag.hasFlags | NBD.TransmissionFlag.sendFlush | NBD.TransmissionFlag.sendFUA
            | NBD.TransmissionFlag.sendTrim | NBD.TransmissionFlag.sendWriteZeroes | NBD.TransmissionFlag.canMultiConn
        if backend.isReadOnly { f |= NBD.TransmissionFlag.readOnly }
        // Reads are always answered in one chunk, so "don't fragment" is honoured by construction.
        if structuredReplies { f |= NBD.TransmissionFlag.sendDF }
        return f
    }

    public func channelActive(context: ChannelHandlerContext) {
        client = Self.describe(context.channel.remoteAddress)
        observer?.clientConnected(client)
        context.writeAndFlush(wrapOutboundOut(.greeting(handshakeFlags: NBD.HandshakeFlag.fixedNewstyle | NBD.HandshakeFlag.noZeroes)),
                              promise: nil)
        context.fireChannelActive()
    }

    public func channelInactive(context: ChannelHandlerContext) {
        observer?.clientDisconnected(client, requests: requests)
        context.fireChannelInactive()
    }

    public func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let e = error as? NBDProtocolError {
            observer?.protocolViolation(client, e.description)
        } else if let e = error as? IOError, e.errnoCode == ECONNRESET || e.errnoCode == EPIPE {
            // The client went away; channelInactive reports it.
        } else {
            observer?.protocolViolation(client, "\(error)")
        }
        droppingClient = true
        context.close(promise: nil)
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !droppingClient else { return }
        switch unwrapInboundIn(data) {
        case let .clientFlags(flags):
            let known = NBD.ClientFlag.fixedNewstyle | NBD.ClientFlag.noZeroes
            guard flags & ~known == 0 else {
                observer?.protocolViolation(client, NBDProtocolError.unknownClientFlags(flags).description)
                droppingClient = true
                context.close(promise: nil)
                return
            }
            noZeroes = flags & NBD.ClientFlag.noZeroes != 0
            phase.phase = .options
        case let .option(code, data):
            handleOption(context: context, code: code, data: data)
        case let .request(request):
            guard !disconnectRequested else { return }
            requests += 1
            handleRequest(context: context, request)
        }
    }

    // MARK: - negotiation

    private func reply(_ context: ChannelHandlerContext, _ option: UInt32, _ type: UInt32, _ data: ByteBuffer? = nil) {
        context.write(wrapOutboundOut(.optionReply(option: option, type: type, data: data ?? ByteBuffer())), promise: nil)
    }

    private func errorReply(_ context: ChannelHandlerContext, _ option: UInt32, _ type: UInt32, _ message: String) {
        reply(context, option, type, ByteBuffer(string: message))
    }

    private func handleOption(context: ChannelHandlerContext, code: UInt32, data: ByteBuffer) {
        var data = data
        switch NBD.Option(rawValue: code) {
        case .exportName:
            let name = data.readString(length: data.readableBytes) ?? ""
            guard export.matches(name) else {
                // NBD_OPT_EXPORT_NAME has no error reply: the spec's only answer is to close.
                observer?.protocolViolation(client, "asked for unknown export '\(name)'")
                droppingClient = true
                context.close(promise: nil)
                return
            }
            phase.phase = .transmission
            context.write(wrapOutboundOut(.exportNameReply(size: UInt64(backend.size), transmissionFlags: transmissionFlags,
                                                            padWithZeroes: !noZeroes)), promise: nil)

        case .abort:
            droppingClient = true
            context.writeAndFlush(wrapOutboundOut(.optionReply(option: code, type: NBD.Reply.ack, data: ByteBuffer())))
                .whenComplete { _ in context.close(promise: nil) }

        case .list:
            guard data.readableBytes == 0 else {
                return errorReply(context, code, NBD.Reply.errInvalid, "NBD_OPT_LIST takes no data")
            }
            var entry = ByteBuffer()
            entry.writeInteger(UInt32(export.name.utf8.count))
            entry.writeString(export.name)
            entry.writeString(export.description)
            reply(context, code, NBD.Reply.server, entry)
            reply(context, code, NBD.Reply.ack)

        case .info, .go:
            guard let nameLength = data.readInteger(as: UInt32.self), nameLength <= 4096,
                  data.readableBytes >= Int(nameLength) + 2,
                  let name = data.readString(length: Int(nameLength)),
                  let count = data.readInteger(as: UInt16.self), data.readableBytes == Int(count) * 2 else {
                return errorReply(context, code, NBD.Reply.errInvalid, "malformed NBD_OPT_INFO/GO data")
            }
            var wanted: Set<UInt16> = []
            for _ in 0..<count { wanted.insert(data.readInteger(as: UInt16.self)!) }
            guard export.matches(name) else {
                return errorReply(context, code, NBD.Reply.errUnknown, "no export named '\(name)'")
            }
            var info = ByteBuffer()
            info.writeInteger(NBD.Info.export)
            info.writeInteger(UInt64(backend.size))
            info.writeInteger(transmissionFlags)
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
            sizes.writeInteger(NBD.minimumBlockSize)
            sizes.writeInteger(NBD.preferredBlockSize)
            sizes.writeInteger(NBD.maximumPayload)
            reply(context, code, NBD.Reply.info, sizes)
            reply(context, code, NBD.Reply.ack)
            if NBD.Option(rawValue: code) == .go { phase.phase = .transmission }

        case .structuredReply:
            guard data.readableBytes == 0 else {
                return errorReply(context, code, NBD.Reply.errInvalid, "NBD_OPT_STRUCTURED_REPLY takes no data")
            }
            guard !structuredReplies else {
                return errorReply(context, code, NBD.Reply.errInvalid, "structured replies already negotiated")
            }
            structuredReplies = true
            reply(context, code, NBD.Reply.ack)

        default:
            // STARTTLS, meta contexts (block status), extended headers and unknown options.
            errorReply(context, code, NBD.Reply.errUnsup, "option \(code) is not supported by kvmscope")
        }
    }

    // MARK: - transmission

    private func handleRequest(context: ChannelHandlerContext, _ r: NBDRequest) {
        guard let command = r.command, command != .cache, command != .blockStatus else {
            return sendError(context, r, .einval, "command \(r.type) is not supported")
        }
        if command == .disconnect {
            disconnectRequested = true
            if pendingReplies == 0 { context.close(promise: nil) }
            return
        }
        let allowed: UInt16
        switch command {
        case .read: allowed = structuredReplies ? NBD.CommandFlag.dontFragment : 0
        case .write, .trim: allowed = NBD.CommandFlag.fua
        case .writeZeroes: allowed = NBD.CommandFlag.fua | NBD.CommandFlag.noHole
        default: allowed = 0
        }
        if r.flags & ~allowed != 0 {
            return sendError(context, r, .einval, "flags 0x\(String(r.flags, radix: 16)) not valid for \(command.name)")
        }
        if command == .write && r.payloadDiscarded {
            return sendError(context, r, .einval, "write of \(r.length) bytes exceeds the \(NBD.maximumPayload)-byte maximum")
        }
        if command == .read && r.length > NBD.maximumPayload {
            return sendError(context, r, .einval, "read of \(r.length) bytes exceeds the \(NBD.maximumPayload)-byte maximum")
        }
        let size = UInt64(backend.size)
        let (end, overflow) = r.offset.addingReportingOverflow(UInt64(r.length))
        if command != .flush && (overflow || end > size) {
            let e: NBD.WireError = (command == .write || command == .writeZeroes) ? .enospc : .einval
            return sendError(context, r, e, "\(command.name) at \(r.offset)+\(r.length) is beyond the end of the export (\(size) bytes)")
        }
        if backend.isReadOnly && (command == .write || command == .writeZeroes || command == .trim) {
            return sendError(context, r, .eperm, "the export is read-only")
        }

        let offset = Int64(r.offset), length = Int64(r.length)
        let fua = r.flags & NBD.CommandFlag.fua != 0
        switch command {
        case .read:
            var data = context.channel.allocator.buffer(capacity: Int(r.length))
            var completion = BlockCompletion.ok
            if r.length > 0 {
                data.writeWithUnsafeMutableBytes(minimumWritableBytes: Int(r.length)) { ptr in
                    completion = backend.read(offset: offset, into: UnsafeMutableRawBufferPointer(rebasing: ptr[0..<Int(r.length)]))
                    return Int(r.length)
                }
            }
            finish(context, r, command, completion, data: data)
        case .write:
            let completion = r.payload!.withUnsafeReadableBytes { backend.write(offset: offset, from: $0, fua: fua) }
            finish(context, r, command, completion)
        case .writeZeroes:
            let mayUnmap = r.flags & NBD.CommandFlag.noHole == 0
            finish(context, r, command, backend.writeZeroes(offset: offset, length: length, mayUnmap: mayUnmap, fua: fua))
        case .trim:
            var completion = backend.discard(offset: offset, length: length)
            if completion.succeeded && fua { completion = backend.flush() }
            finish(context, r, command, completion)
        case .flush:
            finish(context, r, command, backend.flush())
        case .disconnect, .cache, .blockStatus:
            break
        }
    }

    private func finish(_ context: ChannelHandlerContext, _ r: NBDRequest, _ command: NBD.Command,
                        _ completion: BlockCompletion, data: ByteBuffer? = nil) {
        var wire: NBD.WireError?
        if completion.errno != 0 { wire = NBD.WireError(hostErrno: completion.errno) }
        for fault in completion.faults {
            observer?.faultInjected(fault, client: client, command: command.name,
                                    wireError: fault.errno == 0 ? nil : NBD.WireError(hostErrno: fault.errno))
        }
        let message: NBDServerMessage
        if let wire {
            let why = completion.faults.first.map { "injected by \($0.rule.location)" } ?? "I/O error on the image"
            message = errorMessage(r, wire, why)
        } else if command == .read {
            if structuredReplies {
                message = r.length == 0 ? .structuredDone(cookie: r.cookie) : .structuredData(cookie: r.cookie, offset: r.offset, data: data!)
            } else {
                message = .simpleReply(error: 0, cookie: r.cookie, data: data)
            }
        } else {
            message = .simpleReply(error: 0, cookie: r.cookie, data: nil)
        }
        if completion.delayNanoseconds > 0 {
            pendingReplies += 1
            context.eventLoop.scheduleTask(in: .nanoseconds(Int64(min(completion.delayNanoseconds, UInt64(Int64.max))))) {
                self.pendingReplies -= 1
                guard context.channel.isActive else { return }
                context.writeAndFlush(self.wrapOutboundOut(message), promise: nil)
                if self.disconnectRequested && self.pendingReplies == 0 { context.close(promise: nil) }
            }
        } else {
            context.write(wrapOutboundOut(message), promise: nil)
        }
    }

    private func errorMessage(_ r: NBDRequest, _ error: NBD.WireError, _ text: String) -> NBDServerMessage {
        // Once structured replies are negotiated, every READ reply must be structured (QEMU
        // drops the connection on a simple one); other commands may use simple replies.
        if structuredReplies && r.type == NBD.Command.read.rawValue {
            return .structuredError(cookie: r.cookie, error: error.rawValue, message: text)
        }
        return .simpleReply(error: error.rawValue, cookie: r.cookie, data: nil)
    }

    private func sendError(_ context: ChannelHandlerContext, _ r: NBDRequest, _ error: NBD.WireError, _ text: String) {
        context.write(wrapOutboundOut(errorMessage(r, error, text)), promise: nil)
    }

    static func describe(_ address: SocketAddress?) -> String {
        guard let address else { return "?" }
        switch address {
        case .v4, .v6:
            let host = address.ipAddress ?? "?"
            let port = address.port ?? 0
            return address.protocol == .inet6 ? "[\(host)]:\(port)" : "\(host):\(port)"
        case .unixDomainSocket:
            return "unix"
        }
    }
}
