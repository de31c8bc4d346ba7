/// Decodes the pages `per_cpu/cpuN/trace_pipe_raw` returns: the kernel's ring-buffer
/// sub-buffers, byte for byte (kernel/trace/ring_buffer.c). A page is
///
///     u64 timestamp          time of the first event, in trace-clock units (ns for `local`)
///     local_t commit         bytes of event data; bit 31 = events were lost before this page,
///                            bit 30 = their count is stored as a long right after the data
///     data[]                 events
///
/// and each event starts with a 32-bit header: `type_len` (low 5 bits on little-endian) and
/// `time_delta` (27 bits), then `array[]`:
///
///     type_len 1...28   data of type_len*4 bytes at array[0]
///     type_len 0        data length in array[0] (it counts itself), data at array[1]
///     29 padding        time_delta 0: the rest of the page is empty; else a discarded
///                       event of array[0]+4 bytes (its delta is not applied, like the kernel's reader)
///     30 time extend    delta = array[0] << 27 | time_delta, added to the clock
///     31 time stamp     absolute time = array[0] << 27 | time_delta (59 bits; upper bits
///                       taken from the current time, as rb_fix_abs_ts does)
///
/// Every length is checked against the page: a corrupt page is counted and abandoned,
/// never read past its end.
public struct RingBufferPageDecoder {
    public struct Stats: Sendable, Equatable {
        public var pages = 0
        public var events = 0
        public var paddings = 0
        public var timeExtends = 0
        public var absoluteStamps = 0
        /// Pages flagged "events were lost before this page" (RB_MISSED_EVENTS).
        public var pagesAfterLoss = 0
        /// Events lost, where the kernel stored the count (RB_MISSED_STORED).
        public var lostEvents: UInt64 = 0
        public var corruptPages = 0
        public init() {}
    }

    public let layout: RingBufferLayout
    public private(set) var stats = Stats()

    static let missedEvents: UInt64 = 1 << 31
    static let missedStored: UInt64 = 1 << 30
    /// libtraceevent's mask for the length part of `commit`.
    static let commitLengthMask: UInt64 = (1 << 27) - 1

    public init(layout: RingBufferLayout) { self.layout = layout }

    /// Calls `body(timestamp, payload)` for every data event of one page. The payload is the
    /// event's record (starting with `common_type`), valid only during the call.
    public mutating func decode(page: UnsafeRawBufferPointer,
                                _ body: (UInt64, UnsafeRawBufferPointer) throws -> Void) rethrows {
        let l = layout
        guard page.count >= l.dataOffset, let base = page.baseAddress else {
            if !page.isEmpty { stats.corruptPages += 1 }
            return
        }
        stats.pages += 1
        let swap = l.bigEndian != (1.bigEndian == 1)
        @inline(__always) func u32(_ p: UnsafeRawPointer, _ at: Int) -> UInt32 {
            let v = p.loadUnaligned(fromByteOffset: at, as: UInt32.self)
            return swap ? v.byteSwapped : v
        }
        @inline(__always) func u64(_ p: UnsafeRawPointer, _ at: Int) -> UInt64 {
            let v = p.loadUnaligned(fromByteOffset: at, as: UInt64.self)
            return swap ? v.byteSwapped : v
        }
        var clock = u64(base, l.timestampOffset)
        let commitRaw: UInt64 = l.commitSize == 8 ? u64(base, l.commitOffset) : UInt64(u32(base, l.commitOffset))
        let length = Int(commitRaw & Self.commitLengthMask)
        let data = base + l.dataOffset
        let available = page.count - l.dataOffset
        guard length <= available else { stats.corruptPages += 1; return }
        if commitRaw & Self.missedEvents != 0 {
            stats.pagesAfterLoss += 1
            let wordSize = l.commitSize   // sizeof(long) == sizeof(local_t)
            if commitRaw & Self.missedStored != 0, length + wordSize <= available {
                stats.lostEvents += wordSize == 8 ? u64(data, length) : UInt64(u32(data, length))
            }
        }

        var i = 0
        while i + 4 <= length {
            let header = u32(data, i)
            let typeLen = l.bigEndian ? header >> 27 : header & 0x1F
            let delta = UInt64(l.bigEndian ? header & 0x07FF_FFFF : header >> 5)
            switch typeLen {
            case l.paddingType:
                if delta == 0 { return }                              // rest of page unused
                guard i + 8 <= length else { stats.corruptPages += 1; return }
                let size = Int(u32(data, i + 4))
                guard size >= 4, i + 4 + size <= length else { stats.corruptPages += 1; return }
                stats.paddings += 1
                i += 4 + size
            case l.timeExtendType:
                guard i + 8 <= length else { stats.corruptPages += 1; return }
                let high = UInt64(u32(data, i + 4))
                clock &+= high << 27 | delta
                stats.timeExtends += 1
                i += 8
            case l.timeStampType:
                guard i + 8 <= length else { stats.corruptPages += 1; return }
                let high = UInt64(u32(data, i + 4))
                clock = Self.fixAbsolute(high << 27 | delta, current: clock)
                stats.absoluteStamps += 1
                i += 8
            case 0:
                guard i + 8 <= length else { stats.corruptPages += 1; return }
                let size = Int(u32(data, i + 4))
                guard size >= 4, i + 4 + size <= length else { stats.corruptPages += 1; return }
                clock &+= delta
                stats.events += 1
                try body(clock, UnsafeRawBufferPointer(start: data + i + 8, count: size - 4))
                i += 4 + ((size + 3) & ~3)
            default:
                guard typeLen <= l.dataMaxTypeLen else { stats.corruptPages += 1; return }
                let size = Int(typeLen) * 4
                guard i + 4 + size <= length else { stats.corruptPages += 1; return }
                clock &+= delta
                stats.events += 1
                try body(clock, UnsafeRawBufferPointer(start: data + i + 4, count: size))
                i += 4 + size
            }
        }
    }

    /// The absolute stamp holds 59 bits; the top 5 come from the time before it
    /// (ring_buffer.c: rb_fix_abs_ts).
    static func fixAbsolute(_ abs: UInt64, current: UInt64) -> UInt64 {
        let msb: UInt64 = 0xF8 << 56
        guard current & msb != 0 else { return abs }
        var v = abs | (current & msb)
        if v < current { v &+= 1 << 59 }
        return v
    }
}
