import NIOCore

/// The reply headers a connection negotiated, and the one place that shapes each reply for
/// them (proto.md, "Simple reply message", "Structured reply chunk message", "Extended reply
/// chunk message"). Every reply is one message: a read is answered in one chunk, so DONE is
/// always set.
public enum NBDReplyStyle: Sendable, Equatable {
    /// No NBD_OPT_STRUCTURED_REPLY: 16-byte simple replies only.
    case simple
    /// NBD_OPT_STRUCTURED_REPLY: 20-byte chunks for reads and block status, simple replies
    /// for the rest (allowed there: "a simple reply MAY be used ... if the reply has no data").
    case structured
    /// NBD_OPT_EXTENDED_HEADERS: 32-byte chunks for everything ("the server MUST NOT use
    /// simple replies even when there is no payload"), with the request's offset echoed.
    case extended

    /// Chunks may carry data (DF, block status and meta contexts need this).
    public var hasChunks: Bool { self != .simple }

    /// Success without data (WRITE, FLUSH, TRIM, WRITE_ZEROES, a 0-byte READ).
    func done(_ r: NBDRequest) -> NBDServerMessage {
        switch self {
        case .simple: return .simpleReply(error: 0, cookie: r.cookie, data: nil)
        case .structured:
            return r.type == NBD.Command.read.rawValue ? .structuredDone(cookie: r.cookie) : .simpleReply(error: 0, cookie: r.cookie, data: nil)
        case .extended: return chunk(NBD.ReplyType.none, r)
        }
    }

    /// A READ's data, all of it in one chunk.
    func read(_ r: NBDRequest, _ data: ByteBuffer) -> NBDServerMessage {
        guard data.readableBytes > 0 else { return done(r) }
        switch self {
        case .simple: return .simpleReply(error: 0, cookie: r.cookie, data: data)
        case .structured: return .structuredData(cookie: r.cookie, offset: r.offset, data: data)
        case .extended:
            var fields = ByteBuffer()
            fields.writeInteger(r.offset)
            return .extendedChunk(type: NBD.ReplyType.offsetData, cookie: r.cookie, offset: r.offset, fields: fields, data: data)
        }
    }

    /// A failed request. With structured replies, READ and BLOCK_STATUS errors are chunks
    /// (QEMU drops the connection on a simple reply to a READ; a block status error is answered
    /// only where chunks exist) and carry the message; other commands may use simple replies.
    func error(_ r: NBDRequest, _ error: NBD.WireError, _ text: String) -> NBDServerMessage {
        let chunked = self == .extended
            || (self == .structured && (r.type == NBD.Command.read.rawValue || r.type == NBD.Command.blockStatus.rawValue))
        guard chunked else { return .simpleReply(error: error.rawValue, cookie: r.cookie, data: nil) }
        guard self == .extended else { return .structuredError(cookie: r.cookie, error: error.rawValue, message: text) }
        // proto.md: the message is a string, at most 4096 bytes.
        let message = Array(text.utf8.prefix(4096))
        var fields = ByteBuffer()
        fields.writeInteger(error.rawValue)
        fields.writeInteger(UInt16(message.count))
        fields.writeBytes(message)
        return .extendedChunk(type: NBD.ReplyType.error, cookie: r.cookie, offset: r.offset, fields: fields, data: nil)
    }

    /// One context's descriptors (at least one): NBD_REPLY_TYPE_BLOCK_STATUS, or with extended
    /// headers NBD_REPLY_TYPE_BLOCK_STATUS_EXT ("MUST be used, regardless of whether the
    /// client's hinted effect length was less than 32 bits"), whose 64-bit status words have
    /// their high half zero for base:allocation.
    func blockStatus(_ r: NBDRequest, contextID: UInt32, _ descriptors: [NBDBlockDescriptor]) -> NBDServerMessage {
        guard self == .extended else {
            return .structuredBlockStatus(cookie: r.cookie, contextID: contextID, descriptors: descriptors)
        }
        var fields = ByteBuffer()
        fields.reserveCapacity(8 + 16 * descriptors.count)
        fields.writeInteger(contextID)
        fields.writeInteger(UInt32(descriptors.count))   // ≤ NBD.maximumBlockStatusDescriptors
        for d in descriptors {
            fields.writeInteger(d.length)
            fields.writeInteger(UInt64(d.flags))
        }
        return .extendedChunk(type: NBD.replyTypeBlockStatusExtended, cookie: r.cookie, offset: r.offset, fields: fields, data: nil)
    }

    private func chunk(_ type: UInt16, _ r: NBDRequest) -> NBDServerMessage {
        .extendedChunk(type: type, cookie: r.cookie, offset: r.offset, fields: ByteBuffer(), data: nil)
    }
}
