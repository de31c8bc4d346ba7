import NIOCore

/// Serialises `NBDServerMessage`s in network byte order.
struct NBDServerMessageEncoder: MessageToByteEncoder {
    public typealias OutboundIn = NBDServerMessage

    public init() {}

    public func encode(data message: NBDServerMessage, out: inout ByteBuffer) throws {
        switch message {
        case let .greeting(flags):
            out.writeInteger(NBD.nbdMagic)
            out.writeInteger(NBD.optionMagic)
            out.writeInteger(flags)

        case .optionReply(let option, let type, var data):
            out.writeInteger(NBD.optionReplyMagic)
            out.writeInteger(option)
            out.writeInteger(type)
            out.writeInteger(UInt32(data.readableBytes))
            out.writeBuffer(&data)

        case let .exportNameReply(size, flags, pad):
            out.writeInteger(size)
            out.writeInteger(flags)
            if pad { out.writeRepeatingByte(0, count: 124) }

        case .simpleReply(let error, let cookie, let data):
            out.writeInteger(NBD.simpleReplyMagic)
            out.writeInteger(error)
            out.writeInteger(cookie)
            if var data { out.writeBuffer(&data) }

        case .structuredData(let cookie, let offset, var data):
            writeChunkHeader(&out, type: NBD.ReplyType.offsetData, cookie: cookie, length: UInt32(8 + data.readableBytes))
            out.writeInteger(offset)
            out.writeBuffer(&data)

        case let .structuredDone(cookie):
            writeChunkHeader(&out, type: NBD.ReplyType.none, cookie: cookie, length: 0)

        case let .structuredError(cookie, error, message):
            let text = Array(message.utf8.prefix(4096))
            writeChunkHeader(&out, type: NBD.ReplyType.error, cookie: cookie, length: UInt32(6 + text.count))
            out.writeInteger(error)
            out.writeInteger(UInt16(text.count))
            out.writeBytes(text)
        }
    }

    private func writeChunkHeader(_ out: inout ByteBuffer, type: UInt16, cookie: UInt64, length: UInt32) {
        out.writeInteger(NBD.structuredReplyMagic)
        out.writeInteger(NBD.replyFlagDone)
        out.writeInteger(type)
        out.writeInteger(cookie)
        out.writeInteger(length)
    }
}
