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

    public mutating func read(_ stream: ByteStream, _ body: (DropEvent) throws -> Void) throws {
        var reader = PerfDataReader()
        var kinds: [Int: Kind] = [:]
        var lastKind = Kind.other
        var lastID = Int.min
        let counts = Counts()
        let wantComm = self.wantComm
        defer {
            stats = counts.stats
            perf = reader.stats
        }
        try reader.read(stream) { sample in
            counts.stats.lines += 1
            // What each event is, decided once per event (samples of one event come in runs).
            let id = sample.event.format.id
            if id != lastID {
                if kinds[id] == nil { kinds[id] = try Self.kind(of: sample.event, path: stream.name) }
                lastKind = kinds[id]!
                lastID = id
            }
            let box: DecoderBox
            switch lastKind {
            case .other: counts.stats.otherEvents += 1; return
            case .consume: counts.stats.consumed += 1; return
            case let .kfree(b): box = b
            }
            guard let r = box.decoder.decode(sample.payload) else { counts.stats.skippedLines += 1; return }
            let reason = box.decoder.dropReason(r.reason)
            if reason?.name == "CONSUMED" { counts.stats.consumed += 1; return }
            counts.stats.drops += 1
            if let reason, reason.name == nil { counts.stats.unnamedReasons += 1 }
            var e = DropEvent(time: sample.timeNs.map { Double($0) / 1e9 }, cpu: sample.cpu.map { Int32(bitPattern: $0) },
                              pid: r.pid, location: DropLocation(address: r.location),
                              protocolNumber: r.protocolNumber, reason: reason)
            if wantComm { e.comm = sample.comm }
            try body(e)
        }
    }

    /// A reference, so that taking the decoder out of `Kind` per sample is one retain.
    final class DecoderBox {
        let decoder: KfreeSkbRecordDecoder
        init(_ d: KfreeSkbRecordDecoder) { decoder = d }
    }

    enum Kind {
        case kfree(DecoderBox)
        case consume
        case other
    }

    static func kind(of event: PerfTracepoint, path: String) throws -> Kind {
        guard event.system == "skb" else { return .other }
        if event.name == "consume_skb" { return .consume }
        guard event.name == "kfree_skb" else { return .other }
        guard let d = try? KfreeSkbRecordDecoder(format: event.format) else {
            throw PerfDataError(path: path, "the kfree_skb format stored in it lacks the fields kvmscope reads (skbaddr, location, protocol)")
        }
        return .kfree(DecoderBox(d))
    }

    /// Counters the escaping sample callback updates.
    final class Counts { var stats = DropTraceStats() }
}
