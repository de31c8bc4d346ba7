/// The log backend's `TID@SECONDS.MICROS:` prefix read eight digits at a time.
///
/// QEMU's generated log-backend code prints it as `"%d@%zu.%06zu:"` (qemu_get_thread_id(),
/// tv_sec, tv_usec: scripts/tracetool/backend/log.py), so a real prefix is a thread id of a
/// few digits, ten digits of seconds and six of microseconds. Reading those byte by byte was a
/// tenth of `trace`'s instructions on a trace of nothing but events it decodes. This path
/// handles prefixes whose runs of digits each fit in the bytes it loads and returns nil for
/// anything else (a run too long, a line too short, another style), which `parse` then reads
/// the general way: both give the same result wherever this one answers.
extension TraceLinePrefix {
    @inline(__always)
    static func parseLogTimestamp(_ p: UnsafePointer<UInt8>, _ n: Int) -> Parsed? {
        // Three loads of 8 bytes from the start, the fraction's at most at 1 + 7 + 1 + 15 + 1.
        guard n >= 33 else { return nil }
        let raw = UnsafeRawPointer(p)
        // Thread id: 1 to 7 digits, then '@'.
        let tid = digitRun(raw)
        guard tid.count > 0, tid.count < 8, p[tid.count] == 0x40 else { return nil }
        // Seconds: 1 to 15 digits, then '.'.
        var i = tid.count + 1
        let high = digitRun(raw + i)
        var seconds = high.value
        var secondDigits = high.count
        if high.count == 8 {
            let low = digitRun(raw + i + 8)
            guard low.count < 8 else { return nil }
            seconds = seconds &* powersOfTen[low.count] &+ low.value
            secondDigits += low.count
        }
        guard secondDigits > 0 else { return nil }
        i += secondDigits
        guard p[i] == 0x2E else { return nil }
        // Fraction: 1 to 7 digits, then ':'.
        i += 1
        let fraction = digitRun(raw + i)
        guard fraction.count > 0, fraction.count < 8, p[i + fraction.count] == 0x3A else { return nil }
        // Seconds of at most 9 223 372 035 times 1e9, plus less than 1e9, fit Int64; the
        // general path decides about larger ones (a bad timestamp, or not).
        guard seconds < 9_223_372_036 else { return nil }
        let ns = Int64(seconds) * 1_000_000_000 + Int64(fraction.value * powersOfTen[9 - fraction.count])
        return Parsed(style: .logTimestamp, timestamp: TraceTimestamp(nanoseconds: ns, clock: .wall),
                      thread: Int64(tid.value), nameStart: i + fraction.count + 1)
    }

    static let powersOfTen: [UInt64] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000,
                                        100_000_000, 1_000_000_000]

    /// The run of ASCII digits at the start of the 8 bytes at `p` (0 to 8 of them) and its value.
    @inline(__always)
    static func digitRun(_ p: UnsafeRawPointer) -> (count: Int, value: UInt64) {
        let word = UInt64(littleEndian: p.loadUnaligned(as: UInt64.self))
        // A byte's high bit set in `notDigit` when it is below '0' or above '9'.
        let notDigit = ((word &+ 0x4646_4646_4646_4646) | (word &- 0x3030_3030_3030_3030)) & 0x8080_8080_8080_8080
        let count = notDigit.trailingZeroBitCount >> 3
        guard count > 0 else { return (0, 0) }
        // The digits moved to the top bytes; the bytes shifted in count as leading zeros.
        // (A borrow from subtracting '0' starts only at a byte past the digits, and only
        // carries upward: the shift drops it.)
        let digits = (word &- 0x3030_3030_3030_3030) << UInt64((8 - count) << 3)
        return (count, eightDigits(digits))
    }

    /// The value of 8 bytes holding one decimal digit each (0...9), the first in the low byte
    /// (Lemire, "Fast integer parsing": pairs, then fours, then the eight).
    @inline(__always)
    static func eightDigits(_ v: UInt64) -> UInt64 {
        let pairs = (v &* 10) &+ (v >> 8)
        let mask: UInt64 = 0x0000_00FF_0000_00FF
        return (((pairs & mask) &* 0x000F_4240_0000_0064) &+ (((pairs >> 16) & mask) &* 0x0000_2710_0000_0001)) >> 32
    }
}
