import Foundation

/// The binary files of QEMU's `simple` trace backend (trace/simple.c), format version 4,
/// read the way QEMU's scripts/simpletrace.py reads them:
///
///     header   u64 0xffffffffffffffff, u64 0xf2b177cb0aa429b4, u64 4
///     record   u64 type; 0 = mapping: u64 id, u32 len, name[len]
///                        1 = event:   u64 id, u64 timestamp_ns, u32 length (incl. this
///                                     24-byte header), u32 pid, arguments
///     argument u64 for integers and pointers; u32 len + bytes for `char *`
///     dropped  an event with id 0xfffffffffffffffe and one u64: events lost to a full buffer
///
/// Host byte order: a file from a big-endian host is recognised by its byte-swapped magic
/// and read swapped. Other versions are rejected with a clear message; a record cut short
/// or a nonsensical length ends the read with the offset in the stats, never a crash.
struct SimpleTraceReader: TraceReader {
    public static let headerEventID: UInt64 = 0xffff_ffff_ffff_ffff
    public static let magic: UInt64 = 0xf2b1_77cb_0aa4_29b4
    public static let droppedEventID: UInt64 = 0xffff_ffff_ffff_fffe
    public static let supportedVersion: UInt64 = 4
    /// No event is bigger than 10 strings of 512 bytes; anything far beyond is corruption.
    static let maxRecordLength = 1 << 20
    static let maxNameLength = 4096

    public private(set) var stats = TraceReadStats(format: "qemu-simpletrace")
    public var onProgress: ((Int64) -> Void)?

    public init() {}

    public mutating func read(_ stream: ByteStream, decoder: TraceEventDecoder,
                              _ body: (TraceEvent) throws -> Void) throws {
        var buffer = ByteWindow(stream: stream, onProgress: onProgress)
        defer { buffer.release() }
        guard try buffer.fill(24) else {
            throw KVMScopeError.unsupportedFormat(path: stream.name, detail: "too short for a simpletrace file (no 24-byte header)")
        }
        let swapped: Bool
        switch (buffer.u64(0, false), buffer.u64(8, false)) {
        case (Self.headerEventID, Self.magic): swapped = false
        case (Self.headerEventID, Self.magic.byteSwapped): swapped = true
        default:
            throw KVMScopeError.unsupportedFormat(path: stream.name, detail: "not a simpletrace file (wrong header magic)")
        }
        let version = buffer.u64(16, swapped)
        guard version == Self.supportedVersion else {
            throw KVMScopeError.unsupportedFormat(
                path: stream.name,
                detail: "simpletrace format version \(version) is not supported: kvmscope reads version 4, "
                    + "what QEMU writes today (read older files with the simpletrace.py of the QEMU that wrote them)")
        }
        buffer.consume(24)

        // Event id → name index; unknown names map to -(k + 1), k indexing `unknownNames`.
        var mapping: [UInt64: Int] = [:]
        var unknownNames: [[UInt8]] = []
        var events = 0, skipped = 0, unmapped = 0
        while true {
            guard try buffer.fill(8) else { break }
            let type = buffer.u64(0, swapped)
            if type == 0 {
                guard try buffer.fill(20) else { stats.truncatedRecords += 1; break }
                let id = buffer.u64(8, swapped)
                let length = Int(buffer.u32(16, swapped))
                guard length <= Self.maxNameLength else { stats.corruptAtOffset = buffer.offset; break }
                guard try buffer.fill(20 + length) else { stats.truncatedRecords += 1; break }
                let index = buffer.withBytes(20, length) { decoder.nameIndex($0, length) }
                if index < 0 {
                    mapping[id] = -(unknownNames.count + 1)
                    unknownNames.append(buffer.withBytes(20, length) { Array(UnsafeBufferPointer(start: $0, count: length)) })
                } else {
                    mapping[id] = index
                }
                buffer.consume(20 + length)
                continue
            }
            guard type == 1 else { stats.corruptAtOffset = buffer.offset; break }
            guard try buffer.fill(8 + 24) else { stats.truncatedRecords += 1; break }
            let id = buffer.u64(8, swapped)
            let timestamp = buffer.u64(16, swapped)
            let length = Int(buffer.u32(24, swapped))
            let pid = buffer.u32(28, swapped)
            guard length >= 24, length <= Self.maxRecordLength else { stats.corruptAtOffset = buffer.offset; break }
            guard try buffer.fill(8 + length) else { stats.truncatedRecords += 1; break }
            let payloadLength = length - 24
            defer { buffer.consume(8 + length) }
            // trace/simple.c writes get_clock() (CLOCK_MONOTONIC ns, an int64_t) as a uint64_t:
            // 2^63 and above is no clock reading, and would wrap negative.
            guard timestamp <= UInt64(Int64.max) else { stats.badTimestamps += 1; continue }
            let stamp = TraceTimestamp(nanoseconds: Int64(timestamp), clock: .monotonic)

            if id == Self.droppedEventID {
                stats.droppedEventRecords += 1
                var event = TraceEvent(definition: .droppedEvents, timestamp: stamp, thread: Int64(pid))
                let count = payloadLength >= 8 ? buffer.u64(32, swapped) : 0
                stats.droppedEvents = VirtioBlkRequestTracker.cappedSum(stats.droppedEvents, count)   // a file's claim, not a count we made
                event.bits[0] = count
                events += 1
                try body(event)
                continue
            }
            guard let index = mapping[id] else { unmapped += 1; continue }
            guard index >= 0 else {
                unknownNames[-index - 1].withUnsafeBufferPointer { decoder.noteUnknown($0.baseAddress!, $0.count) }
                continue
            }
            decoder.seenByName[index] += 1
            guard decoder.isSelected[index] else { skipped += 1; continue }
            var decoded: TraceEvent?
            buffer.withBytes(32, payloadLength) { payload in
                decoded = Self.decode(payload, payloadLength, swapped, decoder.definitionsByName[index], stamp, pid)
            }
            guard let event = decoded else { decoder.malformedByName[index] += 1; continue }
            events += 1
            try body(event)
        }
        stats.bytes = buffer.offset
        stats.events = events
        stats.skippedEvents = skipped
        stats.unmappedEvents = unmapped
        decoder.finish(into: &stats)
        // Records, not lines: every event record (known, unknown, unmapped, "dropped events")
        // was understood; those cut short or with an impossible clock were not.
        stats.linesRecognised = stats.eventCounts.values.reduce(0, +) + stats.unknownEvents + unmapped + stats.droppedEventRecords
        stats.linesSkipped = stats.badTimestamps + stats.truncatedRecords
    }

