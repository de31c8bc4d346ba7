import NIOCore

/// What a client sends, decoded by `NBDClientMessageDecoder`.
enum NBDClientMessage: Equatable {
    /// The 32-bit client flags that answer the server's greeting.
    case clientFlags(UInt32)
    /// One option of the fixed-newstyle negotiation (`IHAVEOPT`, option, length, data).
    case option(code: UInt32, data: ByteBuffer)
    /// One transmission request; a WRITE carries its payload.
    case request(NBDRequest)
}

struct NBDRequest: Equatable {
    public var flags: UInt16
    /// Raw command number (unknown commands are answered with EINVAL, not dropped).
    public var type: UInt16
    public var cookie: UInt64
    public var offset: UInt64
    public var length: UInt32
    /// The data of a WRITE (nil for other commands, and for a WRITE whose payload was too large
    /// to accept: `payloadDiscarded`).
    public var payload: ByteBuffer?
    /// The WRITE payload exceeded `NBD.maximumPayload`; the decoder skipped it without buffering.
    public var payloadDiscarded: Bool

    public init(flags: UInt16, type: UInt16, cookie: UInt64, offset: UInt64, length: UInt32,
                payload: ByteBuffer? = nil, payloadDiscarded: Bool = false) {
        self.flags = flags
        self.type = type
        self.cookie = cookie
        self.offset = offset
        self.length = length
        self.payload = payload
        self.payloadDiscarded = payloadDiscarded
    }

    public var command: NBD.Command? { NBD.Command(rawValue: type) }
}

/// What the server sends, encoded by `NBDServerMessageEncoder`.
enum NBDServerMessage: Equatable {
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
}

/// Connection phase, shared by the decoder (which must know how to frame the next bytes) and
/// the handler (which moves it on). Both live on the channel's event loop.
final class NBDConnectionPhase {
    public enum Phase: Equatable { case clientFlags, options, transmission }
    public var phase: Phase = .clientFlags
    public init() {}
}

/// Protocol violations after which the connection cannot continue (framing is lost).
enum NBDProtocolError: Error, Equatable, CustomStringConvertible {
    case badOptionMagic(UInt64)
    case optionTooLarge(UInt32)
    case badRequestMagic(UInt32)
    case unknownClientFlags(UInt32)

    public var description: String {
        switch self {
        case let .badOptionMagic(m): return "option without IHAVEOPT magic (got 0x\(String(m, radix: 16)))"
        case let .optionTooLarge(n): return "option data of \(n) bytes (limit \(NBD.maximumOptionLength))"
        case let .badRequestMagic(m): return "request with bad magic 0x\(String(m, radix: 16))"
        case let .unknownClientFlags(f): return "unknown client flags 0x\(String(f, radix: 16))"
        }
    }
}
