/// One tracepoint sample read from a perf.data: who, where, when, and the tracepoint's own
/// record (starting with `common_type`) in this host's byte order, ready for the decoders
/// that read tracefs records (KfreeSkbRecordDecoder, the kvm field mapping).
///
/// Valid only during the callback it is handed to, like its payload: it refers to the
/// reading session without holding it, so that handing on millions of samples costs no
/// reference counting; the event, comm and arch are looked up when asked for.
public struct PerfTracepointSample {
    unowned(unsafe) let session: PerfSession
    let attrIndex: Int
    /// The event's format id (`common_type`): tells events apart without touching `event`.
    public let formatID: Int
    public var event: PerfTracepoint { session.tracepoint(ofAttr: attrIndex) }
    /// PERF_SAMPLE_CPU; nil when the attr did not sample it.
    public let cpu: UInt32?
    /// PERF_SAMPLE_TID: process and thread id.
    public let pid: Int32?
    public let tid: Int32?
    /// PERF_SAMPLE_TIME, in the perf clock's ns (perf script prints it as seconds).
    public let timeNs: UInt64?
    /// The record; valid only during the callback.
    public let payload: UnsafeRawBufferPointer
    /// The thread's command name from the file's COMM/FORK records (what perf script prints).
    public var comm: String? { tid.flatMap { session.comm($0) } }
    /// HEADER_ARCH of the file (`x86_64`), when it has one: what a domain names when the
    /// stored formats are not the ones it reads.
    public var arch: String? { session.arch }

    /// A field's value as an unsigned number (sign-extended for signed fields), or nil when
    /// the field is not a 1/2/4/8-byte scalar or lies outside the payload.
    public func value(_ field: TracepointFormat.Field) -> UInt64? {
        TracepointFieldReader.value(field, payload)
    }

    /// Every field with its value: numbers, `char[]` arrays and `__data_loc char[]` as text.
    public func fields() -> [(name: String, value: TracepointFieldReader.Value)] {
        event.format.fields.map { ($0.name, TracepointFieldReader.decode($0, payload)) }
    }
}

/// Reads tracepoint fields from a host-order record, every offset checked against it.
public enum TracepointFieldReader {
    public enum Value: Equatable, Sendable {
        case number(UInt64)
        case text(String)
        case bytes([UInt8])
        case outOfRange
    }

    @inline(__always)
    public static func value(_ f: TracepointFormat.Field, _ p: UnsafeRawBufferPointer) -> UInt64? {
        guard f.offset >= 0, f.size <= p.count, f.offset <= p.count - f.size else { return nil }
        switch f.size {
        case 8: return p.loadUnaligned(fromByteOffset: f.offset, as: UInt64.self)
        case 4:
            let v = p.loadUnaligned(fromByteOffset: f.offset, as: UInt32.self)
            return f.isSigned ? UInt64(bitPattern: Int64(Int32(bitPattern: v))) : UInt64(v)
        case 2:
            let v = p.loadUnaligned(fromByteOffset: f.offset, as: UInt16.self)
            return f.isSigned ? UInt64(bitPattern: Int64(Int16(bitPattern: v))) : UInt64(v)
        case 1:
            let v = p.load(fromByteOffset: f.offset, as: UInt8.self)
            return f.isSigned ? UInt64(bitPattern: Int64(Int8(bitPattern: v))) : UInt64(v)
        default: return nil
        }
    }

    public static func decode(_ f: TracepointFormat.Field, _ p: UnsafeRawBufferPointer) -> Value {
        guard f.offset >= 0, f.size <= p.count, f.offset <= p.count - f.size else { return .outOfRange }
        if f.type.hasPrefix("__data_loc") {
            // u32: offset in the low 16 bits, length in the high 16 (include/trace/trace_events.h).
            guard f.size == 4, let loc = value(f, p) else { return .outOfRange }
            let off = Int(loc & 0xFFFF), len = Int(loc >> 16)
            guard off + len <= p.count else { return .outOfRange }
            return text(UnsafeRawBufferPointer(rebasing: p[off..<(off + len)]))
        }
        if f.isCharArray { return text(UnsafeRawBufferPointer(rebasing: p[f.offset..<(f.offset + f.size)])) }
        if let v = value(f, p) { return .number(v) }
        return .bytes(Array(p[f.offset..<(f.offset + f.size)]))
    }

    static func text(_ b: UnsafeRawBufferPointer) -> Value {
        .text(String(decoding: b.prefix { $0 != 0 }, as: UTF8.self))
    }
}

extension TracepointFormat.Field {
    /// `char comm[16]` (the parser keeps `char` as the type and drops the brackets).
    var isCharArray: Bool { (type == "char" || type == "unsigned char" || type == "u8") && size > 1 }
}

/// Turns a record written by a kernel of the other byte order into this host's order, field
/// by field from its format: 2/4/8-byte scalars (and `__data_loc` words) are swapped; byte
/// arrays stay. Fields of other sizes (arrays of integers) are left as written.
struct PerfPayloadSwapper {
    let fields: [(offset: Int, size: Int)]

    init(format: TracepointFormat) {
        fields = format.fields.compactMap { f in
            f.isCharArray || ![2, 4, 8].contains(f.size) ? nil : (f.offset, f.size)
        }
    }

    func swap(_ p: UnsafeMutableRawBufferPointer) {
        for (o, s) in fields where o >= 0 && o + s <= p.count {
            switch s {
            case 8: p.storeBytes(of: p.loadUnaligned(fromByteOffset: o, as: UInt64.self).byteSwapped, toByteOffset: o, as: UInt64.self)
            case 4: p.storeBytes(of: p.loadUnaligned(fromByteOffset: o, as: UInt32.self).byteSwapped, toByteOffset: o, as: UInt32.self)
            default: p.storeBytes(of: p.loadUnaligned(fromByteOffset: o, as: UInt16.self).byteSwapped, toByteOffset: o, as: UInt16.self)
            }
        }
    }
}
