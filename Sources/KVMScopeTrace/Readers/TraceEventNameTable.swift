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
        let h = Self.hash(bytes, length)
        var s = Int(truncatingIfNeeded: h) & mask
        while true {
            let slot = slots[s]
            if slot.value < 0 { return -1 }
            if slot.hash == h, Int(slot.length) == length,
               memcmp(keys + Int(slot.offset), bytes, length) == 0 {
                return Int(slot.value)
            }
            s = (s + 1) & mask
        }
    }

    @inline(__always)
    static func hash(_ p: UnsafePointer<UInt8>, _ n: Int) -> UInt64 {
        var h: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(truncatingIfNeeded: n)
        var i = 0
        let raw = UnsafeRawPointer(p)
        while i + 8 <= n {
            h = (h ^ raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* 0xBF58_476D_1CE4_E5B9
            h ^= h >> 31
            i += 8
        }
        if i < n {
            var tail: UInt64 = 0
            var shift: UInt64 = 0
            while i < n { tail |= UInt64(p[i]) << shift; shift += 8; i += 1 }
            h = (h ^ tail) &* 0x94D0_49BB_1331_11EB
            h ^= h >> 29
        }
        return h
    }
}

import Foundation
