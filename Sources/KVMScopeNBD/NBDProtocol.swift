import KVMScopeFaults

/// Numbers of the NBD protocol (NetworkBlockDevice/nbd doc/proto.md), fixed-newstyle only.
public enum NBD {
    public static let nbdMagic: UInt64 = 0x4e42_444d_4147_4943          // "NBDMAGIC"
    public static let optionMagic: UInt64 = 0x4948_4156_454f_5054       // "IHAVEOPT"
    public static let optionReplyMagic: UInt64 = 0x0003_e889_0455_65a9
    public static let requestMagic: UInt32 = 0x2560_9513
    public static let simpleReplyMagic: UInt32 = 0x6744_6698
    public static let structuredReplyMagic: UInt32 = 0x668e_33ef
    /// The 32-byte request and reply headers of NBD_OPT_EXTENDED_HEADERS (proto.md, "Request
    /// message" and "Extended reply chunk message"; QEMU 8.2+ and libnbd 1.18+ speak them).
    public static let extendedRequestMagic: UInt32 = 0x21e4_1c71
    public static let extendedReplyMagic: UInt32 = 0x6e8a_278c

    /// Handshake flags (server, 16 bits) and client flags (32 bits).
    public enum HandshakeFlag {
        public static let fixedNewstyle: UInt16 = 1 << 0
        public static let noZeroes: UInt16 = 1 << 1
    }
    public enum ClientFlag {
        public static let fixedNewstyle: UInt32 = 1 << 0
        public static let noZeroes: UInt32 = 1 << 1
    }

    public enum Option: UInt32, Sendable {
        case exportName = 1, abort = 2, list = 3, peekExport = 4, startTLS = 5, info = 6, go = 7
        case structuredReply = 8, listMetaContext = 9, setMetaContext = 10, extendedHeaders = 11
    }

    public enum Reply {
        public static let ack: UInt32 = 1
        public static let server: UInt32 = 2
        public static let info: UInt32 = 3
        public static let errorBit: UInt32 = 1 << 31
        public static let errUnsup: UInt32 = errorBit | 1
        public static let errPolicy: UInt32 = errorBit | 2
        public static let errInvalid: UInt32 = errorBit | 3
        public static let errPlatform: UInt32 = errorBit | 4
        public static let errTLSReqd: UInt32 = errorBit | 5
        public static let errUnknown: UInt32 = errorBit | 6
        public static let errShutdown: UInt32 = errorBit | 7
        public static let errBlockSizeReqd: UInt32 = errorBit | 8
        public static let errTooBig: UInt32 = errorBit | 9
        public static let errExtHeaderReqd: UInt32 = errorBit | 10
    }

    public enum Info {
        public static let export: UInt16 = 0
        public static let name: UInt16 = 1
        public static let description: UInt16 = 2
        public static let blockSize: UInt16 = 3
    }

    /// Transmission flags (16 bits), sent with the export.
    public enum TransmissionFlag {
        public static let hasFlags: UInt16 = 1 << 0
        public static let readOnly: UInt16 = 1 << 1
        public static let sendFlush: UInt16 = 1 << 2
        public static let sendFUA: UInt16 = 1 << 3
        public static let rotational: UInt16 = 1 << 4
        public static let sendTrim: UInt16 = 1 << 5
        public static let sendWriteZeroes: UInt16 = 1 << 6
        public static let sendDF: UInt16 = 1 << 7
        public static let canMultiConn: UInt16 = 1 << 8
        public static let sendCache: UInt16 = 1 << 10
        public static let sendFastZero: UInt16 = 1 << 11
    }

    public enum Command: UInt16, Sendable {
        case read = 0, write = 1, disconnect = 2, flush = 3, trim = 4, cache = 5, writeZeroes = 6, blockStatus = 7

        public var name: String {
            switch self {
            case .read: return "read"
            case .write: return "write"
            case .disconnect: return "disc"
            case .flush: return "flush"
            case .trim: return "trim"
            case .cache: return "cache"
            case .writeZeroes: return "write-zeroes"
            case .blockStatus: return "block-status"
            }
        }
    }

    public enum CommandFlag {
        public static let fua: UInt16 = 1 << 0
        public static let noHole: UInt16 = 1 << 1
        public static let dontFragment: UInt16 = 1 << 2
        public static let reqOne: UInt16 = 1 << 3
        public static let fastZero: UInt16 = 1 << 4
        /// Extended headers only: *length* is a payload that follows the header (proto.md: WRITE
        /// MUST set it; on other commands it is EINVAL unless the command defines a payload).
        public static let payloadLength: UInt16 = 1 << 5
    }

    public enum ReplyType {
        public static let none: UInt16 = 0
        public static let offsetData: UInt16 = 1
        public static let error: UInt16 = (1 << 15) | 1
        public static let errorOffset: UInt16 = (1 << 15) | 2
    }
    public static let replyFlagDone: UInt16 = 1 << 0

    /// The only error values allowed on the wire.
    public enum WireError: UInt32, Sendable {
        case eperm = 1, eio = 5, enomem = 12, einval = 22, enospc = 28, eoverflow = 75, enotsup = 95, eshutdown = 108

        /// Maps a host errno as the spec says: EDQUOT and EFBIG become ENOSPC, errnos without an
        /// NBD value become EIO (the spec leaves that case open; EIO is what the guest should see).
        public init(hostErrno: Int32) {
            switch hostErrno {
            case 1: self = .eperm
            case 5: self = .eio
            case 12: self = .enomem
            case 22: self = .einval
            case 28, 27 /* EFBIG */, 122 /* EDQUOT */: self = .enospc
            case 75: self = .eoverflow
            case 95: self = .enotsup
            case 108: self = .eshutdown
            default: self = .eio
            }
        }

        public var name: String {
            switch self {
            case .eperm: return "EPERM"
            case .eio: return "EIO"
            case .enomem: return "ENOMEM"
            case .einval: return "EINVAL"
            case .enospc: return "ENOSPC"
            case .eoverflow: return "EOVERFLOW"
            case .enotsup: return "ENOTSUP"
            case .eshutdown: return "ESHUTDOWN"
            }
        }
    }

    /// Block sizes the server advertises (NBD_INFO_BLOCK_SIZE): byte-granular, 4 KiB preferred,
    /// 32 MiB payloads (the size every client must accept as "not a denial of service").
    public static let minimumBlockSize: UInt32 = 1
    public static let preferredBlockSize: UInt32 = 4096
    public static let maximumPayload: UInt32 = 32 << 20
    /// Option data larger than this is not a real client: the connection is dropped.
    public static let maximumOptionLength: UInt32 = 64 << 10
}
