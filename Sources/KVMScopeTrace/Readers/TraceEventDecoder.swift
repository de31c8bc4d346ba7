import Foundation

/// Which events a reader decodes. Everything else is only counted, by name, which is what
/// keeps a reader fast when an analysis needs a handful of QEMU's ~5000 events.
public struct TraceEventSelection: Sendable {
    let includes: @Sendable (String) -> Bool

    public init(_ includes: @escaping @Sendable (String) -> Bool) { self.includes = includes }

    public static let all = TraceEventSelection { _ in true }

    public static func names(_ names: Set<String>) -> TraceEventSelection {
        TraceEventSelection { names.contains($0) }
    }

    /// QEMU `-trace`-style patterns (`virtio_blk_*`); empty means all.
    public static func patterns(_ patterns: [String]) -> TraceEventSelection {
        patterns.isEmpty ? .all : TraceEventSelection { name in patterns.contains { TracePattern.matches($0, name) } }
    }

    public func contains(_ name: String) -> Bool { includes(name) }
}

/// The name → definitions machinery every trace reader shares: byte-level name lookup, the
/// selection, argument scanners for text formats, and the per-name counters that end up in
/// `TraceReadStats`. One decoder per read.
public final class TraceEventDecoder {
    public let catalog: TraceEventCatalog
    let names: [String]
    let table: TraceEventNameTable
    let selected: [Bool]
    let definitionsByName: [[TraceEventDefinition]]
    /// Owns every scanner; the hot path goes through `firstScanner` and `next` without ARC.
    let scanners: [TraceArgumentScanner]
    /// Per name (index from `nameIndex`), raw buffers so that the per-line path does no
    /// reference counting: the first scanner to try, selected or not, counters.
    let firstScanner: UnsafeMutablePointer<Unmanaged<TraceArgumentScanner>?>
    let isSelected: UnsafeMutablePointer<Bool>
    let seenByName: UnsafeMutablePointer<Int>
    let malformedByName: UnsafeMutablePointer<Int>
    private var unknown = UnknownNameCounter()

    public init(catalog: TraceEventCatalog, selection: TraceEventSelection = .all) {
        self.catalog = catalog
        // Catalog order, not sorted: indices are only used inside this decoder, and sorting
        // ~5000 names was a fifth of `trace`'s start-up (the counters end up in dictionaries).
        let names = catalog.names
        self.names = names
        table = TraceEventNameTable(names)
        selected = names.map { selection.contains($0) }
        definitionsByName = names.map { catalog.definitions(named: $0) }
        let n = max(names.count, 1)
        firstScanner = .allocate(capacity: n)
        firstScanner.initialize(repeating: nil, count: n)
        isSelected = .allocate(capacity: n)
        isSelected.initialize(repeating: false, count: n)
        seenByName = .allocate(capacity: n)
        seenByName.initialize(repeating: 0, count: n)
        malformedByName = .allocate(capacity: n)
        malformedByName.initialize(repeating: 0, count: n)
        var all: [TraceArgumentScanner] = []
        for (i, defs) in definitionsByName.enumerated() {
            isSelected[i] = selected[i]
            // Only selected events are ever scanned: building scanners for the other ~5000
            // names of an installed trace-events-all was start-up time for nothing.
            guard selected[i] else { continue }
            let chain = defs.compactMap(TraceArgumentScanner.init)
            for k in chain.indices.dropLast() { chain[k].next = Unmanaged.passUnretained(chain[k + 1]) }
            firstScanner[i] = chain.first.map { Unmanaged.passUnretained($0) }
            all += chain
        }
        scanners = all
    }

    deinit {
        firstScanner.deallocate()
        isSelected.deallocate()
        seenByName.deallocate()
        malformedByName.deallocate()
    }

    /// Index of the event name in `bytes`, or -1.
    @inline(__always)
    func nameIndex(_ bytes: UnsafePointer<UInt8>, _ length: Int) -> Int {
        table.lookup(bytes, length)
    }

