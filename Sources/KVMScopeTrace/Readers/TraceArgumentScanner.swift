import Foundation

/// Reads an event's arguments back out of the text QEMU printed with the event's own format:
/// the format `vdev %p req %p ret %d` becomes the steps "literal `vdev `, pointer, literal
/// ` req `, pointer, literal ` ret `, signed decimal". Scanning is byte-level and allocation-free
/// except for `%s` arguments. This is what makes every one of QEMU's events readable without a
/// hand-written pattern per event.
final class TraceArgumentScanner {
    private struct Step {
        var style: UInt8          // 255: literal; else TraceConversion.Style.rawValue
        var argument: Int8
        var alternate: Bool
        var leftJustified: Bool
        var offset: Int32         // literal bytes in `literals`
        var length: Int32
        /// How the argument's C type normalises a scanned integer (as TraceEvent.setInteger):
        /// 0 keep, 1 sign-extend from 64 - `shift` bits, 2 truncate to them.
        var normalize: UInt8 = 0
        var shift: UInt8 = 0
    }

    let definition: TraceEventDefinition
    /// The next definition of the same name to try when this one does not match (unowned:
    /// the decoder keeps every scanner alive).
    var next: Unmanaged<TraceArgumentScanner>?
    private let steps: UnsafeMutablePointer<Step>
    private let stepCount: Int
    private let literals: UnsafeMutablePointer<UInt8>

    /// Nil when the definition's format cannot be scanned back (see TraceEventDefinition.pieces).
    init?(_ definition: TraceEventDefinition) {
        guard let pieces = definition.pieces else { return nil }
        self.definition = definition
        var built: [Step] = []
        var bytes: [UInt8] = []
        for piece in pieces {
            switch piece {
            case let .literal(l):
                built.append(Step(style: 255, argument: -1, alternate: false, leftJustified: false,
                                  offset: Int32(bytes.count), length: Int32(l.count)))
                bytes += l
            case let .conversion(c):
                var step = Step(style: c.style.rawValue, argument: Int8(c.argument), alternate: c.alternate,
                                leftJustified: c.leftJustified, offset: 0, length: 0)
                let a = definition.arguments[c.argument]
                if a.bitWidth < 64 {
                    step.shift = UInt8(64 - a.bitWidth)
                    step.normalize = a.kind == .signed ? 1 : a.kind == .unsigned ? 2 : 0
                }
                built.append(step)
            }
        }
        stepCount = built.count
        steps = .allocate(capacity: max(built.count, 1))
        steps.initialize(from: built, count: built.count)
        // 8 zero bytes after the last literal: `literalMatches` loads 8 bytes of any literal.
        literals = .allocate(capacity: bytes.count + 8)
        literals.initialize(from: bytes + [UInt8](repeating: 0, count: 8), count: bytes.count + 8)
    }

    deinit {
        steps.deallocate()
        literals.deallocate()
    }

