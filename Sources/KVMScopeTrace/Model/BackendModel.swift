/// What the trace shows of the storage under the guest's disks: which block drivers were at
/// work (from their own events) and, for an NBD client, the account of its connection.
/// JSON keys are documented in docs/json.md (`keys trace`, under `backend`).
public struct TraceBackendReport: Sendable, Equatable, Codable {
    /// `nbd`, `qcow2`, `file`, each when its driver's events are in the trace (most specific
    /// first); empty when none are. `blk_co_*` events show that I/O reached the block layer
    /// but not which driver served it, so they name no kind.
    public var kinds: [String]
    /// The one kind that says what served the requests: `nbd` when the NBD client's events are
    /// there (it is the protocol layer), else `qcow2`, else `file`, else `unknown`.
    public var kind: String
    /// Events per driver family seen (`nbd`, `qcow2`, `file`, `blk_co`).
    public var events: [String: Int]
    /// The NBD client's connection, when `nbd_*` events are in the trace.
    @NullEncoded public var nbd: NbdClientAccount? = nil

    public init(kinds: [String], kind: String, events: [String: Int], nbd: NbdClientAccount?) {
        self.kinds = kinds
        self.kind = kind
        self.events = events
        self.nbd = nbd
    }
}

/// An NBD client's connection as QEMU's block/nbd.c and nbd/client.c trace it.
public struct NbdClientAccount: Sendable, Equatable, Codable {
    /// The export name of the last handshake (`nbd_client_handshake`), when traced.
    @NullEncoded public var export: String? = nil
    /// The server address: no QEMU 7.2 NBD event prints it (the TLS hostname of
    /// `nbd_start_negotiate` is used when one was given), so usually nil.
    @NullEncoded public var server: String? = nil
    /// Handshakes begun and completed (the first connection and every successful reconnect).
    public var handshakes: Int
    public var handshakesSucceeded: Int
    /// When the connection broke: `nbd_read_reply_entry_fail` (the reply reader failed), or
    /// the first `nbd_co_request_fail` on a live connection (QEMU traces it only for
    /// connection-level errors such as "Connection closed").
    public var connectionLosses: [NbdConnectionLoss]
    public var connectionLossesTotal: Int
    /// `nbd_reconnect_attempt` / `nbd_reconnect_attempt_result` (reconnect-delay set).
    public var reconnectAttempts: Int
    public var reconnectsSucceeded: Int
    /// Failed attempts grouped by errno (ret -111 → ECONNREFUSED …).
    public var reconnectFailures: [NbdErrnoCount]
    /// When reconnects succeeded (the last 100).
    public var reconnectedTimes: [Double?] = []
    /// Guest requests (virtio-blk and SCSI failures kept in the report) that failed between a
    /// connection loss and the next successful reconnect (or the end of the trace).
    public var guestRequestsFailedWhileDisconnected = 0
    /// Requests the client failed (`nbd_co_request_fail`), grouped by type, errno and message.
    public var failedRequestsTotal: Int
    public var failedRequests: [NbdFailedRequestGroup]
    @NullEncoded public var firstFailureTime: Double? = nil
    @NullEncoded public var lastFailureTime: Double? = nil
}

public struct NbdConnectionLoss: Sendable, Equatable, Codable {
    @NullEncoded public var time: Double? = nil
    /// The negative errno QEMU printed (`ret = -5`) and its name.
    public var ret: Int64
    @NullEncoded public var errnoName: String? = nil
    /// QEMU's own message (`err: …`).
    public var reason: String
    /// The event that showed it.
    public var source: String
}

public struct NbdErrnoCount: Sendable, Equatable, Codable {
    public var ret: Int64
    @NullEncoded public var errnoName: String? = nil
    @NullEncoded public var errnoMessage: String? = nil
    public var count: Int
    @NullEncoded public var firstTime: Double? = nil
    @NullEncoded public var lastTime: Double? = nil
}

public struct NbdFailedRequestGroup: Sendable, Equatable, Codable {
    /// NBD command name as QEMU printed it (`write`, `read`, `flush`, `trim`, …).
    public var type: String
    public var ret: Int64
    @NullEncoded public var errnoName: String? = nil
    /// QEMU's message (`err: Connection closed`), or nil when none.
    @NullEncoded public var reason: String? = nil
    public var count: Int
    @NullEncoded public var firstTime: Double? = nil
    @NullEncoded public var lastTime: Double? = nil
    /// Lowest byte offset and highest offset + length of the group.
    public var lowestOffset: UInt64
    public var endOffset: UInt64
}
