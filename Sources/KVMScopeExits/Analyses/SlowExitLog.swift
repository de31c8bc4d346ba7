import Foundation

/// One of the N slowest exits, with the trace lines that led to it (view 3).
public struct SlowExit: Codable, Sendable, Equatable {
    public var latencyNs: UInt64
    public var exitTimestampNs: UInt64
    public var entryTimestampNs: UInt64
    public var reason: String
    public var vcpu: Int32
    public var tid: Int32
    public var comm: String
    public var cpu: Int32
    public var rip: UInt64
    public var info1: UInt64
    public var info2: UInt64
    public var intrInfo: UInt32
    public var errorCode: UInt32
    /// Trace lines on the exit's CPU before and after the exit (up to `contextLines` each), the
    /// exit line itself marked `>`, and the matching entry line; as printed in the input.
    public var context: [String]
}

/// The last lines seen on each CPU, in fixed memory, so the lines before a slow exit can be
/// shown once its entry proves it slow. Lines are copied as bytes (truncated to 240), or kept
/// as the record itself with a tag (`appendDeferred`) and rendered only when shown: the
/// perf.data reader has no text, and rendering every sample cost more than reading it.
struct CPULineRings {
    static let slotBytes = 240
    /// `lengths` of a slot that holds a deferred record (a line is at most `slotBytes`).
    private static let deferredLength: UInt8 = 255
    let depth: Int
    private var storage: [UInt8]      // [cpu][slot][bytes]
    private var lengths: [UInt8]
    private var seqs: [UInt64]        // global line sequence of each slot (0 = empty)
    private var heads: [Int]          // next slot per cpu
    private var deferred: [(record: KVMTraceRecord, tag: UInt64)]   // [cpu][slot], when deferred
    let maxCPUs: Int

    init(depth: Int, maxCPUs: Int = 1024) {
        self.depth = max(1, depth)
        self.maxCPUs = maxCPUs
        storage = []; lengths = []; seqs = []; heads = []; deferred = []
    }

    private mutating func ensure(_ cpu: Int) -> Bool {
        guard cpu >= 0, cpu < maxCPUs else { return false }
        if cpu >= heads.count {
            let n = cpu + 1
            storage += [UInt8](repeating: 0, count: (n - heads.count) * depth * Self.slotBytes)
            lengths += [UInt8](repeating: 0, count: (n - heads.count) * depth)
            seqs += [UInt64](repeating: 0, count: (n - heads.count) * depth)
            deferred += Array(repeating: (KVMTraceRecord(), 0), count: (n - heads.count) * depth)
            heads += [Int](repeating: 0, count: n - heads.count)
        }
        return true
    }

    @inline(__always)
    mutating func append(cpu: Int, seq: UInt64, line: LineBytes) {
        guard ensure(cpu) else { return }
        let slot = cpu * depth + heads[cpu]
        let n = min(line.count, Self.slotBytes)
        if n > 0 {
            storage.withUnsafeMutableBufferPointer { dst in
                _ = memcpy(dst.baseAddress! + slot * Self.slotBytes, line.bytes.baseAddress!, n)
            }
        }
        lengths[slot] = UInt8(n)
        seqs[slot] = seq
        heads[cpu] = (heads[cpu] + 1) % depth
    }

    /// Keeps `record` and the reader's `tag` in place of its line.
    @inline(__always)
    mutating func appendDeferred(cpu: Int, seq: UInt64, record: KVMTraceRecord, tag: UInt64) {
        guard ensure(cpu) else { return }
        let slot = cpu * depth + heads[cpu]
        deferred[slot] = (record, tag)
        lengths[slot] = Self.deferredLength
        seqs[slot] = seq
        heads[cpu] = (heads[cpu] + 1) % depth
    }

    /// Lines of `cpu` with sequence numbers in `range`, oldest first; a deferred record's line
    /// is what `render` makes of it, truncated as a copied line is.
    func lines(cpu: Int, in range: ClosedRange<UInt64>,
               render: (KVMTraceRecord, UInt64) -> [UInt8] = { _, _ in [] }) -> [(seq: UInt64, text: String)] {
        guard cpu >= 0, cpu < heads.count else { return [] }
        var out: [(UInt64, String)] = []
        for k in 0..<depth {
            let slot = cpu * depth + (heads[cpu] + k) % depth
            let s = seqs[slot]
            guard s != 0, range.contains(s) else { continue }
            let text: String
            if lengths[slot] == Self.deferredLength {
                text = String(decoding: render(deferred[slot].record, deferred[slot].tag).prefix(Self.slotBytes), as: UTF8.self)
            } else {
                let start = slot * Self.slotBytes
                text = String(decoding: storage[start..<start + Int(lengths[slot])], as: UTF8.self)
            }
            out.append((s, text))
        }
        return out
    }
}

/// Keeps the N slowest exit→entry pairs (a min-heap on latency): memory is N entries whatever
/// the input size, and a String is made only for an exit that enters the top N.
struct SlowExitTracker {
    let limit: Int
    let contextLines: Int
    private(set) var heap: [SlowExit] = []   // min-heap by latencyNs
    var rings: CPULineRings

    init(limit: Int, contextLines: Int) {
        self.limit = max(0, limit)
        self.contextLines = max(0, contextLines)
        rings = CPULineRings(depth: max(2, 2 * contextLines + 2))
    }

    /// The latency a pair must exceed to enter the log.
    var threshold: UInt64 { heap.count < limit ? 0 : heap[0].latencyNs }

    mutating func offer(_ make: () -> SlowExit) {
        guard limit > 0 else { return }
        let e = make()
        if heap.count < limit {
            heap.append(e)
            siftUp(heap.count - 1)
        } else if e.latencyNs > heap[0].latencyNs {
            heap[0] = e
            siftDown(0)
        }
    }

    /// Slowest first; ties by exit time.
    var sorted: [SlowExit] {
        heap.sorted { $0.latencyNs != $1.latencyNs ? $0.latencyNs > $1.latencyNs : $0.exitTimestampNs < $1.exitTimestampNs }
    }

    private mutating func siftUp(_ i0: Int) {
        var i = i0
        while i > 0 {
            let p = (i - 1) / 2
            guard heap[i].latencyNs < heap[p].latencyNs else { break }
            heap.swapAt(i, p); i = p
        }
    }

    private mutating func siftDown(_ i0: Int) {
        var i = i0
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < heap.count, heap[l].latencyNs < heap[m].latencyNs { m = l }
            if r < heap.count, heap[r].latencyNs < heap[m].latencyNs { m = r }
            if m == i { return }
            heap.swapAt(i, m); i = m
        }
    }
}
