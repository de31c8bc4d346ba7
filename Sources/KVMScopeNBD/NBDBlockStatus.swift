import KVMScopeFaults
import NIOCore

/// Metadata querying (proto.md "Metadata querying", NBD_OPT_LIST_META_CONTEXT,
/// NBD_OPT_SET_META_CONTEXT, NBD_CMD_BLOCK_STATUS): kvmscope offers one context,
/// `base:allocation`, for every export.
extension NBD {
    public enum MetaContext {
        public static let allocation = "base:allocation"
        /// The id `base:allocation` gets from NBD_OPT_SET_META_CONTEXT. Any value is allowed (the
        /// spec calls it opaque); not 0, so that a client which assumes 0 instead of reading the
        /// reply is caught by its own context-id check.
        public static let allocationID: UInt32 = 1
        /// NBD_REP_META_CONTEXT, the option reply naming one context.
        public static let reply: UInt32 = 4
        /// Strings in options are at most 4096 bytes (proto.md "Conventions").
        public static let maximumStringLength = 4096
    }

    /// NBD_REPLY_TYPE_BLOCK_STATUS: context id, then (length, flags) descriptors.
    public static let replyTypeBlockStatus: UInt16 = 5
    /// NBD_REPLY_TYPE_BLOCK_STATUS_EXT (extended headers only): context id, descriptor count,
    /// then (64-bit length, 64-bit flags) descriptors.
    public static let replyTypeBlockStatusExtended: UInt16 = 6

    /// Descriptors in one reply chunk. proto.md: "a server SHOULD NOT send more than 2^20 status
    /// descriptors in a single chunk"; kvmscope stops at the backend's bound
    /// (`RawImageFile.maximumExtentsPerQuery`), 128 KiB of reply, and the client asks again from
    /// where the descriptors end.
    public static let maximumBlockStatusDescriptors = RawImageFile.maximumExtentsPerQuery
}

/// One descriptor of a block status reply chunk. The length is 32 bits on the wire in a
/// compact chunk (the request's length bounds it) and 64 bits in an extended one.
public struct NBDBlockDescriptor: Equatable, Sendable {
    public var length: UInt64
    public var flags: UInt32

    public init(length: UInt64, flags: UInt32) {
        self.length = length
        self.flags = flags
    }

    /// What goes on the wire for the backend's runs of a `requested`-byte query: runs of zero
    /// or negative length dropped, adjacent runs with the same flags merged (proto.md: "SHOULD
    /// use different status values between consecutive descriptors"), nothing past `requested`
    /// (the seam promises it; a backend that breaks the promise must not make the server break
    /// the protocol), at most `limit` descriptors, one with NBD_CMD_FLAG_REQ_ONE. Empty when the
    /// backend gave nothing usable: the caller answers with an error, never an empty chunk.
    public static func descriptors(for extents: [BlockExtent], requested: UInt64, one: Bool,
                                   limit: Int = NBD.maximumBlockStatusDescriptors) -> [NBDBlockDescriptor] {
        var out: [NBDBlockDescriptor] = []
        var remaining = requested
        let cap = one ? 1 : max(1, limit)
        for e in extents where e.length > 0 {
            guard remaining > 0 else { break }
            let n = UInt64(e.length) < remaining ? UInt64(e.length) : remaining
            remaining -= n
            if let last = out.last, last.flags == e.nbdFlags {
                out[out.count - 1].length += n   // ≤ requested: no overflow
            } else {
                if out.count == cap { break }
                out.append(NBDBlockDescriptor(length: n, flags: e.nbdFlags))
            }
        }
        return out
    }
}

/// The data of NBD_OPT_LIST_META_CONTEXT and NBD_OPT_SET_META_CONTEXT: export name, queries.
public struct NBDMetaContextOption: Equatable, Sendable {
    public var exportName: String
    public var queries: [String]

    /// Nil when the data is malformed (a length running past the option, a string over 4096
    /// bytes, bytes left over): proto.md says NBD_REP_ERR_INVALID. Every query consumes at least
    /// its 4-byte length, so the loop is bounded by the option's size (64 KiB at most).
    public init?(_ data: ByteBuffer) {
        var data = data
        guard let nameLength = data.readInteger(as: UInt32.self), nameLength <= NBD.MetaContext.maximumStringLength,
              let name = data.readString(length: Int(nameLength)),
              let count = data.readInteger(as: UInt32.self) else { return nil }
        var parsed: [String] = []
        for _ in 0..<count {
            guard let length = data.readInteger(as: UInt32.self), length <= NBD.MetaContext.maximumStringLength,
                  let query = data.readString(length: Int(length)) else { return nil }
            parsed.append(query)
        }
        guard data.readableBytes == 0 else { return nil }
        exportName = name
        queries = parsed
    }

    /// Whether `base:allocation` is among the contexts these queries name. Listing: no query
    /// lists every context, and `base:` is the namespace's wildcard. Selecting: only the full
    /// name selects it (proto.md: the server "MUST ignore" `base:` there, and unknown leaf
    /// names and namespaces are ignored, not errors).
    public func namesAllocation(listing: Bool) -> Bool {
        if listing && queries.isEmpty { return true }
        return queries.contains { $0 == NBD.MetaContext.allocation || (listing && $0 == "base:") }
    }
}
