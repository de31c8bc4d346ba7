import Foundation

/// One event of a trace.dat, valid only during the callback.
public struct TraceDatEvent {
    public let cpu: Int
    /// Nanoseconds (the clock's units; TSC2NSEC and OFFSET applied as trace-cmd applies them).
    public let timestamp: UInt64
    /// The record, from `common_type` on, in this machine's byte order (a big-endian file's
    /// fields are swapped using the event's format).
    public let payload: UnsafeRawBufferPointer
    /// The record's `common_type`.
    public let type: Int
}

/// Streams the events of a trace.dat's CPU data in timestamp order, the way `trace-cmd report`
/// orders them (trace-input.c tracecmd_read_next_data: the CPU whose next event is earliest;
/// on a tie, the lowest CPU). Each CPU holds one page decoded at a time — or, for compressed
/// v7 data, one decompressed chunk — so memory is CPUs × page (chunk) size whatever the
/// file's length. A heap over the CPUs picks the next event in O(log CPUs).
public final class TraceDatEventReader {
    public struct Stats: Sendable, Equatable {
        public var events = 0
        public var pages = RingBufferPageDecoder.Stats()
        /// Events whose `common_type` has no format in the file.
        public var unknownTypes = 0
        public init() {}
    }

    public let file: TraceDatFile
    public private(set) var stats = Stats()
    private let input: TraceDatInput
    /// Largest decompressed chunk accepted (trace-cmd writes chunks of 10 pages:
    /// trace-output.c PAGES_IN_CHUNK).
    static let maxChunkBytes = 64 << 20
    /// What all CPUs may hold at once (their current page or chunk). Real files need CPUs ×
    /// 40 KiB; a hostile one listing many CPUs over the same bytes, or chunks that inflate
    /// from a few bytes to 64 MiB each, is refused here instead of taking the memory.
    static let maxHeldBytes = 512 << 20
    private var heldBytes = 0

    /// Accounts for `s` holding `newCount` bytes instead of `oldCount`.
    private func hold(_ newCount: Int, replacing oldCount: Int, cpu: Int) throws {
        let next = heldBytes - oldCount + newCount
        guard next <= Self.maxHeldBytes else {
            throw TraceDatError.malformed("CPU \(cpu)'s data would take the CPUs' buffers past \(Self.maxHeldBytes >> 20) MiB at once (\(file.cpus.count) CPUs listed)")
        }
        heldBytes = next
    }

    public init(file: TraceDatFile, input: TraceDatInput) {
        self.file = file
        self.input = input
    }

    /// One CPU's data: pages read (or chunks decompressed) in order, each page decoded into a
    /// list of (timestamp, payload range) so the merge can take one event at a time.
    final class CPUStream {
        let cpu: Int
        let start: UInt64
        let end: UInt64
        var next: UInt64
        let compressed: Bool
        var chunksLeft: UInt32 = 0
        var chunk: [UInt8] = []
        var chunkPageOffset = 0
        var page: [UInt8]
        var events: [(ts: UInt64, start: Int, count: Int)] = []
        var eventIndex = 0
        var decoder: RingBufferPageDecoder

        init(cpu: Int, start: UInt64, size: UInt64, compressed: Bool, layout: RingBufferLayout, pageSize: Int, fileSize: UInt64) {
            self.cpu = cpu
            self.start = start
            // Compressed data: the recorded size counts the chunks after their 4-byte count
            // (trace-cmd 3.1.6 writes 109 for a count, one 8-byte chunk header and 101 bytes).
            // The extent was checked against the file; the count's 4 bytes may lie past it
            // only in a truncated file, which the chunk reads then report.
            self.end = compressed ? min(start + size + 4, fileSize) : start + size
            self.next = start
            self.compressed = compressed
            page = []
            decoder = RingBufferPageDecoder(layout: layout)
        }
    }

