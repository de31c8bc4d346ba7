import Foundation

/// What one connection did, reported when it closes (the CLI prints it on one line).
public struct NBDConnectionSummary: Sendable, Equatable {
    /// Requests received (DISC included). The counts below are of replies written to the
    /// client: a read whose reply a delay still held when the connection closed is not a read.
    public var requests = 0
    public var errorReplies = 0
    public var reads = 0
    public var bytesRead: UInt64 = 0
    public var writes = 0
    public var bytesWritten: UInt64 = 0
    /// NBD_CMD_BLOCK_STATUS queries answered with descriptors.
    public var blockStatusQueries = 0
    /// Replies never written: held back (a delay, a [stall]) or still being written when the
    /// connection closed.
    public var unsentReplies = 0
    /// False when the client left (or was closed) before choosing an export.
    public var reachedTransmission = false
    /// Why the server closed it (timeout, protocol violation), nil when the client left.
    public var closedBecause: String?
    /// The message the client was in the middle of when it disconnected, if any.
    public var truncated: NBDTruncatedMessage?
    public var connectedSeconds: Double = 0
    /// The TLS version the connection ran under ("TLSv1.3"), nil in the clear.
    public var tls: String?
    /// The client negotiated NBD_OPT_EXTENDED_HEADERS (64-bit lengths, 32-byte headers).
    public var extendedHeaders = false
    /// The export it used, when the server has several (nil: the only one).
    public var export: String?

    public init() {}
}
