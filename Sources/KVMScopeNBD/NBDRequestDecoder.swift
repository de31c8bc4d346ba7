import NIOCore

/// Frames the transmission phase: request headers (28 bytes compact, 32 with extended headers),
/// and for each request that carries a payload its bytes as parts, passed on as they arrive
/// (never accumulated here), then `payloadEnd`. Whether a payload is wanted (size limits,
/// memory budget) is the handler's business; the decoder only keeps framing, so an oversized
/// compact WRITE costs no memory and the connection stays in step.
public struct NBDRequestDecoder: ByteToMessageDecoder {
    public typealias InboundOut = NBDTransmissionMessage

    private enum State {
        case waitingForHeader
        /// Inside a payload: this many bytes still to come.
        case receivingPayload(remaining: UInt64, received: UInt64)
    }

    private var state = State.waitingForHeader
    /// NBD_OPT_EXTENDED_HEADERS was acknowledged: 32-byte headers with 64-bit lengths.
    private let extendedHeaders: Bool

    public init(extendedHeaders: Bool = false) {
        self.extendedHeaders = extendedHeaders
    }

    private var headerSize: Int { extendedHeaders ? 32 : 28 }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        switch state {
        case .waitingForHeader:
            guard buffer.readableBytes >= 4 else { return .needMoreData }
            let start = buffer.readerIndex
            let magic = buffer.getInteger(at: start, as: UInt32.self)!
            let expected = extendedHeaders ? NBD.extendedRequestMagic : NBD.requestMagic
            guard magic == expected else {
                let other = extendedHeaders ? NBD.requestMagic : NBD.extendedRequestMagic
                if magic == other { throw NBDProtocolError.unexpectedHeaderStyle(extendedNegotiated: extendedHeaders) }
                throw NBDProtocolError.badRequestMagic(magic)
            }
            guard buffer.readableBytes >= headerSize else { return .needMoreData }
            let flags = buffer.getInteger(at: start + 4, as: UInt16.self)!
            let type = buffer.getInteger(at: start + 6, as: UInt16.self)!
            let length: UInt64
            let hasPayload: Bool
            if extendedHeaders {
                length = buffer.getInteger(at: start + 24, as: UInt64.self)!
                // proto.md: WRITE MUST set NBD_CMD_FLAG_PAYLOAD_LEN. QEMU's server (nbd/server.c,
                // nbd_co_receive_request) traces a WRITE without it as noncompliant and still
                // reads its payload; so does kvmscope, which keeps such a client in step.
                hasPayload = flags & NBD.CommandFlag.payloadLength != 0 || type == NBD.Command.write.rawValue
                if hasPayload && length > UInt64(NBD.maximumPayload) { throw NBDProtocolError.payloadTooLarge(length) }
            } else {
                length = UInt64(buffer.getInteger(at: start + 24, as: UInt32.self)!)
                // Only WRITE carries data (proto.md: every other compact request is the header alone).
                hasPayload = type == NBD.Command.write.rawValue
            }
            let request = NBDRequest(flags: flags, type: type, cookie: buffer.getInteger(at: start + 8, as: UInt64.self)!,
                                     offset: buffer.getInteger(at: start + 16, as: UInt64.self)!, length: length,
                                     hasPayload: hasPayload)
            buffer.moveReaderIndex(forwardBy: headerSize)
            context.fireChannelRead(wrapInboundOut(.request(request)))
            if hasPayload {
                if length == 0 {
                    context.fireChannelRead(wrapInboundOut(.payloadEnd))
                } else {
                    state = .receivingPayload(remaining: length, received: 0)
                }
            }
            return .continue

        case let .receivingPayload(remaining, received):
            guard buffer.readableBytes > 0 else { return .needMoreData }
            let n = Int(min(UInt64(buffer.readableBytes), remaining))
            let part = buffer.readSlice(length: n)!
            let left = remaining - UInt64(n)
            state = left == 0 ? .waitingForHeader : .receivingPayload(remaining: left, received: received + UInt64(n))
            context.fireChannelRead(wrapInboundOut(.payload(part)))
            if left == 0 { context.fireChannelRead(wrapInboundOut(.payloadEnd)) }
            return .continue
        }
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue, buffer.readableBytes > 0 {}
        // What is left is a message the client never finished: report it, apply nothing.
        switch state {
        case let .receivingPayload(remaining, received):
            context.fireErrorCaught(NBDTruncatedMessage(what: "write payload", receivedBytes: Int(received), missingBytes: Int(remaining)))
        case .waitingForHeader where buffer.readableBytes > 0:
            context.fireErrorCaught(NBDTruncatedMessage(what: "request header", receivedBytes: buffer.readableBytes, missingBytes: nil))
        case .waitingForHeader:
            break
        }
        buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
        state = .waitingForHeader
        return .needMoreData
    }
}