    /// Scans `p[start..<end]` (the text after `name `) into `event`. False when the text does
    /// not have this format's shape (another signature of the same event, or a damaged line).
    func scan(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int, into event: inout TraceEvent) -> Bool {
        var i = start
        var s = 0
        while s < stepCount {
            let step = steps[s]
            if step.style == 255 {
                let n = Int(step.length)
                guard end - i >= n, Self.literalMatches(p + i, end - i, literals + Int(step.offset), n) else { return false }
                i += n
                s += 1
                continue
            }
            let arg = Int(step.argument)
            switch TraceConversion.Style(rawValue: step.style)! {
            case .signedDecimal:
                while i < end, p[i] == 0x20 { i += 1 }          // width padding
                var negative = false
                if i < end, p[i] == 0x2D || p[i] == 0x2B { negative = p[i] == 0x2D; i += 1 }
                guard let (v, e) = Self.decimal(p, i, end) else { return false }
                i = e
                event.bits[arg] = Self.normalized(negative ? 0 &- v : v, step)
            case .unsignedDecimal:
                while i < end, p[i] == 0x20 { i += 1 }
                var negative = false                              // `%u` of a negative int never prints `-`,
                if i < end, p[i] == 0x2D { negative = true; i += 1 }  // but `%d` of an unsigned one can
                guard let (v, e) = Self.decimal(p, i, end) else { return false }
                i = e
                event.bits[arg] = Self.normalized(negative ? 0 &- v : v, step)
            case .hex:
                while i < end, p[i] == 0x20 { i += 1 }
                // `%#x` prints `0x` (never for zero); plain `%x` has it in the literal before.
                if step.alternate, end - i >= 3, p[i] == 0x30, p[i + 1] | 0x20 == 0x78, Self.isHex(p[i + 2]) {
                    i += 2
                }
                guard let (v, e) = Self.hex(p, i, end) else { return false }
                i = e
                event.bits[arg] = Self.normalized(v, step)
            case .octal:
                while i < end, p[i] == 0x20 { i += 1 }
                var v: UInt64 = 0
                let from = i
                while i < end, p[i] >= 0x30, p[i] <= 0x37 {
                    guard v >> 61 == 0 else { return false }
                    v = v << 3 | UInt64(p[i] - 0x30)
                    i += 1
                }
                guard i > from else { return false }
                event.bits[arg] = Self.normalized(v, step)
            case .pointer:
                // glibc prints NULL as `(nil)`; SystemTap always as `0x` + 16 digits.
                if end - i >= 5, p[i] == 0x28, memcmp(p + i, "(nil)", 5) == 0 {
                    i += 5
                    event.bits[arg] = 0
                } else {
                    guard end - i >= 3, p[i] == 0x30, p[i + 1] == 0x78,
                          let (v, e) = Self.hex(p, i + 2, end) else { return false }
                    i = e
                    event.bits[arg] = v
                }
            case .character:
                guard i < end else { return false }
                event.bits[arg] = Self.normalized(UInt64(p[i]), step)
                i += 1
            case .string:
                var stop = end
                if s + 1 < stepCount {
                    let next = steps[s + 1]
                    if next.style == 255 {
                        guard let hit = byteSearch(p + i, end - i, literals + Int(next.offset), Int(next.length))
                        else { return false }
                        stop = hit - p
                    } else {
                        stop = i
                        while stop < end, p[stop] != 0x20 { stop += 1 }
                    }
                }
                let slot = definition.stringSlots[arg]
                if slot >= 0 {
                    while event.stringBytes.count <= slot { event.stringBytes.append([]) }
                    event.stringBytes[slot] = Array(UnsafeBufferPointer(start: p + i, count: stop - i))
                }
                i = stop
            }
            if step.leftJustified { while i < end, p[i] == 0x20 { i += 1 } }
            s += 1
        }
        while i < end, p[i] == 0x20 || p[i] == 0x09 { i += 1 }
        return i == end
    }

    /// `(uint64_t)value` of the argument's C type: sign-extended or truncated to its width.
    @inline(__always)
    private static func normalized(_ raw: UInt64, _ step: Step) -> UInt64 {
        switch step.normalize {
        case 1: return UInt64(bitPattern: Int64(bitPattern: raw << UInt64(step.shift)) >> UInt64(step.shift))
        case 2: return (raw << UInt64(step.shift)) >> UInt64(step.shift)
        default: return raw
        }
    }

    @inline(__always)
    static func decimal(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> (UInt64, Int)? {
        ByteParsing.decimal(p, start, end)
    }

    /// `line[0..<n] == literal[0..<n]`; a literal of at most 8 bytes (`vdev `, ` req `, ...)
    /// with 8 bytes of the line left is one masked 64-bit compare (the literal buffer is
    /// padded, and only the line's bytes before its end are loaded).
    @inline(__always)
    static func literalMatches(_ line: UnsafePointer<UInt8>, _ available: Int,
                               _ literal: UnsafePointer<UInt8>, _ n: Int) -> Bool {
        if n <= 8, available >= 8 {
            let a = UInt64(littleEndian: UnsafeRawPointer(line).loadUnaligned(as: UInt64.self))
            let b = UInt64(littleEndian: UnsafeRawPointer(literal).loadUnaligned(as: UInt64.self))
            let mask: UInt64 = n == 8 ? ~0 : (1 << UInt64(n << 3)) &- 1
            return (a ^ b) & mask == 0
        }
        return TraceEventNameTable.equal(line, literal, n)
    }

    /// Hex digits eight a load (KVMScopeCore's ByteParsing, shared with LineBytes.hex).
    @inline(__always)
    static func isHex(_ c: UInt8) -> Bool { ByteParsing.isHex(c) }

    @inline(__always)
    static func hex(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> (UInt64, Int)? {
        ByteParsing.hex(p, start, end)
    }
}
