/// The NBD client's connection from QEMU 7.2's block/nbd.c and nbd/client-connection.c
/// events, in constant memory (groups are capped):
///
///     nbd_client_handshake(export) / _success(export)   a connection (re)established
///     nbd_read_reply_entry_fail(ret, err)                the reply reader failed: connection lost
///                                                         ("Connection closed" when the server hung up)
///     nbd_reconnect_attempt(in_flight)                   reconnect-delay: trying again
///     nbd_reconnect_attempt_result(ret, in_flight)       0, or -errno (-111 ECONNREFUSED: no server)
///     nbd_co_request_fail(from, len, …, name, ret, err)  a request QEMU failed back to the device
public struct NbdClientTracker {
    public static let eventNames: Set<String> = [
        "nbd_client_handshake", "nbd_client_handshake_success", "nbd_read_reply_entry_fail",
        "nbd_reconnect_attempt", "nbd_reconnect_attempt_result", "nbd_co_request_fail",
    ]

    enum Role { case handshake, handshakeSuccess, replyFail, reconnect, reconnectResult, requestFail }

    struct Binding {
        var role: Role
        var ret = -1, err = -1, export = -1, from = -1, len = -1, name = -1
    }

    struct RequestKey: Hashable { var type: String, ret: Int64, reason: String? }

    /// Groups kept (distinct errnos, distinct request type × errno × message); a hostile trace
    /// with more still has exact totals.
    static let maxGroups = 64
    /// Messages are QEMU's error strings; longer ones are cut here.
    static let maxReasonBytes = 200
    static let maxLossesListed = 100

    let bindings: [Binding?]
    let errnoTable: ErrnoTable
    var events = 0
    var account = NbdClientAccount(handshakes: 0, handshakesSucceeded: 0, connectionLosses: [], connectionLossesTotal: 0,
                                   reconnectAttempts: 0, reconnectsSucceeded: 0, reconnectFailures: [],
                                   failedRequestsTotal: 0, failedRequests: [])
    var requestGroups: [RequestKey: Int] = [:]
    /// The connection is up as far as the trace shows (a trace usually starts connected).
    var connected = true

    public init(catalog: TraceEventCatalog, errnoTable: ErrnoTable = .standard) {
        self.errnoTable = errnoTable
        bindings = catalog.definitions.map(Self.binding)
    }

    static func binding(_ d: TraceEventDefinition) -> Binding? {
        func at(_ n: String) -> Int { d.argumentIndex(n) ?? -1 }
        let role: Role
        switch d.name {
        case "nbd_client_handshake": role = .handshake
        case "nbd_client_handshake_success": role = .handshakeSuccess
        case "nbd_read_reply_entry_fail": role = .replyFail
        case "nbd_reconnect_attempt": role = .reconnect
        case "nbd_reconnect_attempt_result": role = .reconnectResult
        case "nbd_co_request_fail": role = .requestFail
        default: return nil
        }
        var b = Binding(role: role)
        b.ret = at("ret"); b.err = at("err"); b.export = at("export_name")
        b.from = at("from"); b.len = at("len"); b.name = at("name")
        switch role {
        case .replyFail, .reconnectResult: if b.ret < 0 { return nil }
        case .requestFail: if b.ret < 0 || b.from < 0 || b.len < 0 { return nil }
        default: break
        }
        return b
    }

