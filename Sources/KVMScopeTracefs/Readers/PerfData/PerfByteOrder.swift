/// Loads from bytes written by another machine. perf.data holds every number in the byte
/// order of the host that recorded it; the magic (`PERFILE2` read as a little-endian u64 on
/// the recording host) tells which (tools/perf/util/header.c: check_magic_endian).
struct PerfByteOrder: Sendable, Equatable {
    /// The file's order differs from this host's.
    let swapped: Bool

    static let native = PerfByteOrder(swapped: false)

    @inline(__always)
    func u16(_ p: UnsafeRawBufferPointer, _ at: Int) -> UInt16 {
        let v = p.loadUnaligned(fromByteOffset: at, as: UInt16.self)
        return swapped ? v.byteSwapped : v
    }

    @inline(__always)
    func u32(_ p: UnsafeRawBufferPointer, _ at: Int) -> UInt32 {
        let v = p.loadUnaligned(fromByteOffset: at, as: UInt32.self)
        return swapped ? v.byteSwapped : v
    }

    @inline(__always)
    func u64(_ p: UnsafeRawBufferPointer, _ at: Int) -> UInt64 {
        let v = p.loadUnaligned(fromByteOffset: at, as: UInt64.self)
        return swapped ? v.byteSwapped : v
    }
}

/// A bounds-checked cursor over a small section already in memory (header, attrs, feature
/// sections, tracing data): every read says how far it may go, and running off the end is
/// a `PerfDataError`, never an out-of-bounds load.
struct PerfSectionCursor {
    let bytes: [UInt8]
    let order: PerfByteOrder
    let what: String
    let path: String
    var offset = 0

    init(_ bytes: [UInt8], order: PerfByteOrder, what: String, path: String) {
        self.bytes = bytes
        self.order = order
        self.what = what
        self.path = path
    }

    var remaining: Int { bytes.count - offset }

    func truncated(_ need: Int) -> PerfDataError {
        PerfDataError(path: path, "\(what) is truncated: \(need) bytes needed at offset \(offset), \(remaining) left")
    }

    mutating func need(_ n: Int) throws {
        guard n >= 0, n <= remaining else { throw truncated(n) }
    }

    mutating func u8() throws -> UInt8 {
        try need(1)
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func u32() throws -> UInt32 {
        try need(4)
        defer { offset += 4 }
        return bytes.withUnsafeBytes { order.u32($0, offset) }
    }

    mutating func u64() throws -> UInt64 {
        try need(8)
        defer { offset += 8 }
        return bytes.withUnsafeBytes { order.u64($0, offset) }
    }

    /// `count` bytes, counted from the file, checked against what is left.
    mutating func take(_ count: UInt64) throws -> ArraySlice<UInt8> {
        guard count <= UInt64(remaining) else { throw truncated(count > UInt64(Int.max) ? Int.max : Int(count)) }
        let n = Int(count)
        defer { offset += n }
        return bytes[offset..<(offset + n)]
    }

    mutating func skip(_ count: UInt64) throws { _ = try take(count) }

    /// A NUL-terminated string (the tracing data's system names, version).
    mutating func cString(limit: Int = 4096) throws -> String {
        let end = min(bytes.count, offset + limit)
        guard let nul = bytes[offset..<end].firstIndex(of: 0) else {
            throw PerfDataError(path: path, "\(what): unterminated string at offset \(offset)")
        }
        defer { offset = nul + 1 }
        return String(decoding: bytes[offset..<nul], as: UTF8.self)
    }

    /// perf's `struct perf_header_string`: u32 length (with padding and NUL), then the text.
    mutating func headerString() throws -> String {
        let len = try u32()
        let raw = try take(UInt64(len))
        let text = raw.prefix { $0 != 0 }
        return String(decoding: text, as: UTF8.self)
    }
}
