/// Rebuilds SCSI requests from QEMU's virtio-scsi, SCSI bus and scsi-disk events, streaming,
/// in memory bounded by the requests in flight. For one request, QEMU 7.2 emits in this order
/// (hw/scsi/virtio-scsi.c, scsi-bus.c, scsi-disk.c):
///
///     virtio_scsi_cmd_req(lun, tag, cmd)              the guest's command reached QEMU
///     scsi_req_parsed(target, lun, tag, cmd, dir, len)   CDB parsed, transfer length in bytes
///     scsi_req_parsed_lba(target, lun, tag, cmd, lba)    …its LBA, for commands that have one
///     scsi_req_alloc(target, lun, tag)
///     scsi_disk_new_request(lun, tag, "2a 00 …")      the whole CDB (scsi-hd/scsi-block)
///     scsi_req_build_sense / scsi_disk_check_condition(tag, key, asc, ascq)   on errors
///     scsi_req_dequeue(target, lun, tag)              scsi_req_complete(), or a cancel
///     virtio_scsi_cmd_resp(lun, tag, response, status)   what the guest got back
///
/// Requests are keyed by tag (32 bits, what every one of these events prints; the guest's
/// virtio-scsi driver uses its command pointer, unique while in flight). Any subset of the
/// events works: a tag's request ends at virtio_scsi_cmd_resp, or when it is dequeued and
/// the trace has no cmd_resp, or when the same tag starts again.
public struct ScsiRequestTracker {
    public struct Options: Sendable {
        public var maxFailuresKept = 1000
        public var maxInFlightListed = 1000
        public init() {}
    }

    public static let eventNames: Set<String> = [
        "virtio_scsi_cmd_req", "virtio_scsi_cmd_resp", "scsi_req_parsed", "scsi_req_parsed_lba",
        "scsi_req_alloc", "scsi_req_cancel", "scsi_req_dequeue", "scsi_req_build_sense",
        "scsi_req_parse_bad", "scsi_disk_check_condition", "scsi_disk_new_request",
    ]

    enum Role { case cmdReq, cmdResp, parsed, parsedLba, alloc, cancel, dequeue, buildSense, parseBad, checkCondition, newRequest }

    struct Binding {
        var role: Role
        var target = -1, lun = -1, tag = -1, cmd = -1, xfer = -1, lba = -1
        var response = -1, status = -1, key = -1, asc = -1, ascq = -1, line = -1
    }

    /// Start events, one bit each: a second one of a kind for an open tag is a new request.
    static func startBit(_ role: Role) -> UInt8 {
        switch role {
        case .cmdReq: return 1
        case .parsed, .parseBad: return 2
        case .alloc: return 4
        case .newRequest: return 8
        default: return 0
        }
    }

    struct Request {
        var tag: UInt32
        var target: Int?
        var lun: Int?
        var opcode: Int?
        var cdb: [UInt8]?
        var lba: UInt64?
        var blocks: UInt64?
        var xfer: UInt64?
        var firstNs: Int64?
        var startsSeen: UInt8 = 0
        var sense: ScsiSense?
        var senseNs: Int64?
        var dequeuedNs: Int64?
        var cancelled = false
    }

    struct DeviceKey: Hashable { var target: Int?, lun: Int? }
    struct AttemptKey: Hashable { var device: DeviceKey, opcode: Int?, lba: UInt64? }
    /// Failed commands followed for `ScsiFailure.attempt` (bounded: a hostile trace may fail
    /// millions of distinct ones).
    static let maxAttemptKeys = 10_000
    struct DeviceCounters { var completed = 0, failed = 0, inFlight = 0; var blockSize: Int? }

