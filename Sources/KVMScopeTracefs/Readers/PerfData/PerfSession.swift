/// What a perf.data reader saw besides the tracepoint samples it handed on, so nothing is
/// skipped silently.
public struct PerfDataStats: Equatable, Sendable {
    /// `perf record -o -` (pipe mode) rather than a seekable file layout.
    public var pipeMode = false
    /// Written by a host of the other byte order.
    public var byteSwapped = false
    public var records = 0
    public var samples = 0
    public var tracepointSamples = 0
    /// Samples of events that are not tracepoints (cycles, dummy): not read.
    public var otherSamples = 0
    /// Tracepoint samples whose event has no format in the tracing data.
    public var samplesWithoutFormat = 0
    /// Samples naming an id no attr has.
    public var samplesOfUnknownID = 0
    /// Samples whose fields run past their record.
    public var malformedSamples = 0
    /// PERF_RECORD_LOST: events the kernel could not write (ring buffer full).
    public var lostEvents: UInt64 = 0
    /// PERF_RECORD_LOST_SAMPLES.
    public var lostSamples: UInt64 = 0
    public var finishedRounds = 0
    /// Records of other types (mmap, exit, build ids ...), skipped by their size.
    public var otherRecords = 0
    /// Times the reorder window outgrew its memory bound and was delivered early.
    public var reorderEarlyFlushes = 0
    public init() {}
}

/// The state of one read: the attrs, their sample layouts, the tracepoint formats, the
/// threads' names, and the reorder window. Records go in (file order), tracepoint samples
/// come out (time order, as perf script prints them).
///
/// The properties touched for every record are `@exclusivity(unchecked)`: a session is used
/// by the one read loop that made it and is never re-entered (the sample callback cannot
/// reach it), so the run-time exclusivity check — a thread-local lookup per access, several
/// per sample — could never fire.
final class PerfSession {
    // perf_event_header.type values (include/uapi/linux/perf_event.h, tools/lib/perf/include/perf/event.h).
    static let recordLost: UInt32 = 2, recordComm: UInt32 = 3, recordFork: UInt32 = 7, recordSample: UInt32 = 9
    static let recordLostSamples: UInt32 = 13
    static let recordHeaderAttr: UInt32 = 64, recordHeaderTracingData: UInt32 = 66
    static let recordFinishedRound: UInt32 = 68, recordAuxtrace: UInt32 = 71
    static let recordHeaderFeature: UInt32 = 80, recordCompressed: UInt32 = 81, recordCompressed2: UInt32 = 83

    static let maxComms = 1 << 20

    let path: String
    let order: PerfByteOrder
    let bigEndianFile: Bool
    @exclusivity(unchecked) private(set) var attrs: [PerfEventAttr] = []
    @exclusivity(unchecked) private var layouts: [PerfSampleLayout] = []
    @exclusivity(unchecked) private var idIndex: [UInt64: Int] = [:]
    /// `idIndex`'s entries by the id's low bits (index -1: none). Every sample of a file with
    /// several events is looked up by its id, twice (its time for the ordering, then its
    /// attr), and the Dictionary hashes the id each time; an id's attr never changes once set.
    @exclusivity(unchecked) private var recentIDs = [(id: UInt64, index: Int)](repeating: (0, -1), count: 64)
    /// How a sample's attr is found: by IDENTIFIER (first word), by ID within a common layout, or the only attr.
    @exclusivity(unchecked) private var allIdentifier = false
    @exclusivity(unchecked) private var common: PerfSampleLayout?
    private(set) var tracing: PerfTracingData?
    @exclusivity(unchecked) private var swappers: [Int: PerfPayloadSwapper] = [:]
    /// Each attr's tracepoint (nil: not a tracepoint, or no format), resolved once.
    @exclusivity(unchecked) private var attrEvents: [PerfTracepoint?] = [] {
        didSet { attrFormatIDs = attrEvents.map { $0?.format.id } }
    }
    /// Their format ids, apart: read per sample without a reference to count.
    @exclusivity(unchecked) private var attrFormatIDs: [Int?] = []
    /// Names looked up lately, by the tid's low bits, valid while `commGeneration` is theirs
    /// (a COMM or FORK record moves it on): vCPU threads take turns sample by sample, and
    /// a Dictionary lookup hashes the tid each time.
    @exclusivity(unchecked) private var recentComms = [(tid: Int32, generation: UInt64, name: String?)](repeating: (.min, 0, nil), count: 64)
    @exclusivity(unchecked) private var commGeneration: UInt64 = 1
    private let scratch: UnsafeMutableRawBufferPointer
    @exclusivity(unchecked) private var comms: [Int32: String] = [:]
    @exclusivity(unchecked) var orderer = PerfRecordOrderer()
    @exclusivity(unchecked) var stats = PerfDataStats()
    @exclusivity(unchecked) var arch: String?
    let body: (PerfTracepointSample) throws -> Void

    init(path: String, order: PerfByteOrder, bigEndianFile: Bool, body: @escaping (PerfTracepointSample) throws -> Void) {
        self.path = path
        self.order = order
        self.bigEndianFile = bigEndianFile
        self.body = body
        scratch = .allocate(byteCount: 1 << 16, alignment: 8)
        stats.byteSwapped = order.swapped
    }

