/// Finds an event name given as raw bytes of a line, without making a String: an open-addressing
/// hash table over the names' bytes (a word-at-a-time multiplicative hash, then one memcmp).
/// Works the same for the handful of events an analysis reads and for QEMU's ~5000.
final class TraceEventNameTable {
    private struct Slot {
        var hash: UInt64 = 0
        var offset: Int32 = 0
        var length: Int32 = 0
        var value: Int32 = -1          // -1: empty
    }

    private let keys: UnsafeMutablePointer<UInt8>
    private let slots: UnsafeMutablePointer<Slot>
    private let mask: Int
    let count: Int

    /// `names[i]` maps to `i`.
    init(_ names: [String]) {
        let total = names.reduce(0) { $0 + $1.utf8.count }
        keys = .allocate(capacity: max(total, 1))
        var capacity = 16
        while capacity < names.count * 2 { capacity <<= 1 }
        slots = .allocate(capacity: capacity)
        slots.initialize(repeating: Slot(), count: capacity)
        mask = capacity - 1
        count = names.count
        var offset = 0
        for (i, name) in names.enumerated() {
            let bytes = Array(name.utf8)
            bytes.withUnsafeBufferPointer { b in
                if let base = b.baseAddress { (keys + offset).update(from: base, count: b.count) }
            }
            let h = Self.hash(UnsafePointer(keys + offset), bytes.count)
            var s = Int(truncatingIfNeeded: h) & mask
            while slots[s].value >= 0 { s = (s + 1) & mask }
            slots[s] = Slot(hash: h, offset: Int32(offset), length: Int32(bytes.count), value: Int32(i))
            offset += bytes.count
        }
    }

    deinit {
        keys.deallocate()
        slots.deallocate()
    }

    /// The index of the name `bytes[0..<length]`, or -1.
    @inline(__always)
    func lookup(_ bytes: UnsafePointer<UInt8>, _ length: Int) -> Int {
        lookup(bytes, length, hash: Self.hash(bytes, length))
    }

    /// The same, with `hash` already computed (by `scanName` on the line).
    @inline(__always)
    func lookup(_ bytes: UnsafePointer<UInt8>, _ length: Int, hash h: UInt64) -> Int {
        var s = Int(truncatingIfNeeded: h) & mask
        while true {
            let slot = slots[s]
            if slot.value < 0 { return -1 }
            if slot.hash == h, Int(slot.length) == length,
               Self.equal(keys + Int(slot.offset), bytes, length) {
                return Int(slot.value)
            }
            s = (s + 1) & mask
        }
    }

    /// memcmp without the call for the short names of QEMU's events.
    @inline(__always)
    static func equal(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>, _ n: Int) -> Bool {
        let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
        var i = 0
        while i + 8 <= n {
            guard ra.loadUnaligned(fromByteOffset: i, as: UInt64.self) == rb.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            else { return false }
            i += 8
        }
        while i < n {
            guard a[i] == b[i] else { return false }
            i += 1
        }
        return true
    }

    // The hash: 8-byte words, then the 0–7 remaining bytes as one zero-padded word, then the
    // length. `hash` and `scanName` compute the same function; only the second finds the end.
    @inline(__always) static func mixWord(_ h: UInt64, _ w: UInt64) -> UInt64 {
        let m = (h ^ w) &* 0xBF58_476D_1CE4_E5B9
        return m ^ (m >> 31)
    }

    @inline(__always) static func mixTail(_ h: UInt64, _ w: UInt64) -> UInt64 {
        let m = (h ^ w) &* 0x94D0_49BB_1331_11EB
        return m ^ (m >> 29)
    }

    @inline(__always) static func finish(_ h: UInt64, _ n: Int) -> UInt64 {
        let m = (h ^ UInt64(truncatingIfNeeded: n)) &* 0x9E37_79B9_7F4A_7C15
        return m ^ (m >> 32)
    }

    static let seed: UInt64 = 0x2545_F491_4F6C_DD1D

    @inline(__always)
    static func hash(_ p: UnsafePointer<UInt8>, _ n: Int) -> UInt64 {
        var h = seed
        var i = 0
        let raw = UnsafeRawPointer(p)
        while i + 8 <= n {
            h = mixWord(h, raw.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            i += 8
        }
        if i < n {
            var tail: UInt64 = 0
            var shift: UInt64 = 0
            while i < n { tail |= UInt64(p[i]) << shift; shift += 8; i += 1 }
            h = mixTail(h, tail)
        }
        return finish(h, n)
    }

    /// The candidate name at `p[start..<n]`: up to the first space or the end of the line,
    /// and its `hash`, in one pass of 8-byte words (a space found with the zero-byte trick on
    /// `word ^ 0x20…20`; the lowest match is exact). Says nothing about whether the bytes are
    /// identifier characters: a name found in the table is one (the catalog's names are).
    @inline(__always)
    static func scanName(_ p: UnsafePointer<UInt8>, _ start: Int, _ n: Int) -> (end: Int, hash: UInt64) {
        var h = seed
        var i = start
        let raw = UnsafeRawPointer(p)
        while i + 8 <= n {
            let w = raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            let x = w ^ 0x2020_2020_2020_2020
            let z = (x &- 0x0101_0101_0101_0101) & ~x & 0x8080_8080_8080_8080
            if z != 0 {
                let k = z.trailingZeroBitCount >> 3
                if k > 0 { h = mixTail(h, w & ((1 << UInt64(k << 3)) &- 1)) }
                return (i + k, finish(h, i + k - start))
            }
            h = mixWord(h, w)
            i += 8
        }
        let from = i
        var tail: UInt64 = 0
        var shift: UInt64 = 0
        while i < n, p[i] != 0x20 { tail |= UInt64(p[i]) << shift; shift += 8; i += 1 }
        if i > from { h = mixTail(h, tail) }
        return (i, finish(h, i - start))
    }
}