    public var options: Options
    let bindings: [Binding?]
    var open: [UInt32: Request] = [:]
    var devices: [DeviceKey: DeviceCounters] = [:]
    var deviceOrder: [DeviceKey] = []
    var counts = ScsiRequestCounts()
    var failuresTotal = 0
    var failures: [ScsiFailure] = []
    var firstNs: Int64?
    var lastNs: Int64?
    var events = 0
    var respSeen = false
    var dequeueSeen = false
    var untracked = 0
    var attempts: [AttemptKey: Int] = [:]
    /// A virtqueue holds at most 1024 commands per queue; this many open tags means their
    /// completions are not in the trace. Memory stays bounded.
    static let maxOpen = 100_000

    public init(catalog: TraceEventCatalog, options: Options = Options()) {
        self.options = options
        bindings = catalog.definitions.map(Self.binding)
    }

    static func binding(_ d: TraceEventDefinition) -> Binding? {
        func at(_ n: String) -> Int { d.argumentIndex(n) ?? -1 }
        let role: Role
        switch d.name {
        case "virtio_scsi_cmd_req": role = .cmdReq
        case "virtio_scsi_cmd_resp": role = .cmdResp
        case "scsi_req_parsed": role = .parsed
        case "scsi_req_parsed_lba": role = .parsedLba
        case "scsi_req_alloc": role = .alloc
        case "scsi_req_cancel": role = .cancel
        case "scsi_req_dequeue": role = .dequeue
        case "scsi_req_build_sense": role = .buildSense
        case "scsi_req_parse_bad": role = .parseBad
        case "scsi_disk_check_condition": role = .checkCondition
        case "scsi_disk_new_request": role = .newRequest
        default: return nil
        }
        var b = Binding(role: role)
        b.target = at("target"); b.lun = at("lun"); b.tag = at("tag"); b.cmd = at("cmd")
        b.xfer = at("xfer"); b.lba = at("lba"); b.response = at("response"); b.status = at("status")
        b.key = at("key"); b.asc = at("asc"); b.ascq = at("ascq"); b.line = at("line")
        guard b.tag >= 0 else { return nil }
        switch role {
        case .cmdResp: if b.response < 0 || b.status < 0 { return nil }
        case .buildSense, .checkCondition: if b.key < 0 || b.asc < 0 || b.ascq < 0 { return nil }
        case .parsedLba: if b.lba < 0 { return nil }
        case .newRequest: if b.line < 0 { return nil }
        default: break
        }
        return b
    }

    /// Whether this tracker reads events of definition `id` (the session's dispatch).
    func reads(_ id: Int) -> Bool { id >= 0 && id < bindings.count && bindings[id] != nil }

    public mutating func consume(_ event: TraceEvent) {
        let id = event.definition.id
        guard id >= 0, id < bindings.count, let b = bindings[id] else { return }
        events += 1
        let t = event.timestamp?.nanoseconds
        if let t {
            if firstNs == nil { firstNs = t }
            lastNs = max(lastNs ?? t, t)
        }
        // Tags are uint32_t in QEMU; scsi_req_* print them with %d (negative above 2^31).
        let tag = UInt32(truncatingIfNeeded: event.unsigned(b.tag))
        func small(_ i: Int) -> Int? { i >= 0 ? Int(Int32(truncatingIfNeeded: event.signed(i))) : nil }
        func byte(_ i: Int) -> Int { Int(UInt8(truncatingIfNeeded: event.unsigned(i))) }

        let bit = Self.startBit(b.role)
        var index = open.index(forKey: tag)
        if bit != 0, let i = index, open.values[i].startsSeen & bit != 0 {
            // The tag starts again while we hold it: the old request's end was not traced.
            let r = open.remove(at: i).value
            end(r, ns: r.dequeuedNs, response: nil, status: nil, superseded: r.dequeuedNs == nil)
            index = nil
        }
        if index == nil {
            if open.count >= Self.maxOpen { untracked += 1; return }
            open[tag] = Request(tag: tag, firstNs: t)
            index = open.index(forKey: tag)
        }
        let i = index!
        if b.role == .cmdResp {
            respSeen = true
            var r = open.remove(at: i).value
            Self.note(b, event, at: t, into: &r)
            end(r, ns: t, response: small(b.response), status: byte(b.status), superseded: false)
            return
        }
        if b.role == .dequeue { dequeueSeen = true }
        // In place: one hash lookup per event.
        Self.note(b, event, at: t, into: &open.values[i])
    }