    deinit {
        scratch.deallocate()
        orderer.deallocate()
    }

    func error(_ s: String) -> PerfDataError { PerfDataError(path: path, s) }

    // MARK: attrs and formats

    func addAttr(_ attr: PerfEventAttr) throws {
        guard attrs.count < 65_536 else { throw error("more than 65536 event attributes") }
        let layout = try PerfSampleLayout(sampleType: attr.sampleType, readFormat: attr.readFormat, path: path)
        if attr.type == PerfEventAttr.typeTracepoint, !layout.hasRaw {
            throw error("tracepoint event \(attr.name ?? "#\(attr.config)") was recorded without PERF_SAMPLE_RAW: the file holds no tracepoint fields")
        }
        attrs.append(attr)
        layouts.append(layout)
        attrEvents.append(Self.event(of: attr, in: tracing))
        for id in attr.ids where idIndex[id] == nil { idIndex[id] = attrs.count - 1 }
        allIdentifier = layouts.allSatisfy { $0.identifierAt == 0 }
        let first = layouts[0]
        common = layouts.allSatisfy({ $0.sampleType == first.sampleType }) ? first : nil
        if !allIdentifier, common == nil {
            throw error("events with different sample types and no PERF_SAMPLE_IDENTIFIER: their samples cannot be told apart")
        }
    }

    /// HEADER_EVENT_DESC: perf's names for the attrs, matched by id.
    func nameAttrs(_ names: [(name: String, ids: [UInt64])]) {
        for (name, ids) in names {
            for id in ids { if let i = idIndex[id], attrs[i].name == nil { attrs[i].name = name } }
        }
        if attrs.count == 1, names.count == 1, attrs[0].name == nil { attrs[0].name = names[0].name }
    }

    func setTracingData(_ data: PerfTracingData) {
        tracing = data
        swappers = [:]
        attrEvents = attrs.map { Self.event(of: $0, in: data) }
    }

    static func event(of attr: PerfEventAttr, in tracing: PerfTracingData?) -> PerfTracepoint? {
        guard attr.type == PerfEventAttr.typeTracepoint else { return nil }
        return tracing?.events[Int(truncatingIfNeeded: attr.config)]
    }

    // MARK: records

    /// One record, in file order. `record` includes the 8-byte header; valid during the call.
    func process(_ record: UnsafeRawBufferPointer, type: UInt32) throws {
        stats.records += 1
        switch type {
        case Self.recordSample:
            if let t = sampleTime(record) {
                if orderer.queue(record, time: t) { try orderer.flushHalf(deliver: deliver) }
            } else {
                try deliver(record)
            }
        case Self.recordComm, Self.recordFork:
            if let t = trailerTime(record) {
                if orderer.queue(record, time: t) { try orderer.flushHalf(deliver: deliver) }
            } else {
                try deliver(record)
            }
        case Self.recordFinishedRound:
            stats.finishedRounds += 1
            try orderer.finishedRound(deliver: deliver)
        case Self.recordLost:
            if record.count >= 24 { stats.lostEvents += order.u64(record, 16) }
        case Self.recordLostSamples:
            if record.count >= 16 { stats.lostSamples += order.u64(record, 8) }
        case Self.recordCompressed, Self.recordCompressed2:
            throw error("its records are zstd-compressed (perf record -z), which kvmscope does not read: write a plain copy with perf inject -i FILE -o PLAIN.data")
        default:
            stats.otherRecords += 1
        }
    }

    func finish() throws {
        try orderer.flushAll(deliver: deliver)
        stats.reorderEarlyFlushes = orderer.earlyFlushes
    }

    /// The attr index and layout of a sample record, or nil (counted) when its id is unknown.
    @inline(__always)
    private func sampleAttr(_ r: UnsafeRawBufferPointer) -> (Int, PerfSampleLayout)? {
        if attrs.count == 1 { return (0, layouts[0]) }
        guard !attrs.isEmpty else { return nil }
        let idAt: Int
        if allIdentifier { idAt = 0 } else if let c = common, c.idAt >= 0 { idAt = c.idAt } else { return (0, layouts[0]) }
        guard r.count >= 8 + idAt + 8, let i = attrIndex(ofID: order.u64(r, 8 + idAt)) else { return nil }
        return (i, layouts[i])
    }

    @inline(__always)
    private func attrIndex(ofID id: UInt64) -> Int? {
        let slot = Int(truncatingIfNeeded: id & 63)
        if recentIDs[slot].index >= 0, recentIDs[slot].id == id { return recentIDs[slot].index }
        guard let i = idIndex[id] else { return nil }
        recentIDs[slot] = (id, i)
        return i
    }

    private func sampleTime(_ r: UnsafeRawBufferPointer) -> UInt64? {
        guard let (_, l) = sampleAttr(r), l.timeAt >= 0, r.count >= 8 + l.timeAt + 8 else { return nil }
        return order.u64(r, 8 + l.timeAt)
    }

    /// The time in a non-sample record's sample_id trailer (attr.sample_id_all).
    private func trailerTime(_ r: UnsafeRawBufferPointer) -> UInt64? {
        guard let l = trailerLayout(r), l.trailerTimeAt >= 0 else { return nil }
        let at = r.count - l.trailerSize + l.trailerTimeAt
        return order.u64(r, at)
    }

    private func trailerLayout(_ r: UnsafeRawBufferPointer) -> PerfSampleLayout? {
        guard !attrs.isEmpty else { return nil }
        var i = 0
        if allIdentifier, attrs.count > 1 {
            guard r.count >= 16, let k = attrIndex(ofID: order.u64(r, r.count - 8)) else { return nil }
            i = k
        }
        guard attrs[i].sampleIDAll, r.count >= 8 + layouts[i].trailerSize else { return nil }
        return layouts[i]
    }

    /// A record whose turn has come (time order).
    private func deliver(_ r: UnsafeRawBufferPointer) throws {
        let type = order.u32(r, 0)
        switch type {
        case Self.recordSample: try deliverSample(r)
        case Self.recordComm:
            guard r.count > 16 else { return }
            let tid = Int32(bitPattern: order.u32(r, 12))
            let name = UnsafeRawBufferPointer(rebasing: r[16...]).prefix { $0 != 0 }
            setComm(tid, String(decoding: name, as: UTF8.self))
        case Self.recordFork:
            guard r.count >= 24 else { return }
            let tid = Int32(bitPattern: order.u32(r, 16)), ptid = Int32(bitPattern: order.u32(r, 20))
            if let parent = comms[ptid] { setComm(tid, parent) }
        default: break
        }
    }

    private func setComm(_ tid: Int32, _ name: String) {
        if comms[tid] != nil || comms.count < Self.maxComms { comms[tid] = name }
        commGeneration += 1
    }

    /// The thread's name.
    @inline(__always)
    func comm(_ tid: Int32) -> String? {
        let slot = Int(UInt32(bitPattern: tid) & 63)
        if recentComms[slot].tid == tid, recentComms[slot].generation == commGeneration { return recentComms[slot].name }
        let name = comms[tid]
        recentComms[slot] = (tid, commGeneration, name)
        return name
    }

    /// The tracepoint of an attr a sample was delivered for (one with a format).
    func tracepoint(ofAttr i: Int) -> PerfTracepoint { attrEvents[i]! }

    private func deliverSample(_ r: UnsafeRawBufferPointer) throws {
        stats.samples += 1
        guard let (ai, l) = sampleAttr(r) else { stats.samplesOfUnknownID += 1; return }
        guard attrs[ai].type == PerfEventAttr.typeTracepoint else { stats.otherSamples += 1; return }
        let b = UnsafeRawBufferPointer(rebasing: r[8...])
        guard b.count >= l.fixedSize else { stats.malformedSamples += 1; return }
        var at = l.fixedSize
        if l.hasRead {
            var size = l.readHead
            if l.readGroup {
                guard at + 8 <= b.count else { stats.malformedSamples += 1; return }
                let nr = order.u64(b, at)
                guard nr <= UInt64(b.count / max(l.readPerMember, 1)) else { stats.malformedSamples += 1; return }
                size += Int(nr) * l.readPerMember
            }
            at += size
        }
        if l.hasCallchain {
            guard at + 8 <= b.count else { stats.malformedSamples += 1; return }
            let nr = order.u64(b, at)
            guard nr <= UInt64(b.count / 8) else { stats.malformedSamples += 1; return }
            at += 8 + Int(nr) * 8
        }
        guard at + 4 <= b.count else { stats.malformedSamples += 1; return }
        let rawSize = Int(order.u32(b, at))
        guard rawSize <= b.count - at - 4 else { stats.malformedSamples += 1; return }
        var payload = UnsafeRawBufferPointer(rebasing: b[(at + 4)..<(at + 4 + rawSize)])
        guard let formatID = attrFormatIDs[ai] else { stats.samplesWithoutFormat += 1; return }
        if order.swapped {
            let event = attrEvents[ai]!
            let id = event.format.id
            let swapper = swappers[id] ?? PerfPayloadSwapper(format: event.format)
            if swappers[id] == nil { swappers[id] = swapper }
            let out = UnsafeMutableRawBufferPointer(rebasing: scratch[0..<rawSize])
            out.copyMemory(from: payload)
            swapper.swap(out)
            payload = UnsafeRawBufferPointer(out)
        }
        stats.tracepointSamples += 1
        var pid: Int32?, tid: Int32?
        if l.tidAt >= 0 {
            pid = Int32(bitPattern: order.u32(b, l.tidAt))
            tid = Int32(bitPattern: order.u32(b, l.tidAt + 4))
        }
        try body(PerfTracepointSample(
            session: self, attrIndex: ai, formatID: formatID,
            cpu: l.cpuAt >= 0 ? order.u32(b, l.cpuAt) : nil, pid: pid, tid: tid,
            timeNs: l.timeAt >= 0 ? order.u64(b, l.timeAt) : nil, payload: payload))
    }
}
