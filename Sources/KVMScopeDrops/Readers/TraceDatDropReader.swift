import KVMScopeTracefs

/// `trace-cmd record -e skb:kfree_skb`'s trace.dat (versions 6 and 7, compressed or not),
/// read without `trace-cmd report`: the records are decoded with the kfree_skb format stored
/// in the file (the recording kernel's own layout and reason table), addresses named with the
/// kallsyms stored in it, tasks with its saved cmdlines.
struct TraceDatDropFormat: InputFormat {
    public init() {}
    public var name: String { "trace-dat-drops" }
    public var kind: InputKind { .packetDrops }
    public var summary: String { "trace-cmd's binary trace.dat (v6, v7; zstd/zlib) of `trace-cmd record -e skb:kfree_skb`" }
    public func recognizes(_ sample: UnsafeRawBufferPointer) -> Bool { TraceDatFile.hasMagic(sample) }
}

/// What the trace.dat reader saw, besides the drops.
public struct TraceDatDropStats: Sendable, Equatable {
    public var events = 0
    public var drops = 0
    public var consumed = 0
    public var otherEvents = 0
    /// kfree_skb records too short for the stored layout.
    public var undecodable = 0
    public var pages = RingBufferPageDecoder.Stats()
    public init() {}
}

public struct TraceDatDropReader {
    public let file: TraceDatFile
    public let decoder: KfreeSkbRecordDecoder
    /// The file's kallsyms (nil when it stored none, or only zero addresses).
    public let symbols: KernelSymbolTable?
    private let input: TraceDatInput
    private let consumeID: Int?
    public private(set) var stats = TraceDatDropStats()

    /// Opens the trace.dat `stream`. When `source` (what the stream reads) is a regular,
    /// uncompressed file it is read in place; anything else is copied to a temporary file
    /// first, since the format needs random access.
    public init(stream: ByteStream, source: ByteStream? = nil) throws {
        let input = try TraceDatInput(stream: stream, source: source)
        let file: TraceDatFile
        do { file = try TraceDatFile.read(input) } catch let e as TraceDatError {
            throw KVMScopeError.unsupportedFormat(path: stream.name, detail: e.description)
        }
        guard let format = file.format(system: "skb", name: "kfree_skb") else {
            throw KVMScopeError.unsupportedFormat(path: stream.name, detail:
                "this trace.dat has no skb:kfree_skb events (its formats: \(Self.systemList(file))); record with: trace-cmd record -e skb:kfree_skb")
        }
        do { decoder = try KfreeSkbRecordDecoder(format: format) } catch {
            throw KVMScopeError.unsupportedFormat(path: stream.name, detail: "\(error)")
        }
        self.input = input
        self.file = file
        consumeID = file.format(system: "skb", name: "consume_skb")?.id
        if file.kallsyms.isEmpty {
            symbols = nil
        } else {
            let table = try? KernelSymbolTable(parsing: MemoryByteSource(file.kallsyms, name: "\(stream.name) (kallsyms)"))
            symbols = table?.addressesHidden == false ? table : nil
        }
    }

    static func systemList(_ f: TraceDatFile) -> String {
        let s = Set(f.systems.values).subtracting(["ftrace"]).sorted()
        return s.isEmpty ? "none" : s.joined(separator: ", ")
    }

    /// Every drop, in time order. `location` carries the address only; symbolize it with
    /// `symbols` (or a --kallsyms table).
    public mutating func read(_ body: (DropEvent) throws -> Void) throws {
        let events = TraceDatEventReader(file: file, input: input)
        let decoder = self.decoder
        let kfree = Int(decoder.eventID)
        let consumeID = self.consumeID
        var s = stats
        defer { stats = s; stats.pages = events.stats.pages; stats.events = events.stats.events }
        do {
            try events.forEach { e in
                if e.type == kfree {
                    guard let r = decoder.decode(e.payload) else { s.undecodable += 1; return }
                    s.drops += 1
                    try body(DropEvent(time: Double(e.timestamp) / 1e9, cpu: Int32(e.cpu), pid: r.pid,
                                       comm: file.comms[r.pid] ?? (r.pid == 0 ? "<idle>" : "<...>"),   // as trace-cmd prints them
                                       location: DropLocation(address: r.location),
                                       protocolNumber: r.protocolNumber, reason: decoder.dropReason(r.reason)))
                } else if e.type == consumeID {
                    s.consumed += 1
                } else {
                    s.otherEvents += 1
                }
            }
        } catch let e as TraceDatError {
            throw KVMScopeError.unsupportedFormat(path: input.name, detail: e.description)
        }
    }

    /// Sentences for the report: losses and damage the pages recorded.
    public var notes: [String] {
        var n: [String] = []
        let p = stats.pages
        if p.pagesAfterLoss > 0 {
            n.append("the ring buffer overflowed while recording: \(p.lostEvents > 0 ? "\(p.lostEvents) events" : "events") lost before \(p.pagesAfterLoss) pages (counts are too low)")
        }
        if p.corruptPages > 0 { n.append("\(p.corruptPages) damaged pages in the CPU data were skipped") }
        if stats.undecodable > 0 { n.append("\(stats.undecodable) kfree_skb records were too short for the stored format and skipped") }
        if !file.otherBuffers.isEmpty {
            n.append("only the top buffer was read; instance buffers \(file.otherBuffers.joined(separator: ", ")) were left out")
        }
        return n
    }
}
