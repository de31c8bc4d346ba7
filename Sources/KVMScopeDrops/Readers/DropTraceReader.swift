import Foundation

/// The three text forms of `skb:kfree_skb` captures kvmscope reads offline. All share the one
/// line parser (KfreeSkbLineParser); each can say "this is mine" for auto-detection and
/// names the input in reports.
struct PerfScriptDropFormat: InputFormat {
    public init() {}
    public var name: String { "perf-script-drops" }
    public var kind: InputKind { .packetDrops }
    public var summary: String { "`perf script` output of `perf record -e skb:kfree_skb`" }
    public func recognizes(_ sample: UnsafeRawBufferPointer) -> Bool {
        DropFormatSniffer.contains(sample, " skb:kfree_skb: ")
    }
}

struct TraceCmdDropFormat: InputFormat {
    public init() {}
    public var name: String { "trace-cmd-drops" }
    public var kind: InputKind { .packetDrops }
    public var summary: String { "`trace-cmd report` of `trace-cmd record -e skb:kfree_skb` (also -l, -t, -R)" }
    public func recognizes(_ sample: UnsafeRawBufferPointer) -> Bool {
        // trace-cmd prints `%p` as 0x..., pads the event name, and starts with `cpus=N`.
        guard DropFormatSniffer.contains(sample, "kfree_skb: ") else { return false }
        return DropFormatSniffer.startsWith(sample, "cpus=") || DropFormatSniffer.startsWith(sample, "version = ")
            || DropFormatSniffer.contains(sample, "kfree_skb:  ")
            || DropFormatSniffer.contains(sample, "skbaddr=0x")
    }
}

struct FtraceDropFormat: InputFormat {
    public init() {}
    public var name: String { "ftrace-drops" }
    public var kind: InputKind { .packetDrops }
    public var summary: String { "tracefs `trace` / `trace_pipe` text with skb:kfree_skb enabled" }
    public func recognizes(_ sample: UnsafeRawBufferPointer) -> Bool {
        DropFormatSniffer.contains(sample, "kfree_skb: skbaddr=")
            || (DropFormatSniffer.startsWith(sample, "# tracer:") && DropFormatSniffer.contains(sample, "kfree_skb"))
    }
}

enum DropFormatSniffer {
    static func contains(_ sample: UnsafeRawBufferPointer, _ needle: StaticString) -> Bool {
        guard let base = sample.baseAddress else { return false }
        return byteSearch(base.assumingMemoryBound(to: UInt8.self), sample.count,
                          needle.utf8Start, needle.utf8CodeUnitCount) != nil
    }

    static func startsWith(_ sample: UnsafeRawBufferPointer, _ prefix: StaticString) -> Bool {
        guard sample.count >= prefix.utf8CodeUnitCount, let base = sample.baseAddress else { return false }
        return memcmp(base, prefix.utf8Start, prefix.utf8CodeUnitCount) == 0
    }
}

/// What a text reader saw besides the drops: frees that are not drops, other events,
/// lines it could not read — so nothing is skipped silently.
public struct DropTraceStats: Equatable, Sendable, Codable {
    public var lines = 0
    public var drops = 0
    /// consume_skb lines (normal frees): never counted as drops.
    public var consumed = 0
    public var otherEvents = 0
    public var headerLines = 0
    /// Lines that were neither (garbage, truncated lines, binary junk).
    public var skippedLines = 0
    public var overlongLines = 0
    /// Drops whose location was a `%p` hash (ftrace text since 4.15): where they happened
    /// cannot be recovered from that text.
    public var hashedLocations = 0
    /// Drops with a numeric reason no table named (give --format-file from the capturing host).
    public var unnamedReasons = 0
    public init() {}
}

/// Reads a kfree_skb text capture (any of the three formats, even mixed) in one pass.
public struct DropTraceReader {
    public private(set) var stats = DropTraceStats()
    public var parser: KfreeSkbLineParser

    public init(parser: KfreeSkbLineParser = KfreeSkbLineParser()) { self.parser = parser }

    public mutating func read(_ stream: ByteStream, _ body: (DropEvent) throws -> Void) throws {
        var splitter = LineSplitter()
        let parser = self.parser
        var s = stats
        defer { stats = s }
        try splitter.forEachLine(in: stream) { line, _ in
            if line.looksBinary { s.skippedLines += 1; return }
            switch parser.parse(line) {
            case let .drop(event):
                s.drops += 1
                if event.location.hashed { s.hashedLocations += 1 }
                if let r = event.reason, r.name == nil { s.unnamedReasons += 1 }
                try body(event)
            case .consumed: s.consumed += 1
            case .otherEvent: s.otherEvents += 1
            case .header: s.headerLines += 1
            case .garbage: s.skippedLines += 1
            }
        }
        s.lines = splitter.stats.lines
        s.overlongLines = splitter.stats.overlongLines
    }
}
