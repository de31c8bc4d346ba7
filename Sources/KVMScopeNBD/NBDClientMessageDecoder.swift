import NIOCore

/// Frames the client's byte stream into `NBDClientMessage`s: client flags, then options, then
/// requests (with WRITE payloads), according to the shared connection phase. Never buffers more
/// than one request: a WRITE longer than `NBD.maximumPayload` is reported without its data and
/// the payload is skipped as it arrives, so a hostile length cannot exhaust memory.
struct NBDClientMessageDecoder: ByteToMessageDecoder {
    public typealias InboundOut = NBDClientMessage

    private let phase: NBDConnectionPhase
    private var discardRemaining: UInt64 = 0
    private let maximumPayload: UInt32

    public init(phase: NBDConnectionPhase, maximumPayload: UInt32 = NBD.maximumPayload) {
        self.phase = phase
        self.maximumPayload = maximumPayload
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        if discardRemaining > 0 {
            let n = Int(min(UInt64(buffer.readableBytes), discardRemaining))
            buffer.moveReaderIndex(forwardBy: n)
            discardRemaining -= UInt64(n)
            return discardRemaining == 0 ? .continue : .needMoreData
        }
        switch phase.phase {
        case .clientFlags:
            guard let flags = buffer.readInteger(as: UInt32.self) else { return .needMoreData }
            context.fireChannelRead(wrapInboundOut(.clientFlags(flags)))
            return .continue

        case .options:
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

        case .transmission:
            guard buffer.readableBytes >= 28 else { return .needMoreData }
            let start = buffer.readerIndex
            let magic = buffer.getInteger(at: start, as: UInt32.self)!
            guard magic == NBD.requestMagic else { throw NBDProtocolError.badRequestMagic(magic) }
            var request = NBDRequest(flags: buffer.getInteger(at: start + 4, as: UInt16.self)!,
                                     type: buffer.getInteger(at: start + 6, as: UInt16.self)!,
                                     cookie: buffer.getInteger(at: start + 8, as: UInt64.self)!,
                                     offset: buffer.getInteger(at: start + 16, as: UInt64.self)!,
                                     length: buffer.getInteger(at: start + 24, as: UInt32.self)!)
            if request.type == NBD.Command.write.rawValue {
                if request.length > maximumPayload {
                    buffer.moveReaderIndex(forwardBy: 28)
                    discardRemaining = UInt64(request.length)
                    request.payloadDiscarded = true
                } else {
                    guard buffer.readableBytes >= 28 + Int(request.length) else { return .needMoreData }
                    buffer.moveReaderIndex(forwardBy: 28)
                    request.payload = buffer.readSlice(length: Int(request.length))!
                }
            } else {
                buffer.moveReaderIndex(forwardBy: 28)
            }
            context.fireChannelRead(wrapInboundOut(.request(request)))
            return .continue
        }
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        // A client that vanished mid-message: the partial message is dropped, nothing is applied.
        while try decode(context: context, buffer: &buffer) == .continue, buffer.readableBytes > 0 {}
        buffer.clear()
        return .needMoreData
    }
}
