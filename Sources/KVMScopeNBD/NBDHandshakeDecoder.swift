import NIOCore

/// Frames the handshake: the client flags, then fixed-newstyle options. It lives only until the
/// export is chosen: the handshake handler then removes it from the pipeline (as NIOHTTP1's
/// `HTTPServerUpgradeHandler` removes the HTTP decoder), and `decodeLast` passes whatever the
/// client already sent after its last option on to the request decoder behind it.
public struct NBDHandshakeDecoder: ByteToMessageDecoder {
    public typealias InboundOut = NBDHandshakeMessage

    private enum State {
        case waitingForClientFlags
        case waitingForOption
    }

    private var state = State.waitingForClientFlags
    /// Set by the handshake handler from NBD_OPT_STARTTLS's acknowledgement to the end of the
    /// TLS handshake, when nothing may reach this decoder (`NBDStartTLSGate`).
    private let startTLS: NBDStartTLSGate?

    public init() { startTLS = nil }

    init(startTLS: NBDStartTLSGate) { self.startTLS = startTLS }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        if let startTLS, startTLS.pending {
            guard buffer.readableBytes == 0 else { throw NBDProtocolError.plaintextAfterStartTLS(buffer.readableBytes) }
            return .needMoreData
        }
        switch state {
        case .waitingForClientFlags:
            guard let flags = buffer.readInteger(as: UInt32.self) else { return .needMoreData }
            state = .waitingForOption
            context.fireChannelRead(wrapInboundOut(.clientFlags(flags)))
            return .continue

        case .waitingForOption:
            guard buffer.readableBytes >= 16 else { return .needMoreData }
            let start = buffer.readerIndex
            let magic = buffer.getInteger(at: start, as: UInt64.self)!
            guard magic == NBD.optionMagic else { throw NBDProtocolError.badOptionMagic(magic) }
            let code = buffer.getInteger(at: start + 8, as: UInt32.self)!
            let length = buffer.getInteger(at: start + 12, as: UInt32.self)!
            guard length <= NBD.maximumOptionLength else { throw NBDProtocolError.optionTooLarge(length) }
            guard buffer.readableBytes >= 16 + Int(length) else { return .needMoreData }
            buffer.moveReaderIndex(forwardBy: 16)
            let data = buffer.readSlice(length: Int(length))!
            context.fireChannelRead(wrapInboundOut(.option(code: code, data: data)))
            return .continue
        }
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        if !seenEOF {
            // Removed because the handshake is over: the rest belongs to the transmission phase.
            if buffer.readableBytes > 0 {
                let rest = buffer.readSlice(length: buffer.readableBytes)!
                context.fireChannelRead(NIOAny(rest))
            }
            return .needMoreData
        }
        while try decode(context: context, buffer: &buffer) == .continue, buffer.readableBytes > 0 {}
        if buffer.readableBytes > 0 {
            let what = state == .waitingForClientFlags ? "client flags" : "option"
            context.fireErrorCaught(NBDTruncatedMessage(what: what, receivedBytes: buffer.readableBytes, missingBytes: nil))
            buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
        }
        return .needMoreData
    }
}
