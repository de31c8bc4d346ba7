import KVMScopeTracefs

/// `perf record -e skb:kfree_skb` output itself (perf.data, file or pipe mode): told by
/// perf's magic, read by the shared perf.data reader, each sample decoded with the
/// kfree_skb format stored in the file (the capturing kernel's layout and reason names).
struct PerfDataDropFormat: InputFormat {
    public init() {}
    public var name: String { "perf-data-drops" }
    public var kind: InputKind { .packetDrops }
    public var summary: String { "perf.data of `perf record -e skb:kfree_skb` (file or pipe mode, either byte order)" }
    public func recognizes(_ sample: UnsafeRawBufferPointer) -> Bool { PerfDataReader.recognizes(sample) }
}

/// The drops in a perf.data: kfree_skb samples become DropEvents exactly as a `perf script`
/// line of them would (time, CPU, task, location, protocol, reason); consume_skb samples and
/// kfree_skb with reason CONSUMED are counted as normal frees; other events are counted.
public struct PerfDataDropReader {
    public private(set) var stats = DropTraceStats()
    public private(set) var perf = PerfDataStats()
    public var wantComm = true

    public init(wantComm: Bool = true) { self.wantComm = wantComm }

    /// One drop as the file has it, before any String is made: what a count over millions
    /// of samples keys on. `reasonID` and `commID` (the thread's name, -1 without one or
    /// without `wantComm`) are numbers in the `PerfDropNames` the read was given.
    public struct Drop {
        public var timeNs: UInt64?
        public var cpu: UInt32?
        public var pid: Int32
        public var location: UInt64
        public var protocolNumber: UInt16
        public var reasonID: Int
        public var commID: Int
    }

    /// Reads `stream` as DropEvents.
    public mutating func read(_ stream: ByteStream, _ body: (DropEvent) throws -> Void) throws {
        let names = PerfDropNames()
        let wantComm = self.wantComm
        try readDrops(stream, names: names) { drops in
            for d in drops {
                var e = DropEvent(time: d.timeNs.map { Double($0) / 1e9 }, cpu: d.cpu.map { Int32(bitPattern: $0) },
                                  pid: d.pid, location: DropLocation(address: d.location),
                                  protocolNumber: d.protocolNumber, reason: names.reason(d.reasonID))
                if wantComm { e.comm = names.comm(d.commID) }
                try body(e)
            }
        }
    }

    /// Drops handed on at a time: the caller's per-drop loop runs without a call per drop.
    static let batchSize = 1024

    /// Reads `stream` as Drops, handed on in batches in file (time) order; their reasons and
    /// comms are kept in `names`. A batch is valid only during the call.
    public mutating func readDrops(_ stream: ByteStream, names: PerfDropNames,
                                   _ body: (UnsafeBufferPointer<Drop>) throws -> Void) throws {
        var reader = PerfDataReader()
        let state = PerfDropSampleState(names: names, wantComm: wantComm, path: stream.name)
        defer {
            stats = state.counts
            perf = reader.stats
        }
        do {
            try reader.read(stream) { try state.take($0, body) }
        } catch {
            // The drops read before the error are handed on first, as they would have been
            // one by one.
            try state.deliver(body)
            throw error
        }
        try state.deliver(body)
    }

    enum Kind {
        /// Index of its decoder.
        case kfree(Int)
        case consume
        case other
    }

    static func kind(of event: PerfTracepoint, path: String, decoders: inout [KfreeSkbRecordDecoder]) throws -> Kind {
        guard event.system == "skb" else { return .other }
        if event.name == "consume_skb" { return .consume }
        guard event.name == "kfree_skb" else { return .other }
        guard let d = try? KfreeSkbRecordDecoder(format: event.format) else {
            throw PerfDataError(path: path, "the kfree_skb format stored in it lacks the fields kvmscope reads (skbaddr, location, protocol)")
        }
        decoders.append(d)
        return .kfree(decoders.count - 1)
    }
}

/// The per-sample side of `readDrops`: what each event is, the decoders, the reason and comm
/// caches, the batch. A class whose fields are `@exclusivity(unchecked)`: it lives for one
/// read and only its `take` and `deliver` touch them, never overlapping (the batch is handed
/// on by `deliver` alone), so the run-time check — a thread-local lookup per access, several
/// per sample — could never fire.
final class PerfDropSampleState {
    typealias Drop = PerfDataDropReader.Drop
    let names: PerfDropNames
    let wantComm: Bool
    let path: String
    @exclusivity(unchecked) var counts = DropTraceStats()
    @exclusivity(unchecked) private var kinds: [Int: PerfDataDropReader.Kind] = [:]
    @exclusivity(unchecked) private var decoders: [KfreeSkbRecordDecoder] = []
    /// The decoders' layouts apart: plain integers, read per sample without copying the
    /// decoder's Strings and tables.
    @exclusivity(unchecked) private var layouts: [KfreeSkbRecordDecoder.Layout] = []
    @exclusivity(unchecked) private var lastKind = PerfDataDropReader.Kind.other
    @exclusivity(unchecked) private var lastID = Int.min
    /// What the reason codes below 256 (every kernel's SKB_DROP_REASON_* so far) mean, and
    /// no reason (slot 256: kernels before 5.17), per decoder; the rest (subsystem codes)
    /// are looked up in `names` itself.
    @exclusivity(unchecked) private var smallCodes: [PerfDropNames.Reason?] = []
    /// Consecutive samples are mostly of one thread.
    @exclusivity(unchecked) private var lastComm: String?
    @exclusivity(unchecked) private var lastCommID = -1
    @exclusivity(unchecked) private var batch: [Drop] = []

