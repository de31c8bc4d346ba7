/// Puts records back in time order the way perf script does (tools/perf/util/ordered-events.c):
/// perf record drains the per-CPU buffers in turns and writes PERF_RECORD_FINISHED_ROUND after
/// each turn, so at the end of a round every record up to the previous round's newest time
/// stamp has been written and can be delivered sorted (OE_FLUSH__ROUND); the rest waits.
/// Equal time stamps keep file order. Records without a time stamp are delivered at once,
/// as perf does (-ETIME). Memory is bounded: past `limitBytes` the older half of the window
/// is delivered early (perf's OE_FLUSH__HALF) and counted.
struct PerfRecordOrderer {
    struct Entry {
        var time: UInt64
        var seq: UInt64
        var start: Int
        var length: Int
    }

    private var arena: [UInt8] = []
    private var entries: [Entry] = []
    private var seq: UInt64 = 0
    private var nextFlush: UInt64 = 0
    private var maxTime: UInt64 = 0
    private(set) var earlyFlushes = 0
    /// Records older than a flush already made (perf: "Timestamp below last timeslice flush").
    private(set) var lateRecords = 0
    private var lastFlushed: UInt64 = 0
    let limitBytes: Int

    init(limitBytes: Int = 256 << 20) { self.limitBytes = limitBytes }

    var isEmpty: Bool { entries.isEmpty }

    /// Queues a whole record (header included).
    mutating func queue(_ record: UnsafeRawBufferPointer, time: UInt64,
                        deliver: (UnsafeRawBufferPointer) throws -> Void) throws {
        if time < lastFlushed { lateRecords += 1 }
        entries.append(Entry(time: time, seq: seq, start: arena.count, length: record.count))
        seq += 1
        arena.append(contentsOf: record)
        if time > maxTime { maxTime = time }
        if arena.count > limitBytes {
            earlyFlushes += 1
            sortEntries()
            let mid = entries[0].time + (entries[entries.count - 1].time - entries[0].time) / 2
            try flush(upTo: mid, sorted: true, deliver: deliver)
        }
    }

    /// PERF_RECORD_FINISHED_ROUND.
    mutating func finishedRound(deliver: (UnsafeRawBufferPointer) throws -> Void) throws {
        try flush(upTo: nextFlush, sorted: false, deliver: deliver)
        nextFlush = maxTime
    }

    /// End of input: everything, sorted.
    mutating func flushAll(deliver: (UnsafeRawBufferPointer) throws -> Void) throws {
        try flush(upTo: .max, sorted: false, deliver: deliver)
    }

    private mutating func sortEntries() {
        entries.sort { $0.time != $1.time ? $0.time < $1.time : $0.seq < $1.seq }
    }

    private mutating func flush(upTo limit: UInt64, sorted: Bool,
                                deliver: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard !entries.isEmpty else { return }
        if !sorted { sortEntries() }
        var n = 0
        try arena.withUnsafeBytes { a in
            while n < entries.count, entries[n].time <= limit {
                let e = entries[n]
                try deliver(UnsafeRawBufferPointer(rebasing: a[e.start..<(e.start + e.length)]))
                n += 1
            }
        }
        if n > 0 { lastFlushed = entries[n - 1].time }
        if n == entries.count {
            entries.removeAll(keepingCapacity: true)
            arena.removeAll(keepingCapacity: true)
            return
        }
        entries.removeFirst(n)
        // The delivered records' bytes stay in the arena until they are most of it: then the
        // rest is compacted into a fresh one (each byte is copied a bounded number of times).
        let live = entries.reduce(0) { $0 + $1.length }
        guard arena.count > 1 << 20, live * 2 < arena.count else { return }
        var kept: [UInt8] = []
        kept.reserveCapacity(arena.capacity)
        for i in entries.indices {
            let e = entries[i]
            entries[i].start = kept.count
            kept.append(contentsOf: arena[e.start..<(e.start + e.length)])
        }
        arena = kept
    }
}
