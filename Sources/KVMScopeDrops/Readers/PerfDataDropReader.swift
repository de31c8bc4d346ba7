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
        var decoders: [Int: KfreeSkbRecordDecoder?] = [:]
        let counts = Counts()
        let wantComm = self.wantComm
        defer {
            stats = counts.stats
            perf = reader.stats
        }
        try reader.read(stream) { sample in
            let format = sample.event.format
            counts.stats.lines += 1
            guard sample.event.system == "skb" else { counts.stats.otherEvents += 1; return }
            if format.name == "consume_skb" { counts.stats.consumed += 1; return }
            guard format.name == "kfree_skb" else { counts.stats.otherEvents += 1; return }
            if decoders[format.id] == nil { decoders[format.id] = try? KfreeSkbRecordDecoder(format: format) }
            guard let d = decoders[format.id] ?? nil else {
                throw PerfDataError(path: stream.name, "the kfree_skb format stored in it lacks the fields kvmscope reads (skbaddr, location, protocol)")
            }
            guard let r = d.decode(sample.payload) else { counts.stats.skippedLines += 1; return }
            let reason = d.dropReason(r.reason)
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

    /// Counters the escaping sample callback updates.
    final class Counts { var stats = DropTraceStats() }
}
