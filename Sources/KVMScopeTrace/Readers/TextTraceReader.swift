import Foundation

/// Reads QEMU's text trace outputs — the `log` backend (stderr or `-D file`) in all its prefix
/// styles, and the SystemTap `log` tapset — line by line, from bytes: the prefix gives time and
/// thread, the name is looked up without making a String, and only selected events have their
/// arguments scanned with their own format. Lines that are not trace lines (QEMU warnings,
/// binary junk) are counted. Each line is judged on its own, so a file mixing prefix styles
/// (e.g. a restart with other options) still reads.
public struct TextTraceReader: TraceReader {
    public private(set) var stats: TraceReadStats
    public var onProgress: ((Int64) -> Void)?
    /// Prefix styles seen (for the report: which QEMU output this was).
    public private(set) var prefixCounts: [String: Int] = [:]

    public init(format: String) { stats = TraceReadStats(format: format) }

    public mutating func read(_ stream: ByteStream, decoder: TraceEventDecoder,
                              _ body: (TraceEvent) throws -> Void) throws {
        var splitter = LineSplitter()
        splitter.onProgress = onProgress
        // Per-style line counts in locals, not an array: no uniqueness check per line.
        var styleNone = 0, styleLog = 0, styleISO = 0, styleStap = 0
        var events = 0, skipped = 0, other = 0, binary = 0, badTimestamps = 0
        var recognised = 0, blank = 0
        // The decoder's per-name buffers, loaded once rather than through the object per line.
        let table = decoder.table
        let firstScanner = decoder.firstScanner, isSelected = decoder.isSelected
        let seenByName = decoder.seenByName, malformedByName = decoder.malformedByName
        try splitter.forEachLine(in: stream) { line, _ in
            guard let p = line.bytes.baseAddress, line.count > 0 else { blank += 1; return }
            let n = line.count
            let prefix = TraceLinePrefix.parse(p, n)
            if prefix.badTimestamp { badTimestamps += 1; return }
            let nameStart = prefix.nameStart
            // The name: hashed while its end (a space or the end of the line) is found; a hit in
            // the table is an identifier, so only a miss needs the byte-by-byte check below.
            let (e, h) = TraceEventNameTable.scanName(p, nameStart, n)
            let index = e > nameStart ? table.lookup(p + nameStart, e - nameStart, hash: h) : -1
            guard index >= 0 else {
                Self.notAnEvent(p, n, prefix: prefix, line: line, decoder: decoder,
                                other: &other, binary: &binary, blank: &blank, recognised: &recognised)
                return
            }
            switch prefix.style {
            case .none: styleNone += 1
            case .logTimestamp: styleLog += 1
            case .iso: styleISO += 1
            case .systemTap: styleStap += 1
            }
            recognised += 1
            seenByName[index] += 1
            guard isSelected[index] else { skipped += 1; return }
            let argsStart = e < n ? e + 1 : n
            // Try the name's definitions in order (today's signature first, then older ones).
            var candidate = firstScanner[index]
            while let current = candidate {
                let matched = try current._withUnsafeGuaranteedRef { scanner -> Bool in
                    var event = TraceEvent(definition: scanner.definition, timestamp: prefix.timestamp, thread: prefix.thread)
                    guard scanner.scan(p, argsStart, n, into: &event) else { return false }
                    events += 1
                    try body(event)
                    return true
                }
                if matched { return }
                candidate = current._withUnsafeGuaranteedRef { $0.next }
            }
            malformedByName[index] += 1
        }
        stats.bytes = splitter.stats.bytes
        stats.lines = splitter.stats.lines
        stats.overlongLines = splitter.stats.overlongLines
        stats.events = events
        stats.skippedEvents = skipped
        stats.otherLines = other
        stats.binaryLines = binary
        stats.badTimestamps = badTimestamps
        stats.linesRecognised = recognised
        stats.linesSkipped = max(0, splitter.stats.lines - recognised - blank)
        decoder.finish(into: &stats)
        let styleNames = ["none", "TID@SEC.USEC:", "ISO 8601", "PID@NS"]
        for (i, n) in [styleNone, styleLog, styleISO, styleStap].enumerated() where n > 0 { prefixCounts[styleNames[i]] = n }
    }

