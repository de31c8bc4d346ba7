import Foundation

/// What the splitter saw besides the lines it handed out. Reports show these so that
/// nothing is lost silently.
public struct LineStats: Equatable, Sendable, Codable {
    public var lines = 0
    public var bytes: Int64 = 0
    /// Lines longer than the limit: skipped whole, never split into fake lines.
    public var overlongLines = 0
    /// The input ended without a newline; that last line was still handed out.
    public var endedMidLine = false
    /// Lines ended by a lone `\r` (classic Mac files, some terminal captures and serial
    /// consoles): the input's first line-length limit of bytes had carriage returns and no `\n`.
    public var carriageReturnLineEnds = false
    public init() {}
}

/// Splits a byte stream into lines in one pass, with memory bounded by the chunk size plus
/// the longest accepted line — never by the input size. Lines are handed out as borrowed
/// bytes (no String is made), which is what lets readers run at hundreds of MB/s.
public struct LineSplitter {
    public var chunkSize: Int
    public var maxLineLength: Int
    /// Called after each read with the total bytes read so far (progress display).
    public var onProgress: ((Int64) -> Void)?
    public private(set) var stats = LineStats()

    /// For the inlinable `forEachLine`, which cannot set a `private(set)` property itself.
    @usableFromInline mutating func setStats(_ newValue: LineStats) { stats = newValue }

    public init(chunkSize: Int = 1 << 20, maxLineLength: Int = 1 << 16) {
        self.chunkSize = max(chunkSize, 16)
        self.maxLineLength = max(maxLineLength, 16)
    }

    /// Calls `body` with each line (without `\n` or a trailing `\r`) and its 1-based number.
    /// The bytes are only valid during the call.
    /// Inlinable so that each reader's `body` is inlined into this loop in the reader's module
    /// (a closure call per line otherwise, and the reader's per-line state kept in memory).
    @inlinable
    public mutating func forEachLine(in stream: ByteStream,
                                     _ body: (LineBytes, Int) throws -> Void) throws {
        let capacity = chunkSize + maxLineLength
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 16)
        defer { buffer.deallocate() }
        let base = buffer.baseAddress!.assumingMemoryBound(to: UInt8.self)
        var filled = 0          // bytes valid in buffer
        var skippingOverlong = false
        var lineNumber = 0
        var stats = self.stats
        defer { setStats(stats) }

        @inline(__always) func emit(_ start: Int, _ end: Int) throws {
            lineNumber += 1
            var e = end
            if e > start && base[e - 1] == 0x0D { e -= 1 }
            try body(LineBytes(UnsafeBufferPointer(start: base + start, count: e - start)), lineNumber)
        }

        // The line end: `\n`, unless the input's first maxLineLength bytes (or all of it, if
        // shorter) have carriage returns and no `\n` at all — then each lone `\r` ends a line.
        // (Split at `\n`, such an input would be one overlong line, skipped.) Decided once, before
        // any line is handed out, so a `\r\r\n` console is never split at its `\r`s.
        var lineEnd: UInt8 = 0x0A
        var decided = false
        func decide() {
            decided = true
            if memchr(base, 0x0A, filled) == nil, memchr(base, 0x0D, filled) != nil {
                lineEnd = 0x0D
                stats.carriageReturnLineEnds = true
            }
        }
        var scanFrom = 0
        @inline(__always) func scan() throws {
            var lineStart = 0
            var cursor = scanFrom
            while cursor < filled,
                  let hit = memchr(base + cursor, Int32(lineEnd), filled - cursor) {
                let nl = UnsafeRawPointer(hit).assumingMemoryBound(to: UInt8.self) - UnsafePointer(base)
                if skippingOverlong {
                    skippingOverlong = false
                    lineNumber += 1       // the overlong line still had a number
                } else if nl - lineStart > maxLineLength {
                    stats.overlongLines += 1
                    lineNumber += 1
                } else {
                    try emit(lineStart, nl)
                }
                lineStart = nl + 1
                cursor = nl + 1
            }
            // Keep the unfinished line; drop it if it already exceeds the limit.
            let pending = filled - lineStart
            if skippingOverlong || pending > maxLineLength {
                if !skippingOverlong { stats.overlongLines += 1 }
                skippingOverlong = true
                filled = 0
            } else {
                if lineStart > 0 && pending > 0 { memmove(base, base + lineStart, pending) }
                filled = pending
            }
            scanFrom = filled
        }

        while true {
            let n = try stream.read(into: UnsafeMutableRawBufferPointer(start: base + filled, count: capacity - filled))
            if n == 0 { break }
            stats.bytes += Int64(n)
            onProgress?(stats.bytes)
            filled += n
            if !decided {
                if memchr(base + scanFrom, 0x0A, filled - scanFrom) != nil || filled >= maxLineLength { decide() } else { continue }
            }
            try scan()
        }
        if !decided && filled > 0 {
            decide()
            try scan()
        }
        if skippingOverlong {
            lineNumber += 1
            stats.endedMidLine = true
        } else if filled > 0 {
            stats.endedMidLine = true
            try emit(0, filled)
        }
        stats.lines = lineNumber
    }
}
