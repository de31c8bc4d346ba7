import Foundation

/// A borrowed line of bytes with the small set of scanning operations every text reader
/// needs: find a literal, read a decimal or hex number, take a field. Nothing here allocates
/// except `string(_:)`, which readers call only for the few fields they keep.
public struct LineBytes {
    public let bytes: UnsafeBufferPointer<UInt8>
    @inlinable public init(_ bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    @inlinable public var count: Int { bytes.count }
    @inlinable public var isEmpty: Bool { bytes.isEmpty }
    @inlinable public subscript(i: Int) -> UInt8 { bytes[i] }

    /// Index of the first occurrence of `needle` at or after `from`, or nil.
    @inlinable
    public func find(_ needle: StaticString, from: Int = 0) -> Int? {
        guard from <= count else { return nil }
        let n = needle.utf8CodeUnitCount
        if n == 0 { return from }
        guard count - from >= n, let base = bytes.baseAddress else { return nil }
        guard let hit = byteSearch(base + from, count - from, needle.utf8Start, n) else { return nil }
        return hit - base
    }

    /// Index of the first occurrence of the byte string `needle` at or after `from`.
    public func find(bytes needle: [UInt8], from: Int = 0) -> Int? {
        guard from <= count, !needle.isEmpty, count - from >= needle.count,
              let base = bytes.baseAddress else { return nil }
        return needle.withUnsafeBytes { n -> Int? in
            let p = n.baseAddress!.assumingMemoryBound(to: UInt8.self)
            guard let hit = byteSearch(base + from, count - from, p, n.count) else { return nil }
            return hit - base
        }
    }

    /// Index of the first `byte` at or after `from`.
    @inlinable
    public func find(byte: UInt8, from: Int = 0) -> Int? {
        guard from < count, let base = bytes.baseAddress,
              let hit = memchr(base + from, Int32(byte), count - from) else { return nil }
        return UnsafeRawPointer(hit).assumingMemoryBound(to: UInt8.self) - base
    }

    /// Whether `literal` stands at `at`. Compares eight bytes at a time inline: readers call
    /// this several times per line with short literals, where a memcmp call costs more than
    /// the comparison. Always inlined, so that the literal's length is a constant.
    @inlinable @inline(__always)
    public func matches(_ literal: StaticString, at: Int) -> Bool {
        let n = literal.utf8CodeUnitCount
        guard at >= 0, count - at >= n, let base = bytes.baseAddress else { return false }
        let a = UnsafeRawPointer(base + at)
        let b = UnsafeRawPointer(literal.utf8Start)
        var i = 0
        while i + 8 <= n {
            if a.loadUnaligned(fromByteOffset: i, as: UInt64.self) != b.loadUnaligned(fromByteOffset: i, as: UInt64.self) {
                return false
            }
            i += 8
        }
        while i < n {
            if a.load(fromByteOffset: i, as: UInt8.self) != b.load(fromByteOffset: i, as: UInt8.self) { return false }
            i += 1
        }
        return true
    }

    @inlinable public func hasPrefix(_ literal: StaticString) -> Bool { matches(literal, at: 0) }

    /// Index after the spaces and tabs starting at `at`.
    @inlinable
    public func skipBlanks(_ at: Int) -> Int {
        var i = at
        while i < count, bytes[i] == 0x20 || bytes[i] == 0x09 { i += 1 }
        return i
    }

    /// An unsigned decimal number at `at` (no sign, no blanks): value and the index after it.
    /// Nil when there is no digit or the number overflows.
    @inlinable
    public func decimal(at: Int) -> (value: UInt64, end: Int)? {
        guard at >= 0, at < count, let base = bytes.baseAddress else { return nil }
        guard let (v, end) = ByteParsing.decimal(base, at, count) else { return nil }
        return (v, end)
    }

    /// A signed decimal (`-5`, `+3`, `42`) at `at`.
    @inlinable
    public func signedDecimal(at: Int) -> (value: Int64, end: Int)? {
        var i = at
        var negative = false
        if i < count, bytes[i] == 0x2D || bytes[i] == 0x2B { negative = bytes[i] == 0x2D; i += 1 }
        guard let (u, end) = decimal(at: i), u <= UInt64(Int64.max) else { return nil }
        return (negative ? -Int64(u) : Int64(u), end)
    }

    /// A hexadecimal number at `at`, with or without `0x`. Up to 16 digits; nil when there is
    /// none or more than 16 follow (more than 64 bits). Eight digits a load (ByteParsing.hex):
    /// kvm_exit prints five 16- and 8-digit fields a line, which the byte loop read one by one.
    @inlinable
    public func hex(at: Int) -> (value: UInt64, end: Int)? {
        guard at >= 0, let base = bytes.baseAddress else { return nil }
        var i = at
        if matches("0x", at: i) || matches("0X", at: i) { i += 2 }
        guard i < count else { return nil }
        guard let (v, end) = ByteParsing.hex(base, i, count) else { return nil }
        return (v, end)
    }

    /// A decimal with a fractional part (`439.490934`) as seconds, at `at`.
    @inlinable
    public func seconds(at: Int) -> (value: Double, end: Int)? {
        guard let (whole, afterWhole) = decimal(at: at) else { return nil }
        guard afterWhole < count, bytes[afterWhole] == 0x2E else { return (Double(whole), afterWhole) }
        var i = afterWhole + 1
        var frac: UInt64 = 0
        var scale: Double = 1
        while i < count, bytes[i] >= 0x30, bytes[i] <= 0x39, scale < 1e18 {
            frac = frac * 10 + UInt64(bytes[i] - 0x30)
            scale *= 10
            i += 1
        }
        while i < count, bytes[i] >= 0x30, bytes[i] <= 0x39 { i += 1 }
        return (Double(whole) + Double(frac) / scale, i)
    }

    /// A timestamp like `1404.389448` (µs) or `1404.389448123` (ns) as integer nanoseconds, at
    /// `at`: exact, unlike `seconds`, so differences of timestamps carry no rounding error.
    /// Digits past the ninth decimal are ignored.
    @inlinable
    public func nanoseconds(at: Int) -> (value: UInt64, end: Int)? {
        guard let (whole, afterWhole) = decimal(at: at), whole < 18_000_000_000 else { return nil }
        var ns = whole &* 1_000_000_000
        guard afterWhole < count, bytes[afterWhole] == 0x2E else { return (ns, afterWhole) }
        var i = afterWhole + 1
        var scale: UInt64 = 100_000_000
        while i < count {
            let d = bytes[i] &- 0x30
            if d > 9 { break }
            ns &+= UInt64(d) &* scale
            scale /= 10
            i += 1
        }
        return (ns, i)
    }

    /// The bytes from `at` up to (not including) the next space, tab or `stop` byte.
    @inlinable
    public func token(at: Int, stop: UInt8 = 0x20) -> Range<Int> {
        var i = at
        while i < count, bytes[i] != 0x20, bytes[i] != 0x09, bytes[i] != stop { i += 1 }
        return at..<i
    }

    /// Decodes a range as UTF-8 (invalid bytes become U+FFFD, never a crash).
    public func string(_ range: Range<Int>) -> String {
        let r = range.clamped(to: 0..<count)
        return String(decoding: UnsafeBufferPointer(rebasing: bytes[r]), as: UTF8.self)
    }

    public func string(from: Int) -> String { string(from..<count) }
    public var string: String { string(0..<count) }

    /// Index of the first `byte` inside `range` (clamped to the line): a bounded memchr, so a
    /// reader can look for a delimiter near the start of a long line without scanning all of it.
    @inlinable
    public func find(byte: UInt8, in range: Range<Int>) -> Int? {
        let lo = max(0, range.lowerBound), hi = min(count, range.upperBound)
        guard lo < hi, let base = bytes.baseAddress,
              let hit = memchr(base + lo, Int32(byte), hi - lo) else { return nil }
        return UnsafeRawPointer(hit).assumingMemoryBound(to: UInt8.self) - base
    }

    /// A decimal with an optional fraction as a fixed-point integer scaled by 10^`fractionDigits`:
    /// `439.490934` with 6 digits is 439490934. Extra fraction digits are dropped, missing ones
    /// padded, so printk's microsecond stamps stay exact (a Double would not round-trip).
    @inlinable
    public func fixedPoint(at: Int, fractionDigits: Int) -> (value: Int64, end: Int)? {
        var scale: Int64 = 1
        for _ in 0..<min(fractionDigits, 18) { scale *= 10 }
        guard let (whole, afterWhole) = decimal(at: at), whole < UInt64(Int64.max / scale) else { return nil }
        var value = Int64(whole) * scale
        var i = afterWhole
        guard i < count, bytes[i] == 0x2E || bytes[i] == 0x2C else { return (value, i) }   // '.' or ','
        i += 1
        var digits = 0
        var frac: Int64 = 0
        while i < count, bytes[i] >= 0x30, bytes[i] <= 0x39 {
            if digits < fractionDigits { frac = frac * 10 + Int64(bytes[i] - 0x30); digits += 1 }
            i += 1
        }
        while digits < fractionDigits { frac *= 10; digits += 1 }
        value += frac
        return (value, i)
    }

    /// The identifier (`[A-Za-z0-9_]`) starting at `at`; empty when there is none.
    @inlinable
    public func identifier(at: Int) -> Range<Int> {
        var i = at
        while i < count {
            let c = bytes[i]
            let isIdent = (c >= 0x61 && c <= 0x7A) || (c >= 0x41 && c <= 0x5A) || (c >= 0x30 && c <= 0x39) || c == 0x5F
            if !isIdent { break }
            i += 1
        }
        return at..<i
    }

    /// Whether `at` holds an ASCII digit.
    @inlinable
    public func isDigit(at: Int) -> Bool {
        at >= 0 && at < count && bytes[at] &- 0x30 <= 9
    }

    /// A 64-bit hash of a range, for recognising repeated lines without keeping them: eight
    /// bytes per step (multiply-rotate) and a murmur3 finaliser. Not cryptographic; good enough
    /// that two different lines agree with probability about 2^-64.
    public func hash(_ range: Range<Int>, seed: UInt64 = 0xcbf29ce484222325) -> UInt64 {
        let r = range.clamped(to: 0..<count)
        guard let base = bytes.baseAddress else { return seed }
        let p = UnsafeRawPointer(base + r.lowerBound)
        let n = r.count
        var h = seed ^ (UInt64(n) &* 0x9E37_79B9_7F4A_7C15)
        var i = 0
        while i + 8 <= n {
            let w = p.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            h = ((h ^ w) &* 0x87C3_7B91_1142_53D5)
            h = (h << 31) | (h >> 33)
            i += 8
        }
        var tail: UInt64 = 0
        var shift: UInt64 = 0
        while i < n {
            tail |= UInt64(p.load(fromByteOffset: i, as: UInt8.self)) << shift
            shift += 8
            i += 1
        }
        h = (h ^ tail) &* 0x4CF5_AD43_2745_937F
        h ^= h >> 33; h = h &* 0xFF51_AFD7_ED55_8CCD
        h ^= h >> 33; h = h &* 0xC4CE_B9FE_1A85_EC53
        h ^= h >> 33
        return h
    }

    /// True when the line contains bytes no text log has (NUL, most control bytes):
    /// binary junk is skipped and counted by readers, not parsed. Eight bytes a test (the
    /// `hasless` word trick, Bit Twiddling Hacks: exact about whether a byte below 0x20 is
    /// there): every guest, host and drops line is asked, and text has none, or a tab or ESC,
    /// which the byte check of that word lets pass.
    public var looksBinary: Bool {
        guard let base = bytes.baseAddress else { return false }
        let n = bytes.count
        var i = 0
        while n - i >= 8 {
            let w = UnsafeRawPointer(base + i).loadUnaligned(as: UInt64.self)
            if (w &- 0x2020_2020_2020_2020) & ~w & 0x8080_8080_8080_8080 != 0 {
                for k in i..<i + 8 where Self.isBinaryByte(base[k]) { return true }
            }
            i += 8
        }
        while i < n {
            if Self.isBinaryByte(base[i]) { return true }
            i += 1
        }
        return false
    }

    @inline(__always)
    static func isBinaryByte(_ c: UInt8) -> Bool { c < 0x20 && c != 0x09 && c != 0x1B }
}

/// First occurrence of `needle` in `hay`: memchr to the needle's first byte, memcmp for the
/// rest. (glibc's memmem is not exported to Swift; this is as fast for short needles.)
@inlinable
public func byteSearch(_ hay: UnsafePointer<UInt8>, _ hayCount: Int,
                _ needle: UnsafePointer<UInt8>, _ needleCount: Int) -> UnsafePointer<UInt8>? {
    guard needleCount > 0, hayCount >= needleCount else { return nil }
    let first = Int32(needle[0])
    var p = hay
    let last = hay + (hayCount - needleCount)   // last possible start
    while p <= last {
        guard let hit = memchr(p, first, last - p + 1) else { return nil }
        let q = UnsafeRawPointer(hit).assumingMemoryBound(to: UInt8.self)
        if needleCount == 1 || memcmp(q + 1, needle + 1, needleCount - 1) == 0 { return q }
        p = q + 1
    }
    return nil
}