    /// Calls `body` for every event, in timestamp order.
    public func forEach(_ body: (TraceDatEvent) throws -> Void) throws {
        let f = file
        var streams: [CPUStream] = []
        for c in f.cpus where c.size > 0 {
            let s = CPUStream(cpu: c.cpu, start: c.offset, size: c.size, compressed: f.cpuDataCompressed,
                              layout: f.layout, pageSize: f.pageSize, fileSize: input.size)
            if s.compressed {
                var cur = TraceDatFileCursor(input: input, offset: s.next, bigEndian: f.bigEndian)
                s.chunksLeft = try cur.u32("CPU \(c.cpu) chunk count")
                s.next = cur.offset
            }
            streams.append(s)
        }
        // Min-heap of stream indices by (timestamp of the next event, cpu).
        var heap: [Int] = []
        func key(_ i: Int) -> (UInt64, Int) {
            let s = streams[i]
            return (s.events[s.eventIndex].ts, s.cpu)
        }
        func less(_ a: Int, _ b: Int) -> Bool { key(a) < key(b) }
        func siftDown(_ start: Int) {
            var i = start
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < heap.count, less(heap[l], heap[m]) { m = l }
                if r < heap.count, less(heap[r], heap[m]) { m = r }
                if m == i { return }
                heap.swapAt(i, m)
                i = m
            }
        }
        func siftUp(_ start: Int) {
            var i = start
            while i > 0 {
                let p = (i - 1) / 2
                if !less(heap[i], heap[p]) { return }
                heap.swapAt(i, p)
                i = p
            }
        }
        for i in streams.indices {
            guard try fill(streams[i]) else { continue }
            heap.append(i)
            siftUp(heap.count - 1)
        }
        let swap = f.bigEndian != (1.bigEndian == 1)
        var swapped: [UInt8] = []
        while let top = heap.first {
            let s = streams[top]
            let e = s.events[s.eventIndex]
            try (s.compressed ? s.chunk : s.page).withUnsafeBytes { raw in
                let payload = UnsafeRawBufferPointer(rebasing: raw[e.start..<e.start + e.count])
                let type = Self.commonType(payload, bigEndian: f.bigEndian)
                let format = f.formats[type]
                if format == nil { stats.unknownTypes += 1 }
                if swap, let format {
                    swapped.removeAll(keepingCapacity: true)
                    swapped.append(contentsOf: payload)
                    Self.swapFields(&swapped, format: format)
                    try swapped.withUnsafeBytes { p in
                        stats.events += 1
                        try body(TraceDatEvent(cpu: s.cpu, timestamp: convert(e.ts), payload: p, type: type))
                    }
                    return
                }
                stats.events += 1
                try body(TraceDatEvent(cpu: s.cpu, timestamp: convert(e.ts), payload: payload, type: type))
            }
            s.eventIndex += 1
            let more = s.eventIndex < s.events.count ? true : try fill(s)
            if more {
                siftDown(0)
            } else {
                heap.swapAt(0, heap.count - 1)
                heap.removeLast()
                if !heap.isEmpty { siftDown(0) }
            }
        }
        for s in streams { add(s.decoder.stats) }
    }

    private func add(_ p: RingBufferPageDecoder.Stats) {
        stats.pages.pages += p.pages
        stats.pages.events += p.events
        stats.pages.paddings += p.paddings
        stats.pages.timeExtends += p.timeExtends
        stats.pages.absoluteStamps += p.absoluteStamps
        stats.pages.pagesAfterLoss += p.pagesAfterLoss
        stats.pages.lostEvents += p.lostEvents
        stats.pages.corruptPages += p.corruptPages
    }

    /// trace-input.c: TSC2NSEC's `mul_u64_u32_shr(ts, mult, shift)`, then OFFSET. A result
    /// outside 64 bits saturates rather than wraps.
    @inline(__always)
    func convert(_ ts: UInt64) -> UInt64 {
        var t = ts
        if let c = file.tscToNs {
            let (high, low) = t.multipliedFullWidth(by: UInt64(c.mult))
            let shifted = c.shift == 0 ? low : (low >> c.shift) | (high << (64 - c.shift))
            t = high >> c.shift != 0 ? .max : shifted
        }
        let o = file.timestampOffset
        if o >= 0 { let (v, over) = t.addingReportingOverflow(UInt64(o)); return over ? .max : v }
        let m = o.magnitude
        return t >= m ? t - m : 0
    }

    /// Loads the next page with events into `s`; false when the CPU's data is exhausted.
    private func fill(_ s: CPUStream) throws -> Bool {
        let pageSize = file.pageSize
        while true {
            s.events.removeAll(keepingCapacity: true)
            s.eventIndex = 0
            if s.compressed {
                // Pages are decoded in place in the chunk; event offsets are the chunk's.
                if s.chunkPageOffset >= s.chunk.count {
                    guard try loadChunk(s) else { return false }
                    if s.chunk.isEmpty { continue }     // a chunk of no data: the next one
                }
                let start = s.chunkPageOffset
                let n = min(pageSize, s.chunk.count - start)
                s.chunkPageOffset += n
                s.chunk.withUnsafeBytes { raw in
                    let base = raw.baseAddress!
                    s.decoder.decode(page: UnsafeRawBufferPointer(rebasing: raw[start..<start + n])) { ts, payload in
                        s.events.append((ts, payload.baseAddress! - base, payload.count))
                    }
                }
                if !s.events.isEmpty { return true }
                continue
            } else {
                guard s.next < s.end else { return false }
                let n = Int(min(UInt64(pageSize), s.end - s.next))
                if s.page.count != n {
                    try hold(n, replacing: s.page.count, cpu: s.cpu)
                    s.page = [UInt8](repeating: 0, count: n)
                }
                try s.page.withUnsafeMutableBytes { try input.read(into: $0, at: s.next) }
                s.next += UInt64(n)
            }
            s.page.withUnsafeBytes { raw in
                let base = raw.baseAddress!
                s.decoder.decode(page: raw) { ts, payload in
                    s.events.append((ts, payload.baseAddress! - base, payload.count))
                }
            }
            if !s.events.isEmpty { return true }
        }
    }

    /// Decompresses the next chunk: csize(4) usize(4) data (trace-compress.c tracecmd_load_chunks_info).
    private func loadChunk(_ s: CPUStream) throws -> Bool {
        guard s.chunksLeft > 0, let algorithm = file.compression else { return false }
        s.chunksLeft -= 1
        var cur = TraceDatFileCursor(input: input, offset: s.next, bigEndian: file.bigEndian)
        let csize = try cur.u32("CPU \(s.cpu) chunk size")
        let usize = try cur.u32("CPU \(s.cpu) chunk uncompressed size")
        guard cur.offset <= s.end, UInt64(csize) <= s.end - cur.offset else {
            throw TraceDatError.malformed("CPU \(s.cpu): a \(csize)-byte chunk at offset \(s.next) runs past the CPU's data")
        }
        guard Int(usize) <= Self.maxChunkBytes else {
            throw TraceDatError.malformed("CPU \(s.cpu): a chunk at offset \(s.next) claims \(usize) bytes uncompressed")
        }
        try hold(Int(usize) + Int(csize), replacing: s.chunk.count, cpu: s.cpu)
        let raw = try input.read(at: cur.offset, count: Int(csize), what: "CPU \(s.cpu) chunk")
        do {
            s.chunk = try raw.withUnsafeBytes { try BlockDecompression.decompress($0, size: Int(usize), algorithm: algorithm) }
        } catch {
            throw TraceDatError.malformed("CPU \(s.cpu) chunk at offset \(s.next): \(error)")
        }
        try hold(s.chunk.count, replacing: Int(usize) + Int(csize), cpu: s.cpu)
        s.chunkPageOffset = 0
        s.next = cur.offset + UInt64(csize)
        return true
    }

    static func commonType(_ p: UnsafeRawBufferPointer, bigEndian: Bool) -> Int {
        guard p.count >= 2 else { return -1 }
        let v = p.loadUnaligned(as: UInt16.self)
        return Int(bigEndian != (1.bigEndian == 1) ? v.byteSwapped : v)
    }

    /// Byte-swaps the record's scalar fields (2, 4, 8 bytes; `__data_loc` words are 4-byte
    /// scalars too). Wider fields keep their bytes: char arrays need nothing. (An array of
    /// 2 or 4 narrower integers would be swapped as one number; no field kvmscope reads is one.)
    static func swapFields(_ bytes: inout [UInt8], format: TracepointFormat) {
        for f in format.fields where [2, 4, 8].contains(f.size) && f.offset + f.size <= bytes.count {
            bytes[f.offset..<f.offset + f.size].reverse()
        }
    }
}