    @inline(__always)
    func noteUnknown(_ bytes: UnsafePointer<UInt8>, _ length: Int) {
        unknown.note(bytes, length)
    }

    /// Copies the per-name counters into `stats`.
    func finish(into stats: inout TraceReadStats) {
        stats.malformedEvents = 0
        for i in names.indices {
            if seenByName[i] > 0 { stats.eventCounts[names[i]] = seenByName[i] }
            if malformedByName[i] > 0 {
                stats.malformedEventNames[names[i]] = malformedByName[i]
                stats.malformedEvents += malformedByName[i]
            }
        }
        stats.unknownEvents = unknown.total
        stats.unknownEventNames = unknown.namesAndCounts
        stats.unknownEventsByPattern = unknown.countsByPattern
    }
}

/// Counts unknown event names without making a String per line: names are remembered as bytes
/// (at most `TraceReadStats.maxUnknownNames` of them); the total stays exact.
struct UnknownNameCounter {
    private var indexByHash: [UInt64: [Int]] = [:]
    private var names: [[UInt8]] = []
    private var counts: [Int] = []
    /// Per remembered name, its index in `TraceCoverage.countedPatterns` (-1: none).
    private var patternOfName: [Int] = []
    /// Unknown events per counted pattern, exact even past the remembered names: coverage
    /// must see a bus whose events this QEMU's definitions (or the bundled ones) lack.
    private var perPattern = [Int](repeating: 0, count: TraceCoverage.countedPatterns.count)
    private(set) var total = 0

    mutating func note(_ bytes: UnsafePointer<UInt8>, _ length: Int) {
        total += 1
        let h = TraceEventNameTable.hash(bytes, length)
        if let candidates = indexByHash[h] {
            for i in candidates where names[i].count == length {
                if names[i].withUnsafeBufferPointer({ memcmp($0.baseAddress!, bytes, length) == 0 }) {
                    counts[i] += 1
                    if patternOfName[i] >= 0 { perPattern[patternOfName[i]] += 1 }
                    return
                }
            }
        }
        let pattern = CountedPatternMatcher.shared.index(bytes, length)
        if pattern >= 0 { perPattern[pattern] += 1 }
        guard names.count < TraceReadStats.maxUnknownNames else { return }
        indexByHash[h, default: []].append(names.count)
        names.append(Array(UnsafeBufferPointer(start: bytes, count: length)))
        counts.append(1)
        patternOfName.append(pattern)
    }

    var countsByPattern: [String: Int] {
        var out: [String: Int] = [:]
        for (i, n) in perPattern.enumerated() where n > 0 { out[TraceCoverage.countedPatterns[i]] = n }
        return out
    }

    var namesAndCounts: [String: Int] {
        var out: [String: Int] = [:]
        for (i, n) in names.enumerated() { out[String(decoding: n, as: UTF8.self)] = counts[i] }
        return out
    }
}

/// `TraceCoverage.countedPatterns` matched against raw name bytes (no String per line): each
/// pattern is a prefix (`virtio_blk_*`) or an exact name (`runstate_set`).
struct CountedPatternMatcher: Sendable {
    static let shared = CountedPatternMatcher(TraceCoverage.countedPatterns)
    let patterns: [(bytes: [UInt8], prefix: Bool)]

    init(_ list: [String]) {
        patterns = list.map { p in
            p.hasSuffix("*") ? (Array(p.utf8.dropLast()), true) : (Array(p.utf8), false)
        }
    }

    func index(_ bytes: UnsafePointer<UInt8>, _ length: Int) -> Int {
        for (i, p) in patterns.enumerated() {
            let n = p.bytes.count
            guard p.prefix ? length >= n : length == n else { continue }
            if p.bytes.withUnsafeBufferPointer({ memcmp($0.baseAddress!, bytes, n) == 0 }) { return i }
        }
        return -1
    }
}
