import NIOCore

/// What a client sends during the handshake, decoded by `NBDHandshakeDecoder`.
public enum NBDHandshakeMessage: Equatable {
    /// The 32-bit client flags that answer the server's greeting.
    case clientFlags(UInt32)
    /// One option of the fixed-newstyle negotiation (`IHAVEOPT`, option, length, data).
    case option(code: UInt32, data: ByteBuffer)
}

/// What a client sends once the export is chosen, decoded by `NBDRequestDecoder`. Like
/// NIOHTTP1's head/body/end parts: a WRITE's payload follows its request as it arrives, so the
/// decoder itself never holds more than a request header.
public enum NBDTransmissionMessage: Equatable {
    /// One request header (28 bytes, 32 with extended headers). When it `hasPayload`,
    /// `payload` parts and `payloadEnd` follow.
    case request(NBDRequest)
    /// The next bytes of the current request's payload.
    case payload(ByteBuffer)
    /// The current request's payload is complete (also sent for a zero-length WRITE).
    case payloadEnd
}

public struct NBDRequest: Equatable, Sendable {
    public var flags: UInt16
    /// Raw command number (unknown commands are answered with EINVAL, not dropped).
    public var type: UInt16
    public var cookie: UInt64
    public var offset: UInt64
    /// Compact headers: 32 bits (a WRITE's payload, any other command's effect length).
    /// Extended headers: 64 bits, a payload length when `hasPayload`, else an effect length.
    public var length: UInt64
    /// Payload parts follow the request: a WRITE, or with extended headers any request that
    /// sets NBD_CMD_FLAG_PAYLOAD_LEN.
    public var hasPayload: Bool

    public init(flags: UInt16, type: UInt16, cookie: UInt64, offset: UInt64, length: UInt64, hasPayload: Bool? = nil) {
        self.flags = flags
        self.type = type
        self.cookie = cookie
        self.offset = offset
        self.length = length
        self.hasPayload = hasPayload ?? (type == NBD.Command.write.rawValue)
    }

    public var command: NBD.Command? { NBD.Command(rawValue: type) }
}

/// What the server sends, encoded by `NBDServerMessageEncoder`.
public enum NBDServerMessage: Equatable {
    /// `NBDMAGIC`, `IHAVEOPT`, handshake flags.
    case greeting(handshakeFlags: UInt16)
    /// Option reply: magic, option, reply type, length, data.
    case optionReply(option: UInt32, type: UInt32, data: ByteBuffer)
    /// The answer to NBD_OPT_EXPORT_NAME: size, transmission flags, 124 zero bytes unless NO_ZEROES.
    case exportNameReply(size: UInt64, transmissionFlags: UInt16, padWithZeroes: Bool)
    /// Simple reply; `data` only for a successful READ.
    case simpleReply(error: UInt32, cookie: UInt64, data: ByteBuffer?)
    /// Structured NBD_REPLY_TYPE_OFFSET_DATA chunk (the whole read in one chunk, DONE set).
    case structuredData(cookie: UInt64, offset: UInt64, data: ByteBuffer)
    /// Structured NBD_REPLY_TYPE_NONE with DONE.
    case structuredDone(cookie: UInt64)
    /// Structured NBD_REPLY_TYPE_ERROR with DONE: error value and a human-readable message.
    case structuredError(cookie: UInt64, error: UInt32, message: String)
    /// Structured NBD_REPLY_TYPE_BLOCK_STATUS with DONE: one context's descriptors (at least one).
    case structuredBlockStatus(cookie: UInt64, contextID: UInt32, descriptors: [NBDBlockDescriptor])
    /// With extended headers, every reply is one of these (proto.md: no simple replies): a
    /// 32-byte header echoing the request's cookie and offset, then `fields` (the chunk type's
    /// fixed part: an OFFSET_DATA offset, an error's code and message, block status
    /// descriptors) and `data` (a READ's bytes, sent without a copy). Always the last chunk.
    case extendedChunk(type: UInt16, cookie: UInt64, offset: UInt64, fields: ByteBuffer, data: ByteBuffer?)
}

/// Protocol violations after which the connection cannot continue (framing is lost).
public enum NBDProtocolError: Error, Equatable, CustomStringConvertible {
    case badOptionMagic(UInt64)
    case optionTooLarge(UInt32)
    case badRequestMagic(UInt32)
    case unknownClientFlags(UInt32)
    case tooManyOptions(Int)
    /// Bytes in the clear after NBD_OPT_STARTTLS, before the TLS handshake (`NBDStartTLSGate`).
    case plaintextAfterStartTLS(Int)
    /// Extended headers: a payload longer than the advertised maximum (proto.md: the server
    /// SHOULD hard-disconnect; reading 2^64 bytes to stay in step is no option).
    case payloadTooLarge(UInt64)
    /// A request header of the other style: compact after NBD_OPT_EXTENDED_HEADERS, or
    /// extended without it (framing is lost: the headers differ in length).
    case unexpectedHeaderStyle(extendedNegotiated: Bool)

    public var description: String {
        switch self {
        case let .badOptionMagic(m): return "option without IHAVEOPT magic (got 0x\(String(m, radix: 16)))"
        case let .optionTooLarge(n): return "option data of \(n) bytes (limit \(NBD.maximumOptionLength))"
        case let .badRequestMagic(m): return "request with bad magic 0x\(String(m, radix: 16))"
        case let .unknownClientFlags(f): return "unknown client flags 0x\(String(f, radix: 16))"
        case let .tooManyOptions(n): return "more than \(n) options without choosing an export"
        case let .plaintextAfterStartTLS(n):
            return "\(n) bytes sent in the clear after NBD_OPT_STARTTLS, before TLS (a plaintext injection attempt)"
        case let .payloadTooLarge(n):
            return "request with a \(n)-byte payload (limit \(NBD.maximumPayload))"
        case let .unexpectedHeaderStyle(extended):
            return extended ? "compact (28-byte) request header after extended headers were negotiated"
                : "extended (32-byte) request header without NBD_OPT_EXTENDED_HEADERS"
        }
    }
}

/// The client closed its side while a message was incomplete: what was cut off (reported by the
/// decoders' `decodeLast`, as swift-nio-extras' `LengthFieldBasedFrameDecoder` reports leftovers).
public struct NBDTruncatedMessage: Error, Equatable, CustomStringConvertible {
    /// "request header", "write payload", "option", "client flags".
    public var what: String
    /// Bytes of it that had arrived.
    public var receivedBytes: Int
    /// Bytes still missing (for a payload), nil when the header itself was cut.
    public var missingBytes: Int?

    public var description: String {
        if let missingBytes { return "disconnected \(missingBytes) bytes short of a \(what) (\(receivedBytes) bytes arrived, nothing applied)" }
        return "disconnected in the middle of a \(what) (\(receivedBytes) bytes arrived)"
    }
}