    public mutating func consume(_ event: TraceEvent) {
        let id = event.definition.id
        guard id >= 0, id < bindings.count, let b = bindings[id] else { return }
        events += 1
        let time = event.timestamp.map { TraceTimestamp.decimalSeconds($0.nanoseconds) }
        // `int ret` in QEMU 7.2, sign-extended from 32 bits by the reader; an --events file
        // that declares it 64-bit could give Int64.min, whose magnitude does not fit: no ret.
        let raw = b.ret >= 0 ? event.signed(b.ret) : 0
        let ret = raw == .min ? 0 : raw
        switch b.role {
        case .handshake:
            account.handshakes += 1
            if b.export >= 0, let e = event.string(b.export) { account.export = Self.cut(e) }
        case .handshakeSuccess:
            // QEMU 7.2 emits only the success on the usual path (nbd_client_handshake is
            // traced by the reconnect code): a success is a handshake too.
            account.handshakesSucceeded += 1
            account.handshakes = max(account.handshakes, account.handshakesSucceeded)
            if b.export >= 0, let e = event.string(b.export) { account.export = Self.cut(e) }
            connected = true
        case .replyFail:
            lose(at: time, ret: ret, reason: b.err >= 0 ? Self.cut(event.string(b.err) ?? "") : "", source: event.name)
        case .reconnect:
            account.reconnectAttempts += 1
        case .reconnectResult:
            if ret == 0 {
                account.reconnectsSucceeded += 1
                connected = true
                account.reconnectedTimes.append(time)
                if account.reconnectedTimes.count > Self.maxLossesListed { account.reconnectedTimes.removeFirst() }
            } else if let i = account.reconnectFailures.firstIndex(where: { $0.ret == ret }) {
                account.reconnectFailures[i].count += 1
                account.reconnectFailures[i].lastTime = time ?? account.reconnectFailures[i].lastTime
            } else if account.reconnectFailures.count < Self.maxGroups {
                let e = errnoTable.entry(number: ret)
                account.reconnectFailures.append(NbdErrnoCount(ret: ret, errnoName: e?.name, errnoMessage: e?.message,
                                                               count: 1, firstTime: time, lastTime: time))
            }
        case .requestFail:
            // nbd_co_request() traces this only for a connection-level error (local_err set:
            // "Connection closed", a broken reply), never for an error the server returned;
            // the first one on a live connection is when it broke.
            if connected {
                lose(at: time, ret: ret, reason: b.err >= 0 ? Self.cut(event.string(b.err) ?? "") : "", source: event.name)
            }
            account.failedRequestsTotal += 1
            if account.firstFailureTime == nil { account.firstFailureTime = time }
            if let time { account.lastFailureTime = time }
            let type = b.name >= 0 ? Self.cut(event.string(b.name) ?? "") : "request"
            let reason = b.err >= 0 ? event.string(b.err).map(Self.cut) : nil
            let key = RequestKey(type: type, ret: ret, reason: reason)
            let from = event.unsigned(b.from)
            // `uint32_t len`: the end of a request at the top of the 64-bit space stops there.
            let (end, overflow) = from.addingReportingOverflow(UInt64(UInt32(truncatingIfNeeded: event.unsigned(b.len))))
            let last = overflow ? UInt64.max : end
            if let i = requestGroups[key] {
                var g = account.failedRequests[i]
                g.count += 1
                if let time { g.lastTime = time }
                g.lowestOffset = min(g.lowestOffset, from)
                g.endOffset = max(g.endOffset, last)
                account.failedRequests[i] = g
            } else if account.failedRequests.count < Self.maxGroups {
                requestGroups[key] = account.failedRequests.count
                account.failedRequests.append(NbdFailedRequestGroup(
                    type: type, ret: ret, errnoName: errnoTable.entry(number: ret)?.name, reason: reason,
                    count: 1, firstTime: time, lastTime: time, lowestOffset: from, endOffset: last))
            }
        }
    }

    mutating func lose(at time: Double?, ret: Int64, reason: String, source: String) {
        connected = false
        account.connectionLossesTotal += 1
        if account.connectionLosses.count < Self.maxLossesListed {
            account.connectionLosses.append(NbdConnectionLoss(
                time: time, ret: ret, errnoName: errnoTable.entry(number: ret)?.name, reason: reason, source: source))
        }
    }

    static func cut(_ s: String) -> String {
        s.utf8.count <= maxReasonBytes ? s : String(decoding: s.utf8.prefix(maxReasonBytes), as: UTF8.self) + "…"
    }

    /// Events only QEMU's NBD *client* emits (block/nbd.c, nbd/client.c): `nbd_*` also
    /// covers QEMU's NBD server (nbd/server.c: nbd_negotiate_*, nbd_co_send_*, …), which says
    /// nothing about what serves the guest's disks.
    public static let clientEventNames: Set<String> = eventNames.union([
        "nbd_start_negotiate", "nbd_send_request", "nbd_receive_simple_reply", "nbd_receive_structured_reply_chunk",
    ])

    /// How many of `times` fall in a disconnected window: from a loss to the next successful
    /// reconnect, or to the end.
    static func failedWhileDisconnected(_ a: NbdClientAccount, times: [Double]) -> Int {
        let losses = a.connectionLosses.compactMap(\.time).sorted()
        let backs = a.reconnectedTimes.compactMap { $0 }.sorted()
        guard !losses.isEmpty else { return 0 }
        return times.filter { t in
            guard let loss = losses.last(where: { $0 <= t }) else { return false }
            return !backs.contains { $0 > loss && $0 <= t }
        }.count
    }

    func reads(_ id: Int) -> Bool { id >= 0 && id < bindings.count && bindings[id] != nil }

    /// The backend account, from this tracker and the coverage's per-family counts.
    func report(coverage: TraceCoverageReport, stats: TraceReadStats) -> TraceBackendReport {
        let nbdClient = events > 0 || stats.eventCounts.contains { Self.clientEventNames.contains($0.key) && $0.value > 0 }
        var kinds: [String] = nbdClient ? ["nbd"] : []
        kinds += ["qcow2", "file"].filter { (coverage.backendEvents[$0] ?? 0) > 0 }
        return TraceBackendReport(kinds: kinds, kind: kinds.first ?? "unknown", events: coverage.backendEvents,
                                  nbd: nbdClient ? account : nil)
    }
}
