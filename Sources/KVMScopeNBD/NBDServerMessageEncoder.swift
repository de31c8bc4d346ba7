import NIOCore

/// Serialises `NBDServerMessage`s in network byte order. A READ's data is not copied: the reply
/// header goes out as its own small buffer and the data buffer follows it unchanged (as
/// NIOHTTP1's response encoder passes body parts through), so a 32 MiB read is in memory once.
public final class NBDServerMessageEncoder: ChannelOutboundHandler, RemovableChannelHandler {
    public typealias OutboundIn = NBDServerMessage
    public typealias OutboundOut = ByteBuffer

    public init() {}

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        var header = context.channel.allocator.buffer(capacity: 64)
        let body = Self.encode(unwrapOutboundIn(data), into: &header)
        if let body, body.readableBytes > 0 {
            context.write(wrapOutboundOut(header), promise: nil)
            context.write(wrapOutboundOut(body), promise: promise)
        } else {
            context.write(wrapOutboundOut(header), promise: promise)
        }
    }

    /// Writes `message` into `out`, except a data payload, which is returned to be sent after it.
    public static func encode(_ message: NBDServerMessage, into out: inout ByteBuffer) -> ByteBuffer? {
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
            return data

        case .structuredData(let cookie, let offset, let data):
            writeChunkHeader(&out, type: NBD.ReplyType.offsetData, cookie: cookie, length: UInt32(8 + data.readableBytes))
            out.writeInteger(offset)
            return data

        case let .structuredDone(cookie):
            writeChunkHeader(&out, type: NBD.ReplyType.none, cookie: cookie, length: 0)

        case let .structuredError(cookie, error, message):
            let text = Array(message.utf8.prefix(4096))
            writeChunkHeader(&out, type: NBD.ReplyType.error, cookie: cookie, length: UInt32(6 + text.count))
            out.writeInteger(error)
            out.writeInteger(UInt16(text.count))
            out.writeBytes(text)

        case let .structuredBlockStatus(cookie, contextID, descriptors):
            // At most NBD.maximumBlockStatusDescriptors: 4 + 8 × 16384 bytes, far below 2^32.
            writeChunkHeader(&out, type: NBD.replyTypeBlockStatus, cookie: cookie, length: UInt32(4 + 8 * descriptors.count))
            out.writeInteger(contextID)
            for d in descriptors {
                out.writeInteger(UInt32(d.length))   // ≤ the request's 32-bit length
                out.writeInteger(d.flags)
            }

        case .extendedChunk(let type, let cookie, let offset, var fields, let data):
            out.writeInteger(NBD.extendedReplyMagic)
            out.writeInteger(NBD.replyFlagDone)
            out.writeInteger(type)
            out.writeInteger(cookie)
            out.writeInteger(offset)
            out.writeInteger(UInt64(fields.readableBytes + (data?.readableBytes ?? 0)))
            out.writeBuffer(&fields)
            return data
        }
        return nil
    }

    private static func writeChunkHeader(_ out: inout ByteBuffer, type: UInt16, cookie: UInt64, length: UInt32) {
        out.writeInteger(NBD.structuredReplyMagic)
        out.writeInteger(NBD.replyFlagDone)
        out.writeInteger(type)
        out.writeInteger(cookie)
        out.writeInteger(length)
    }
}