    /// Decodes a payload with the first definition whose arguments fill it exactly, else the
    /// first that fits (simpletrace.py ignores extra bytes), else nil.
    static func decode(_ p: UnsafePointer<UInt8>, _ n: Int, _ swapped: Bool,
                       _ definitions: [TraceEventDefinition], _ stamp: TraceTimestamp, _ pid: UInt32) -> TraceEvent? {
        var fallback: TraceEvent?
        for def in definitions {
            var event = TraceEvent(definition: def, timestamp: stamp, thread: Int64(pid))
            var offset = 0
            var ok = true
            for (i, arg) in def.arguments.enumerated() {
                if arg.kind == .string {
                    guard n - offset >= 4 else { ok = false; break }
                    var len = UInt32(littleEndian: UnsafeRawPointer(p + offset).loadUnaligned(as: UInt32.self))
                    if swapped { len = len.byteSwapped }
                    offset += 4
                    guard Int(len) <= n - offset else { ok = false; break }
                    event.stringBytes.append(Array(UnsafeBufferPointer(start: p + offset, count: Int(len))))
                    offset += Int(len)
                } else {
                    guard n - offset >= 8 else { ok = false; break }
                    var v = UInt64(littleEndian: UnsafeRawPointer(p + offset).loadUnaligned(as: UInt64.self))
                    if swapped { v = v.byteSwapped }
                    event.bits[i] = v
                    offset += 8
                }
            }
            guard ok else { continue }
            if offset == n { return event }
            if fallback == nil { fallback = event }
        }
        return fallback
    }
}

/// QEMU's simple trace backend's binary files.
struct SimpleTraceFormat: TraceInputFormat {
    public let name = "qemu-simpletrace"
    public let kind = InputKind.qemuTrace
    public let summary = "QEMU `simple` trace backend binary file (trace-PID), format version 4"
    public init() {}

    public func recognizes(_ sample: UnsafeRawBufferPointer) -> Bool {
        guard sample.count >= 16 else { return false }
        let id = sample.loadUnaligned(fromByteOffset: 0, as: UInt64.self)
        let magic = sample.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
        return id == SimpleTraceReader.headerEventID
            && (magic == SimpleTraceReader.magic || magic == SimpleTraceReader.magic.byteSwapped)
    }

    public func makeReader() -> any TraceReader { SimpleTraceReader() }
}

/// A sliding window over a stream for record-oriented binary formats: `fill(n)` makes sure
/// `n` bytes are available at the front, `consume(n)` drops them. Memory: the window only.
struct ByteWindow {
    private let stream: ByteStream
    private var storage: UnsafeMutablePointer<UInt8>
    private var capacity: Int
    private var start = 0
    private var end = 0
    private var eof = false
    /// Offset in the stream of the window's first byte.
    private(set) var offset: Int64 = 0
    private var readTotal: Int64 = 0
    private let onProgress: ((Int64) -> Void)?

    init(stream: ByteStream, onProgress: ((Int64) -> Void)?, capacity: Int = 1 << 20) {
        self.stream = stream
        self.onProgress = onProgress
        self.capacity = capacity
        storage = .allocate(capacity: capacity)
    }

    func release() { storage.deallocate() }

    /// True when `n` bytes are available; false at end of input (fewer remain).
    mutating func fill(_ n: Int) throws -> Bool {
        if end - start >= n { return true }
        if start > 0 {
            if end > start { memmove(storage, storage + start, end - start) }
            end -= start
            start = 0
        }
        if n > capacity {
            let bigger = UnsafeMutablePointer<UInt8>.allocate(capacity: n)
            bigger.update(from: storage, count: end)
            storage.deallocate()
            storage = bigger
            capacity = n
        }
        while end < n && !eof {
            let got = try stream.read(into: UnsafeMutableRawBufferPointer(start: storage + end, count: capacity - end))
            if got == 0 { eof = true; break }
            end += got
            readTotal += Int64(got)
            onProgress?(readTotal)
        }
        return end - start >= n
    }

    mutating func consume(_ n: Int) {
        start += n
        offset += Int64(n)
    }

    func u64(_ at: Int, _ swapped: Bool) -> UInt64 {
        let v = UInt64(littleEndian: UnsafeRawPointer(storage + start + at).loadUnaligned(as: UInt64.self))
        return swapped ? v.byteSwapped : v
    }

    func u32(_ at: Int, _ swapped: Bool) -> UInt32 {
        let v = UInt32(littleEndian: UnsafeRawPointer(storage + start + at).loadUnaligned(as: UInt32.self))
        return swapped ? v.byteSwapped : v
    }

    func withBytes<R>(_ at: Int, _ count: Int, _ body: (UnsafePointer<UInt8>) throws -> R) rethrows -> R {
        try body(UnsafePointer(storage + start + at))
    }
}