    /// A line whose first word is no event of the definitions: an unknown event behind a
    /// trace prefix (or a bare `some_event ...`), other text, binary junk or a blank line.
    /// Out of line: the per-line path stays small.
    @inline(never)
    static func notAnEvent(_ p: UnsafePointer<UInt8>, _ n: Int, prefix: TraceLinePrefix.Parsed, line: LineBytes,
                           decoder: TraceEventDecoder, other: inout Int, binary: inout Int, blank: inout Int,
                           recognised: inout Int) {
        // The name: identifier characters up to a space or the end of the line.
        var e = prefix.nameStart
        var hasUnderscore = false
        while e < n {
            let c = p[e]
            if c == 0x20 { break }
            guard TraceFormatString.isIdentifier(c) else { e = -1; break }
            if c == 0x5F { hasUnderscore = true }
            e += 1
        }
        guard e > prefix.nameStart else {
            if line.looksBinary { binary += 1 } else if !isBlank(p, n) { other += 1 } else { blank += 1 }
            return
        }
        let nameLength = e - prefix.nameStart
        if prefix.style != .none || hasUnderscore {
            decoder.noteUnknown(p + prefix.nameStart, nameLength)
            // Behind a trace prefix it is a trace line of an event the definitions lack;
            // a bare `some_word ...` could be any text.
            if prefix.style != .none { recognised += 1 }
        } else {
            other += 1
        }
    }

    static func isBlank(_ p: UnsafePointer<UInt8>, _ n: Int) -> Bool {
        for i in 0..<n where p[i] != 0x20 && p[i] != 0x09 { return false }
        return true
    }
}

/// QEMU's `log` trace backend: what `-trace EVENT` prints to stderr or to `-D FILE`.
public struct LogBackendTraceFormat: TraceInputFormat {
    public let name = "qemu-log"
    public let kind = InputKind.qemuTrace
    public let summary = "QEMU `log` trace backend (-trace to stderr or -D file): `name args`, `TID@SEC.USEC:name args`, ISO-8601 prefix"
    public init() {}

    public func recognizes(_ sample: UnsafeRawBufferPointer) -> Bool {
        let lines = TraceFormatSniffer.lines(sample)
        if lines.isEmpty { return !TraceFormatSniffer.isBinary(sample) }
        var traceLines = 0
        for line in lines {
            line.withUnsafeBufferPointer { b in
                guard let p = b.baseAddress, b.count > 0 else { return }
                let prefix = TraceLinePrefix.parse(p, b.count)
                switch prefix.style {
                case .logTimestamp, .iso: traceLines += 1
                case .systemTap: break
                case .none: if TraceFormatSniffer.looksLikeBareEvent(p, b.count) { traceLines += 1 }
                }
            }
        }
        return traceLines > 0
    }

    public func makeReader() -> any TraceReader { TextTraceReader(format: name) }
}

/// The output of the SystemTap/dtrace backend's `log` tapset (`qemu-trace-stap run`), which is
/// what RHEL and Fedora users get: `PID@NANOSECONDS name args`.
struct SystemTapLogTraceFormat: TraceInputFormat {
    public let name = "qemu-stap-log"
    public let kind = InputKind.qemuTrace
    public let summary = "SystemTap log tapset output (qemu-trace-stap): `PID@NS name args`"
    public init() {}

    public func recognizes(_ sample: UnsafeRawBufferPointer) -> Bool {
        var stap = 0, log = 0
        for line in TraceFormatSniffer.lines(sample) {
            line.withUnsafeBufferPointer { b in
                guard let p = b.baseAddress, b.count > 0 else { return }
                switch TraceLinePrefix.parse(p, b.count).style {
                case .systemTap: stap += 1
                case .logTimestamp, .iso: log += 1
                case .none: break
                }
            }
        }
        return stap > 0 && stap >= log
    }

    public func makeReader() -> any TraceReader { TextTraceReader(format: name) }
}

/// Small helpers for format detection on the first bytes of an input.
enum TraceFormatSniffer {
    /// Up to 200 complete lines of the sample.
    static func lines(_ sample: UnsafeRawBufferPointer) -> [[UInt8]] {
        var out: [[UInt8]] = []
        var start = 0
        let bytes = sample.bindMemory(to: UInt8.self)
        for i in 0..<bytes.count where bytes[i] == 0x0A {
            out.append(Array(bytes[start..<i]))
            start = i + 1
            if out.count == 200 { break }
        }
        if out.isEmpty, !bytes.isEmpty { out.append(Array(bytes)) }
        return out
    }

    static func isBinary(_ sample: UnsafeRawBufferPointer) -> Bool {
        sample.prefix(4096).contains { $0 < 0x09 || ($0 > 0x0D && $0 < 0x20) }
    }

    /// `some_event args...` without a prefix: an identifier with an underscore, then a space.
    static func looksLikeBareEvent(_ p: UnsafePointer<UInt8>, _ n: Int) -> Bool {
        var i = 0
        var underscore = false
        while i < n, TraceFormatString.isIdentifier(p[i]) { if p[i] == 0x5F { underscore = true }; i += 1 }
        return i > 0 && underscore && (i == n || p[i] == 0x20)
    }
}
