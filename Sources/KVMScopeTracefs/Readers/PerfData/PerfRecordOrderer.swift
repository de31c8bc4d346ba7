import Foundation

/// Puts records back in time order the way perf script does (tools/perf/util/ordered-events.c):
/// perf record drains the per-CPU buffers in turns and writes PERF_RECORD_FINISHED_ROUND after
/// each turn, so at the end of a round every record up to the previous round's newest time
/// stamp has been written and can be delivered sorted (OE_FLUSH__ROUND); the rest waits.
/// Equal time stamps keep file order. Records without a time stamp are delivered at once,
/// as perf does (-ETIME). Memory is bounded: past `limitBytes` the older half of the window
/// is delivered early (perf's OE_FLUSH__HALF) and counted.
///
/// perf sorts its queue as records arrive (ordered-events.c, queue_event walks from the last
/// queued event); here the window is sorted when it is flushed, and only when a record came
/// in older than the one queued before it: a round written in time order (one CPU, or the
/// CPUs' buffers already interleaved) is delivered as it came, without a sort.
struct PerfRecordOrderer {
    struct Entry {
        var time: UInt64
        var seq: UInt64
        var start: Int
        var length: Int
    }

    /// The queued records' bytes, in one growing buffer: no reference counting or uniqueness
    /// checks per record, as an array or a class would have. `deallocate()` frees it.
    private var arena: UnsafeMutableRawPointer
    private var arenaCapacity = 64 << 10
    private var arenaCount = 0
    /// The window: `entries[head...]`; the ones before `head` have been delivered.
    private var entries: [Entry] = []
    private var head = 0
    private var seq: UInt64 = 0
    private var nextFlush: UInt64 = 0
    private var maxTime: UInt64 = 0
    private(set) var earlyFlushes = 0
    /// Records older than a flush already made (perf: "Timestamp below last timeslice flush").
    private(set) var lateRecords = 0
    private var lastFlushed: UInt64 = 0
    /// The queued entries are in (time, seq) order: each came no older than the one before.
    /// Entries kept after a flush stay sorted, so this only turns false on arrival.
    private var queuedInOrder = true
    let limitBytes: Int

    init(limitBytes: Int = 256 << 20) {
        self.limitBytes = limitBytes
        arena = .allocate(byteCount: arenaCapacity, alignment: 8)
    }

    /// Frees the buffer (the owner's deinit; the orderer is not used after).
    func deallocate() { arena.deallocate() }

    var isEmpty: Bool { head == entries.count }

    /// Queues a whole record (header included); true when the window has outgrown its bound
    /// and `flushHalf` must be called.
    @inline(__always)
    mutating func queue(_ record: UnsafeRawBufferPointer, time: UInt64) -> Bool {
        if time < lastFlushed { lateRecords += 1 }
        // seq grows with every record, so an equal time stamp keeps the order too.
        if queuedInOrder, head < entries.count, time < entries[entries.count - 1].time { queuedInOrder = false }
        entries.append(Entry(time: time, seq: seq, start: arenaCount, length: record.count))
        seq += 1
        if record.count > arenaCapacity - arenaCount { growArena(arenaCount + record.count) }
        if let src = record.baseAddress { (arena + arenaCount).copyMemory(from: src, byteCount: record.count) }
        arenaCount += record.count
        if time > maxTime { maxTime = time }
        return arenaCount > limitBytes
    }

    /// The older half of an outgrown window, delivered early (OE_FLUSH__HALF).
    mutating func flushHalf(deliver: (UnsafeRawBufferPointer) throws -> Void) throws {
        earlyFlushes += 1
        sortEntries()
        let mid = entries[head].time + (entries[entries.count - 1].time - entries[head].time) / 2
        try flush(upTo: mid, deliver: deliver)
    }

    private mutating func growArena(_ needed: Int) {
        var c = arenaCapacity
        while c < needed { c *= 2 }
        let b = UnsafeMutableRawPointer.allocate(byteCount: c, alignment: 8)
        b.copyMemory(from: arena, byteCount: arenaCount)
        arena.deallocate()
        arena = b
        arenaCapacity = c
    }

    /// PERF_RECORD_FINISHED_ROUND.
    mutating func finishedRound(deliver: (UnsafeRawBufferPointer) throws -> Void) throws {
        try flush(upTo: nextFlush, deliver: deliver)
        nextFlush = maxTime
    }

    /// End of input: everything, sorted.
    mutating func flushAll(deliver: (UnsafeRawBufferPointer) throws -> Void) throws {
        try flush(upTo: .max, deliver: deliver)
    }

    private mutating func sortEntries() {
        guard !queuedInOrder else { return }
        entries[head...].sort { $0.time != $1.time ? $0.time < $1.time : $0.seq < $1.seq }
        queuedInOrder = true
    }

    private mutating func flush(upTo limit: UInt64,
                                deliver: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard head < entries.count else { return }
        sortEntries()
        var n = head
        let base = arena
        while n < entries.count, entries[n].time <= limit {
            let e = entries[n]
            try deliver(UnsafeRawBufferPointer(start: base + e.start, count: e.length))
            n += 1
        }
        if n > head { lastFlushed = entries[n - 1].time }
        head = n
        if head == entries.count {
            entries.removeAll(keepingCapacity: true)
            head = 0
            arenaCount = 0
            return
        }
        // Delivered entries are dropped once they are half the array (each moved once).
        if head > 4096, head * 2 > entries.count {
            entries.removeFirst(head)
            head = 0
        }
        // The delivered records' bytes stay in the arena until they are most of it: then the
        // rest is moved to its front (each byte is copied a bounded number of times).
        var live = 0
        for i in head..<entries.count { live += entries[i].length }
        guard arenaCount > 1 << 20, live * 2 < arenaCount else { return }
        var at = 0
        for i in head..<entries.count {
            let e = entries[i]
            if e.start != at { memmove(base + at, base + e.start, e.length) }
            entries[i].start = at
            at += e.length
        }
        arenaCount = at
    }
}
