import NIOCore

/// What one client, and all clients together, may cost the server. Defaults are sized for a
/// test server on a workstation; `kvmscope nbd serve` has a flag for each (README, NBD section).
public struct NBDServerLimits: Sendable, Equatable {
    /// Clients connected at once; further connections are accepted and closed at once, with a log line.
    public var maxConnections: Int
    /// Requests of one client started but not yet answered on the wire (delayed ones included).
    /// The Linux NBD client's default queue depth is 128 (drivers/block/nbd.c).
    public var maxRequestsInFlight: Int
    /// Bytes one client may hold: read data waiting to be written, write payloads being received
    /// or applied, 256 bytes per other request. At least one maximum payload plus headroom.
    public var maxConnectionBytes: Int
    /// The same, summed over all clients.
    public var maxTotalBytes: Int
    /// From accept to the end of option negotiation (qemu-nbd's --handshake-limit defaults to 10 s).
    public var handshakeTimeout: TimeAmount
    /// A client whose replies sit unread (the socket stays unwritable) this long is disconnected.
    public var writeTimeout: TimeAmount
    /// A WRITE's payload must arrive within this time of its header.
    public var requestTimeout: TimeAmount
    /// Disconnect a client that sends and receives nothing for this long, nil: never (an idle
    /// guest keeps its disk open for hours, and QEMU turns a dropped connection into I/O errors).
    public var idleTimeout: TimeAmount?
    /// First pause of accepts after accept() failed (EMFILE, ENFILE, ENOBUFS, ENOMEM); doubles
    /// while it keeps failing, up to `maxAcceptBackoff`.
    public var acceptBackoff: TimeAmount
    public var maxAcceptBackoff: TimeAmount

    /// Reserved for each request besides its data (reply header, bookkeeping, error text).
    public static let requestOverheadBytes = 256
    /// The least `maxConnectionBytes` can be: one maximum READ or WRITE and its overhead.
    public static let minimumConnectionBytes = Int(NBD.maximumPayload) + requestOverheadBytes

    public init(maxConnections: Int = 128, maxRequestsInFlight: Int = 128, maxConnectionBytes: Int = 64 << 20,
                maxTotalBytes: Int = 256 << 20, handshakeTimeout: TimeAmount = .seconds(10),
                writeTimeout: TimeAmount = .seconds(60), requestTimeout: TimeAmount = .seconds(60),
                idleTimeout: TimeAmount? = nil, acceptBackoff: TimeAmount = .milliseconds(50),
                maxAcceptBackoff: TimeAmount = .seconds(1)) {
        self.maxConnections = maxConnections
        self.maxRequestsInFlight = maxRequestsInFlight
        self.maxConnectionBytes = maxConnectionBytes
        self.maxTotalBytes = maxTotalBytes
        self.handshakeTimeout = handshakeTimeout
        self.writeTimeout = writeTimeout
        self.requestTimeout = requestTimeout
        self.idleTimeout = idleTimeout
        self.acceptBackoff = acceptBackoff
        self.maxAcceptBackoff = maxAcceptBackoff
    }

    /// A duration given in seconds (command-line flags); callers check the range.
    public static func duration(seconds: Double) -> TimeAmount { .nanoseconds(Int64(seconds * 1e9)) }

    /// The first problem with these limits, or nil when they are usable.
    public var problem: String? {
        if maxConnections < 1 { return "the connection limit must be at least 1" }
        if maxRequestsInFlight < 1 { return "the in-flight request limit must be at least 1" }
        if maxConnectionBytes < Self.minimumConnectionBytes {
            return "the per-connection buffer must hold one 32 MiB request: at least \(Self.minimumConnectionBytes) bytes"
        }
        if maxTotalBytes < maxConnectionBytes { return "the total buffer must be at least the per-connection buffer" }
        return nil
    }
}