    init(names: PerfDropNames, wantComm: Bool, path: String) {
        self.names = names
        self.wantComm = wantComm
        self.path = path
        batch.reserveCapacity(PerfDataDropReader.batchSize)
    }

    func take(_ sample: PerfTracepointSample, _ body: (UnsafeBufferPointer<Drop>) throws -> Void) throws {
        counts.lines += 1
        // What each event is, decided once per event (samples of one event come in runs).
        let id = sample.formatID
        if id != lastID {
            if kinds[id] == nil {
                kinds[id] = try PerfDataDropReader.kind(of: sample.event, path: path, decoders: &decoders)
                layouts = decoders.map(\.layout)
                smallCodes += [PerfDropNames.Reason?](repeating: nil, count: 257 * decoders.count - smallCodes.count)
            }
            lastKind = kinds[id]!
            lastID = id
        }
        let decoder: Int
        switch lastKind {
        case .other: counts.otherEvents += 1; return
        case .consume: counts.consumed += 1; return
        case let .kfree(d): decoder = d
        }
        guard let r = layouts[decoder].decode(sample.payload) else { counts.skippedLines += 1; return }
        let reason: PerfDropNames.Reason
        if r.reason ?? 0 < 256 {
            let slot = decoder * 257 + Int(r.reason ?? 256)
            if let known = smallCodes[slot] { reason = known } else {
                reason = names.reason(decoder: decoder, code: r.reason, decoders[decoder])
                smallCodes[slot] = reason
            }
        } else {
            reason = names.reason(decoder: decoder, code: r.reason, decoders[decoder])
        }
        if reason.consumed { counts.consumed += 1; return }
        counts.drops += 1
        if reason.unnamed { counts.unnamedReasons += 1 }
        var commID = -1
        if wantComm, let c = sample.comm {
            if c != lastComm {
                lastComm = c
                lastCommID = names.commID(c)
            }
            commID = lastCommID
        }
        batch.append(Drop(timeNs: sample.timeNs, cpu: sample.cpu, pid: r.pid, location: r.location,
                          protocolNumber: r.protocolNumber, reasonID: reason.id, commID: commID))
        if batch.count == PerfDataDropReader.batchSize { try deliver(body) }
    }

    /// Hands on the batch (emptied even when `body` throws: nothing is handed on twice).
    func deliver(_ body: (UnsafeBufferPointer<Drop>) throws -> Void) throws {
        guard !batch.isEmpty else { return }
        defer { batch.removeAll(keepingCapacity: true) }
        try batch.withUnsafeBufferPointer { try body($0) }
    }
}

/// The names the Drops of one perf.data read refer to by number: each (kfree_skb format,
/// reason code) once, and each thread name once. A class, so that a caller can name them
/// while the read is still going on (closing an interval) without holding the reader.
public final class PerfDropNames {
    struct Reason {
        var id: Int
        /// Reason CONSUMED: a normal free, not a drop.
        var consumed: Bool
        /// A number the format's table has no name for.
        var unnamed: Bool
    }

    private var reasons: [DropReason?] = []
    private var reasonIDs: [PerfDropReasonKey: Reason] = [:]
    private var comms: [String] = []
    private var commIDs: [String: Int] = [:]

    public init() {}

    /// The reason of a Drop.
    public func reason(_ id: Int) -> DropReason? { reasons[id] }

    /// The thread name of a Drop (nil for -1).
    public func comm(_ id: Int) -> String? { id < 0 ? nil : comms[id] }

    func reason(decoder: Int, code: UInt32?, _ d: KfreeSkbRecordDecoder) -> Reason {
        let key = PerfDropReasonKey(decoder: decoder, code: code)
        if let e = reasonIDs[key] { return e }
        let reason = d.dropReason(code)
        let e = Reason(id: reasons.count, consumed: reason?.name == "CONSUMED", unnamed: reason != nil && reason?.name == nil)
        reasons.append(reason)
        reasonIDs[key] = e
        return e
    }

    /// One entry per distinct name among the drops (asked only when grouping by comm): no
    /// more than the report's tally holds as keys anyway.
    func commID(_ name: String) -> Int {
        if let id = commIDs[name] { return id }
        comms.append(name)
        commIDs[name] = comms.count - 1
        return comms.count - 1
    }
}

struct PerfDropReasonKey: Hashable {
    var decoder: Int
    var code: UInt32?
}
