import NIOCore

/// Frames the transmission phase: 28-byte request headers, and for each WRITE its payload as
/// parts, passed on as they arrive (never accumulated here), then `payloadEnd`. Whether a
/// payload is wanted (size limits, memory budget) is the handler's business; the decoder only
/// keeps framing, so an oversized WRITE costs no memory and the connection stays in step.
public struct NBDRequestDecoder: ByteToMessageDecoder {
    public typealias InboundOut = NBDTransmissionMessage

    private enum State {
        case waitingForHeader
        /// Inside a WRITE payload: this many bytes still to come.
        case receivingPayload(remaining: UInt32, received: UInt32)
    }

    private var state = State.waitingForHeader

    public init() {}

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        switch state {
        case .waitingForHeader:
            guard buffer.readableBytes >= 28 else { return .needMoreData }
            let start = buffer.readerIndex
            let magic = buffer.getInteger(at: start, as: UInt32.self)!
            guard magic == NBD.requestMagic else { throw NBDProtocolError.badRequestMagic(magic) }
            let request = NBDRequest(flags: buffer.getInteger(at: start + 4, as: UInt16.self)!,
                                     type: buffer.getInteger(at: start + 6, as: UInt16.self)!,
                                     cookie: buffer.getInteger(at: start + 8, as: UInt64.self)!,
                                     offset: buffer.getInteger(at: start + 16, as: UInt64.self)!,
                                     length: buffer.getInteger(at: start + 24, as: UInt32.self)!)
            buffer.moveReaderIndex(forwardBy: 28)
            context.fireChannelRead(wrapInboundOut(.request(request)))
            // Only WRITE carries data (proto.md: every other request is the header alone).
            if request.type == NBD.Command.write.rawValue {
                if request.length == 0 {
                    context.fireChannelRead(wrapInboundOut(.payloadEnd))
                } else {
                    state = .receivingPayload(remaining: request.length, received: 0)
                }
            }
            return .continue

        case let .receivingPayload(remaining, received):
            guard buffer.readableBytes > 0 else { return .needMoreData }
            let n = Int(min(UInt32(clamping: buffer.readableBytes), remaining))
            let part = buffer.readSlice(length: n)!
            let left = remaining - UInt32(n)
            state = left == 0 ? .waitingForHeader : .receivingPayload(remaining: left, received: received + UInt32(n))
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