    /// What one event says about its request.
    static func note(_ b: Binding, _ event: TraceEvent, at t: Int64?, into r: inout Request) {
        func small(_ i: Int) -> Int? { i >= 0 ? Int(Int32(truncatingIfNeeded: event.signed(i))) : nil }
        func byte(_ i: Int) -> Int { Int(UInt8(truncatingIfNeeded: event.unsigned(i))) }
        r.startsSeen |= startBit(b.role)
        if let target = small(b.target) { r.target = target }
        if let lun = small(b.lun) { r.lun = lun }
        switch b.role {
        case .cmdReq, .parsed, .parsedLba, .parseBad:
            if b.cmd >= 0 { r.opcode = byte(b.cmd) }
            if b.role == .parsed, b.xfer >= 0 {
                // `int xfer`: QEMU refuses transfers over INT32_MAX (scsi_req_new), so a
                // negative or larger value is no length.
                let x = event.signed(b.xfer)
                r.xfer = x >= 0 && x <= Int64(Int32.max) ? UInt64(x) : nil
            }
            if b.role == .parsedLba { r.lba = event.unsigned(b.lba) }
        case .alloc, .cmdResp:
            break
        case .newRequest:
            if let bytes = event.stringArgumentBytes(b.line), let cdb = parseCDB(bytes) {
                r.cdb = cdb
                r.opcode = Int(cdb[0])
                let op = ScsiNames.opcode(Int(cdb[0]), serviceAction: cdb.count > 1 ? Int(cdb[1] & 0x1f) : nil)
                let (lba, blocks) = ScsiNames.lbaAndLength(cdb, layout: op.layout)
                if let lba { r.lba = lba }
                r.blocks = blocks
            }
        case .buildSense, .checkCondition:
            let key = byte(b.key), asc = byte(b.asc), ascq = byte(b.ascq)
            r.sense = ScsiSense(key: key, keyName: ScsiNames.senseKey(key), asc: asc, ascq: ascq,
                                ascName: ScsiNames.additionalSense(asc: asc, ascq: ascq),
                                hostErrno: ScsiNames.hostErrno(forSenseKey: key, asc: asc, ascq: ascq),
                                source: event.name)
            r.senseNs = t
        case .cancel:
            r.cancelled = true
        case .dequeue:
            r.dequeuedNs = t
        }
    }

    /// The CDB bytes of scsi_disk_new_request's ` 0x2a 0x00 …` (QEMU 7.2's
    /// scsi_disk_new_request_dump() prints " 0x%02x" per byte; bare `2a` is read too). At most
    /// 32 bytes are kept; anything else is not a CDB.
    static func parseCDB(_ text: [UInt8]) -> [UInt8]? {
        var out: [UInt8] = []
        var i = 0
        while i < text.count {
            if text[i] == 0x20 { i += 1; continue }
            if i + 1 < text.count, text[i] == 0x30, text[i + 1] | 0x20 == 0x78 { i += 2 }
            guard i + 1 < text.count, let hi = hexDigit(text[i]), let lo = hexDigit(text[i + 1]),
                  i + 2 == text.count || text[i + 2] == 0x20 else { return nil }
            if out.count < 32 { out.append(hi << 4 | lo) }
            i += 2
        }
        return out.isEmpty ? nil : out
    }

    static func hexDigit(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: return c - 0x30
        case 0x61...0x66: return c - 0x61 + 10
        case 0x41...0x46: return c - 0x41 + 10
        default: return nil
        }
    }
}
