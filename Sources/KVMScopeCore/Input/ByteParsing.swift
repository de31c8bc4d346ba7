/// Number parsing over raw bytes, shared by `LineBytes` and the readers that scan pointers
/// directly on their hot path (the trace argument scanner). Public and `@inlinable` because
/// those readers live in other targets and call these once or more per line.
public enum ByteParsing {
    /// An unsigned decimal in `p[start..<end]`: value and the index after it; nil when there
    /// is no digit or it overflows 64 bits.
    @inlinable @inline(__always)
    public static func decimal(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> (UInt64, Int)? {
        var i = start
        var v: UInt64 = 0
        while i < end {
            let d = p[i] &- 0x30
            if d > 9 { break }
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(UInt64(d))
            if o1 || o2 { return nil }
            v = a
            i += 1
        }
        return i == start ? nil : (v, i)
    }

    /// Whether `c` is a hex digit of either case.
    @inlinable @inline(__always)
    public static func isHex(_ c: UInt8) -> Bool {
        (c &- 0x30) < 10 || ((c | 0x20) &- 0x61) < 6
    }

    /// A hex number (either case, no `0x`) in `p[start..<end]`: value and the index after it;
    /// nil when there is no digit or more than 16 follow (more than 64 bits: refused, not
    /// truncated, whatever the length of the run; at most 17 bytes are looked at).
    @inlinable @inline(__always)
    public static func hex(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> (UInt64, Int)? {
        var i = start
        var v: UInt64 = 0
        // Eight digits a load while eight bytes of the line are left: a pointer QEMU prints
        // (`0x55e95ec4f2c0`, 12 digits) or kvm_exit's `info1 0x%016llx` is one or two loads
        // instead of a loop with a branch per digit.
        while end - i >= 8, i - start < 16 {
            let run = hexRun(UnsafeRawPointer(p + i))
            v = v &<< UInt64(run.count &<< 2) | run.value
            i += run.count
            if run.count < 8 { return i == start ? nil : (v, i) }
        }
        // The rest byte by byte, and after 16 digits whether a 17th follows.
        while i < end, i - start <= 16 {
            let c = p[i]
            var d = c &- 0x30
            if d > 9 {
                d = (c | 0x20) &- 0x61
                if d > 5 { break }
                d += 10
            }
            v = v &<< 4 | UInt64(d)
            i += 1
        }
        return i == start || i - start > 16 ? nil : (v, i)
    }

    /// The run of hex digits (either case) at the start of the 8 bytes at `p`, 0 to 8 of them,
    /// and its value, without a branch per byte. All 8 bytes are loaded: the caller has them.
    @inlinable @inline(__always)
    public static func hexRun(_ p: UnsafeRawPointer) -> (count: Int, value: UInt64) {
        let word = UInt64(littleEndian: p.loadUnaligned(as: UInt64.self))
        let high: UInt64 = 0x8080_8080_8080_8080
        let lower = word | 0x2020_2020_2020_2020
        // Per byte, bit 7: '0'...'9' in `word`, 'a'...'f' in `lower` (so 'A'...'F' too). Sums
        // carry into the next byte only from a byte of 0x80 or more, itself no digit: the
        // first byte that is not a digit is always found right.
        let digit = (word &+ 0x5050_5050_5050_5050) & ~(word &+ 0x4646_4646_4646_4646)
        let letter = (lower &+ 0x1F1F_1F1F_1F1F_1F1F) & ~(lower &+ 0x1919_1919_1919_1919)
        let notHex = (~(digit | letter) | word) & high
        let count = notHex.trailingZeroBitCount >> 3
        guard count > 0 else { return (0, 0) }
        // A digit's value is its low nibble, plus 9 for a letter (bit 6 set); the digits
        // move to the top bytes, the bytes shifted in are leading zeros.
        let nibbles = ((lower & 0x0F0F_0F0F_0F0F_0F0F) &+ ((lower >> 6) & 0x0101_0101_0101_0101) &* 9)
            &<< UInt64((8 - count) << 3)
        // The first digit is the low byte: pairs of nibbles into bytes, bytes into 16 bits, into 32.
        let bytes = ((nibbles << 4) | (nibbles >> 8)) & 0x00FF_00FF_00FF_00FF
        let halves = ((bytes << 8) | (bytes >> 16)) & 0x0000_FFFF_0000_FFFF
        return (count, ((halves << 16) | (halves >> 32)) & 0xFFFF_FFFF)
    }
}
