/// Reads the numbers and strings of a trace.dat's metadata in the file's byte order (its
/// endianness byte says which; trace-cmd writes the host's). Two sources: the file itself
/// (v6's header is read in place, front to back) and a section held in memory (v7 sections,
/// decompressed when compressed). Every read is bounded: by the file size or by the
/// section's end, and by a per-item limit for the variable-length parts.
protocol TraceDatReading {
    var bigEndian: Bool { get }
    /// Where the next byte comes from, for messages.
    var position: UInt64 { get }
    mutating func bytes(_ count: Int, what: @autoclosure () -> String) throws -> [UInt8]
}

extension TraceDatReading {
    mutating func u16(_ what: @autoclosure () -> String) throws -> UInt16 {
        UInt16(truncatingIfNeeded: try number(2, what()))
    }
    mutating func u32(_ what: @autoclosure () -> String) throws -> UInt32 {
        UInt32(truncatingIfNeeded: try number(4, what()))
    }
    mutating func u64(_ what: @autoclosure () -> String) throws -> UInt64 {
        try number(8, what())
    }

    mutating func number(_ size: Int, _ what: String) throws -> UInt64 {
        let b = try bytes(size, what: what)
        return TraceDatBytes.number(b[...], bigEndian: bigEndian)
    }

    /// A NUL-terminated string of at most `limit` bytes (names, clocks, versions).
    mutating func cString(_ what: @autoclosure () -> String, limit: Int = 4096) throws -> String {
        var out: [UInt8] = []
        while true {
            let b = try bytes(1, what: what())[0]
            if b == 0 { return String(decoding: out, as: UTF8.self) }
            out.append(b)
            if out.count > limit { throw TraceDatError.malformed("\(what()) at offset \(position) is not a string of at most \(limit) bytes") }
        }
    }

    /// A size field followed by that many bytes, the size checked against `limit` first.
    mutating func sized(_ what: @autoclosure () -> String, sizeBytes: Int, limit: Int) throws -> [UInt8] {
        let at = position
        let n = try number(sizeBytes, what() + " size")
        guard n <= UInt64(limit) else {
            throw TraceDatError.malformed("\(what()) at offset \(at) claims \(n) bytes (more than the \(limit) kvmscope accepts)")
        }
        return try bytes(Int(n), what: what())
    }
}

enum TraceDatBytes {
    static func number(_ b: ArraySlice<UInt8>, bigEndian: Bool) -> UInt64 {
        var v: UInt64 = 0
        if bigEndian {
            for x in b { v = v << 8 | UInt64(x) }
        } else {
            for x in b.reversed() { v = v << 8 | UInt64(x) }
        }
        return v
    }
}

/// The file, read front to back from an offset.
struct TraceDatFileCursor: TraceDatReading {
    let input: TraceDatInput
    var offset: UInt64
    var bigEndian: Bool
    var position: UInt64 { offset }

    mutating func bytes(_ count: Int, what: @autoclosure () -> String) throws -> [UInt8] {
        let b = try input.read(at: offset, count: count, what: what())
        offset += UInt64(count)
        return b
    }
}

/// A section's bytes in memory.
struct TraceDatMemoryCursor: TraceDatReading {
    let data: [UInt8]
    var index = 0
    var bigEndian: Bool
    /// Where the section's data started in the file (for messages; 0 for decompressed data).
    let base: UInt64
    let label: String
    var position: UInt64 { base + UInt64(index) }
    var remaining: Int { data.count - index }

    init(_ data: [UInt8], bigEndian: Bool, base: UInt64, label: String) {
        self.data = data
        self.bigEndian = bigEndian
        self.base = base
        self.label = label
    }

    mutating func bytes(_ count: Int, what: @autoclosure () -> String) throws -> [UInt8] {
        guard count >= 0, count <= remaining else {
            throw TraceDatError.malformed("\(what()) runs past the end of the \(label) (\(count) bytes wanted, \(remaining) left)")
        }
        defer { index += count }
        return Array(data[index..<index + count])
    }
}
