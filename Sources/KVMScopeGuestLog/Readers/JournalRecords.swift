import Foundation

/// The journal fields kvmscope reads from a `journalctl -o json*` / `-o export` record
/// (systemd.journal-fields(7), docs/JOURNAL_EXPORT_FORMATS.md).
struct JournalFields {
    /// MESSAGE's bytes (a JSON string unescaped, a JSON byte array, or export data).
    var message: [UInt8] = []
    var hasMessage = false
    var bootId: String?
    /// `_SOURCE_MONOTONIC_TIMESTAMP`: for kernel entries journald copies the /dev/kmsg
    /// record's µs (printk's own stamp); `__MONOTONIC_TIMESTAMP` is when journald received it.
    var sourceMonotonic: UInt64?
    var monotonic: UInt64?
    /// `__REALTIME_TIMESTAMP` (µs since the epoch, UTC).
    var realtime: UInt64?
    var transport: String?
    var identifier: String?
    var facility: String?

    /// Whether the entry is the kernel's: `_TRANSPORT=kernel` when present (journald's own
    /// mark), else SYSLOG_IDENTIFIER/SYSLOG_FACILITY; with none of them (`--output-fields`) the
    /// matchers decide.
    var isKernel: Bool {
        if let transport { return transport == "kernel" }
        if let identifier { return identifier == "kernel" }
        if let facility { return facility == "0" }
        return true
    }

    var time: GuestLogTime {
        var t = GuestLogTime()
        if let us = sourceMonotonic ?? monotonic, us <= UInt64(Int64.max) { t.uptimeMicroseconds = Int64(us) }
        if let rt = realtime { t.wallClock = WallClockTime(unixMicroseconds: rt / 1_000_000, rt % 1_000_000) }
        return t
    }

    /// Stores a field's value (text fields as bytes). Keeps only the first MESSAGE.
    mutating func set(_ name: UnsafeBufferPointer<UInt8>, _ value: UnsafeBufferPointer<UInt8>) {
        func isName(_ s: StaticString) -> Bool {
            s.utf8CodeUnitCount == name.count && memcmp(s.utf8Start, name.baseAddress!, name.count) == 0
        }
        guard name.count >= 6, name.baseAddress != nil else { return }
        if isName("MESSAGE") {
            if !hasMessage { message = Array(value.prefix(JournalFields.maxMessage)); hasMessage = true }
        } else if isName("_BOOT_ID") {
            if value.count == 32, value.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }) {
                bootId = String(decoding: value, as: UTF8.self)
            }
        } else if isName("_SOURCE_MONOTONIC_TIMESTAMP") { sourceMonotonic = Self.number(value) }
        else if isName("__MONOTONIC_TIMESTAMP") { monotonic = Self.number(value) }
        else if isName("__REALTIME_TIMESTAMP") { realtime = Self.number(value) }
        else if isName("_TRANSPORT") { transport = Self.short(value) }
        else if isName("SYSLOG_IDENTIFIER") { identifier = Self.short(value) }
        else if isName("SYSLOG_FACILITY") { facility = Self.short(value) }
    }

    /// Kernel messages are at most 1 KiB (PRINTK_MESSAGE_MAX); longer MESSAGEs are cut there.
    static let maxMessage = 8192

    /// A decimal µs count (checked: no overflow, digits only, 1...20 digits).
    static func number(_ v: UnsafeBufferPointer<UInt8>) -> UInt64? {
        guard !v.isEmpty, v.count <= 20 else { return nil }
        var n: UInt64 = 0
        for c in v {
            guard c >= 0x30 && c <= 0x39 else { return nil }
            let (m, o1) = n.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(UInt64(c - 0x30))
            if o1 || o2 { return nil }
            n = a
        }
        return n
    }

    static func short(_ v: UnsafeBufferPointer<UInt8>) -> String? {
        v.count <= 64 ? String(decoding: v, as: UTF8.self) : nil
    }
}

/// Reads one JSON object of the Journal JSON Format: string keys; values are strings, null,
/// arrays of byte values (binary or non-UTF-8 data) or arrays of those (a field with several
/// values). Only the fields JournalFields keeps are decoded; the rest are skipped. Any
/// syntax error makes the whole object unreadable (nil): nothing is guessed.
struct JournalJSONObject {
    private var scratch: [UInt8] = []
    private var key: [UInt8] = []

    mutating func parse(_ bytes: UnsafeBufferPointer<UInt8>) -> JournalFields? {
        var p = JSONCursor(bytes)
        var fields = JournalFields()
        guard p.skipSpace(), p.take(0x7B) else { return nil }          // {
        if p.skipSpace(), p.take(0x7D) { return p.atEnd() ? fields : nil }
        while true {
            guard p.skipSpace(), p.string(into: &key), p.skipSpace(), p.take(0x3A), p.skipSpace() else { return nil }
            let wanted = key.count >= 6 && key.count <= 28 && (key[0] == 0x4D || key[0] == 0x5F || key[0] == 0x53)
            scratch.removeAll(keepingCapacity: true)
            guard p.value(into: &scratch, keep: wanted, depth: 0) else { return nil }
            if wanted {
                key.withUnsafeBufferPointer { k in scratch.withUnsafeBufferPointer { v in fields.set(k, v) } }
            }
            guard p.skipSpace() else { return nil }
            if p.take(0x2C) { continue }
            if p.take(0x7D) { break }
            return nil
        }
        return p.atEnd() ? fields : nil
    }
}

/// A byte cursor over JSON text with the few productions the journal's JSON uses.
struct JSONCursor {
    let b: UnsafeBufferPointer<UInt8>
    var i = 0
    init(_ b: UnsafeBufferPointer<UInt8>) { self.b = b }

    @inline(__always) mutating func skipSpace() -> Bool {
        while i < b.count, b[i] == 0x20 || b[i] == 0x09 || b[i] == 0x0A || b[i] == 0x0D { i += 1 }
        return true
    }
    @inline(__always) mutating func take(_ c: UInt8) -> Bool {
        guard i < b.count, b[i] == c else { return false }
        i += 1
        return true
    }
    mutating func atEnd() -> Bool { _ = skipSpace(); return i == b.count }

    /// A JSON string, unescaped into `out` (UTF-8).
    mutating func string(into out: inout [UInt8]) -> Bool {
        out.removeAll(keepingCapacity: true)
        return stringValue(into: &out)
    }

    private mutating func stringValue(into out: inout [UInt8]) -> Bool {
        guard take(0x22) else { return false }
        while i < b.count {
            let c = b[i]
            if c == 0x22 { i += 1; return true }
            if c < 0x20 { return false }                     // raw control characters are not JSON
            if c != 0x5C { out.append(c); i += 1; continue }
            guard i + 1 < b.count else { return false }
            let e = b[i + 1]
            i += 2
            switch e {
            case 0x22, 0x5C, 0x2F: out.append(e)
            case 0x62: out.append(0x08)
            case 0x66: out.append(0x0C)
            case 0x6E: out.append(0x0A)
            case 0x72: out.append(0x0D)
            case 0x74: out.append(0x09)
            case 0x75:
                guard var u = hex4() else { return false }
                if (0xD800..<0xDC00).contains(u) {
                    // A surrogate pair: "\\uD83D\\uDE00".
                    guard i + 1 < b.count, b[i] == 0x5C, b[i + 1] == 0x75 else { return false }
                    i += 2
                    guard let lo = hex4(), (0xDC00..<0xE000).contains(lo) else { return false }
                    u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00)
                } else if (0xDC00..<0xE000).contains(u) { return false }
                guard let scalar = Unicode.Scalar(u) else { return false }
                out.append(contentsOf: UTF8.encode(scalar)!)
            default: return false
            }
        }
        return false
    }

    private mutating func hex4() -> UInt32? {
        guard i + 4 <= b.count else { return nil }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = b[i]
            let d: UInt32
            switch c {
            case 0x30...0x39: d = UInt32(c - 0x30)
            case 0x61...0x66: d = UInt32(c - 0x61 + 10)
            case 0x41...0x46: d = UInt32(c - 0x41 + 10)
            default: return nil
            }
            v = v << 4 | d
            i += 1
        }
        return v
    }

    /// A value. With `out`: a string's bytes, a byte array's bytes, or the first element of
    /// a multi-value array; nothing for null. Nesting is bounded (the journal nests two deep).
    mutating func value(into out: inout [UInt8], keep: Bool, depth: Int) -> Bool {
        guard depth < 16, i < b.count else { return false }
        switch b[i] {
        case 0x22:
            if keep { return stringValue(into: &out) }
            return skipString()
        case 0x6E:                                                    // null
            return literal("null")
        case 0x74: return literal("true")
        case 0x66: return literal("false")
        case 0x7B:                                                    // a nested object (not the journal's; QMP's)
            i += 1
            _ = skipSpace()
            if take(0x7D) { return true }
            var k: [UInt8] = []
            while true {
                _ = skipSpace()
                guard string(into: &k) else { return false }
                _ = skipSpace()
                guard take(0x3A) else { return false }
                _ = skipSpace()
                guard value(into: &out, keep: false, depth: depth + 1) else { return false }
                _ = skipSpace()
                if take(0x2C) { continue }
                return take(0x7D)
            }
        case 0x5B:                                                    // [
            i += 1
            _ = skipSpace()
            if take(0x5D) { return true }
            var first = true
            var bytesArray = true
            while true {
                _ = skipSpace()
                guard i < b.count else { return false }
                if bytesArray, b[i] >= 0x30 && b[i] <= 0x39 {
                    let at = i
                    if let n = number(), n <= 255, i >= b.count || (b[i] != 0x2E && b[i] != 0x65 && b[i] != 0x45) {
                        if keep { out.append(UInt8(n)) }
                    } else {
                        // Not a byte array after all (a number array of some other JSON).
                        i = at
                        bytesArray = false
                        guard anyNumber() else { return false }
                    }
                } else {
                    bytesArray = false
                    // Several values of one field: keep the first.
                    guard value(into: &out, keep: keep && first, depth: depth + 1) else { return false }
                }
                first = false
                _ = skipSpace()
                if take(0x2C) { continue }
                if take(0x5D) { return true }
                return false
            }
        default:
            return anyNumber()
        }
    }

    private mutating func literal(_ word: StaticString) -> Bool {
        let n = word.utf8CodeUnitCount
        guard i + n <= b.count, memcmp(b.baseAddress! + i, word.utf8Start, n) == 0 else { return false }
        i += n
        return true
    }

    /// Any JSON number (skipped): -?digits(.digits)?([eE][+-]?digits)?
    private mutating func anyNumber() -> Bool {
        let start = i
        _ = take(0x2D)
        let digitsStart = i
        while i < b.count, b[i] >= 0x30 && b[i] <= 0x39 { i += 1 }
        guard i > digitsStart else { i = start; return false }
        if take(0x2E) { while i < b.count, b[i] >= 0x30 && b[i] <= 0x39 { i += 1 } }
        if i < b.count, b[i] == 0x65 || b[i] == 0x45 {
            i += 1
            if i < b.count, b[i] == 0x2B || b[i] == 0x2D { i += 1 }
            while i < b.count, b[i] >= 0x30 && b[i] <= 0x39 { i += 1 }
        }
        return true
    }

    private mutating func skipString() -> Bool {
        // Strings not wanted are only scanned: escapes are skipped pairwise.
        guard take(0x22) else { return false }
        while i < b.count {
            let c = b[i]
            if c == 0x22 { i += 1; return true }
            if c < 0x20 { return false }
            i += c == 0x5C ? 2 : 1
        }
        return false
    }

    private mutating func number() -> UInt64? {
        var n: UInt64 = 0
        let start = i
        while i < b.count, b[i] >= 0x30 && b[i] <= 0x39 {
            let (m, o1) = n.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(UInt64(b[i] - 0x30))
            if o1 || o2 { return nil }
            n = a
            i += 1
        }
        return i > start ? n : nil
    }
}

/// Reassembles journal records that are not one line each and hands every record's kernel
/// message to the reader: `-o json`/`json-seq`/`json-sse` (one object per line, after RS 0x1E
/// or "data: "), `-o json-pretty` (an object over many lines, `{` and `}` alone on theirs) and
/// `-o export` (fields, binary ones length-prefixed, records separated by an empty line).
/// Memory is bounded: a pretty object over `maxRecord` bytes and binary data over it are
/// skipped and counted (their length is still followed exactly, so the next record is found).
struct JournalRecordReader {
    static let maxRecord = 256 << 10

    private enum Mode { case idle, pretty, export, exportBinary }
    private var mode = Mode.idle
    private var startLine = 0
    private var buffer: [UInt8] = []
    private var oversize = false
    private var fields = JournalFields()
    private var malformed = false
    private var binaryName: [UInt8] = []
    /// Bytes of the current binary field seen so far (length prefix included) and expected.
    private var binarySeen: UInt64 = 0
    private var binaryNeed: UInt64?
    /// Lines of the current binary field read so far (after the first, each adds its "\n").
    private var binaryLineCount = 0
    private var json = JournalJSONObject()

    var active: Bool { mode != .idle }

    /// Whether `line` can begin a record (cheap: the first byte first).
    @inline(__always)
    static func mayStart(_ line: LineBytes) -> Bool {
        switch line[0] {
        case 0x7B, 0x1E: return true                                  // "{", RS
        case 0x64: return line.matches("data: {", at: 0)              // json-sse
        case 0x5F:
            return line.matches("__CURSOR=", at: 0) || line.matches("__REALTIME_TIMESTAMP=", at: 0)
                || line.matches("__MONOTONIC_TIMESTAMP=", at: 0) || line.matches("_BOOT_ID=", at: 0)
        default: return false
        }
    }

    /// True when the line belonged to a journal record (read, or held for the record).
    mutating func consume<Sink: GuestLogEventSink>(_ line: LineBytes, number: Int, reader: inout GuestLogReader,
                                                   into sink: inout Sink) -> Bool {
        switch mode {
        case .pretty:
            if line.count == 1, line[0] == 0x7D {                     // "}" closes the object
                append(line, newline: true)
                mode = .idle
                if oversize { reader.skippedJournalRecord(); return true }
                let parsed = buffer.withUnsafeBufferPointer { json.parse($0) }
                if let f = parsed { reader.journalRecord(f, style: .journalJSON, number: startLine, into: &sink) }
                else { reader.skippedJournalRecord() }
                return true
            }
            append(line, newline: true)
            return true
        case .export:
            if line.count == 0 {                                      // the record ends
                finishExport(reader: &reader, into: &sink)
                return true
            }
            exportField(line)
            return true
        case .exportBinary:
            binaryLine(line)
            return true
        case .idle:
            break
        }
        let first = line[0]
        if first == 0x7B || first == 0x1E || first == 0x64 {
            var body = line.bytes
            if first == 0x1E { body = UnsafeBufferPointer(rebasing: body[1...]) }
            else if first == 0x64 { body = UnsafeBufferPointer(rebasing: body[6...]) }
            if body.count == 1, body[0] == 0x7B {
                mode = .pretty
                startLine = number
                buffer.removeAll(keepingCapacity: true)
                oversize = false
                buffer.append(0x7B)
                return true
            }
            guard let f = json.parse(body) else { return false }      // not JSON: text after all
            reader.journalRecord(f, style: .journalJSON, number: number, into: &sink)
            return true
        }
        mode = .export
        startLine = number
        fields = JournalFields()
        malformed = false
        exportField(line)
        return true
    }

    mutating func finish<Sink: GuestLogEventSink>(reader: inout GuestLogReader, into sink: inout Sink) {
        switch mode {
        case .export, .exportBinary:
            if mode == .exportBinary { malformed = true }
            finishExport(reader: &reader, into: &sink)
        case .pretty: reader.skippedJournalRecord()                  // cut off before its "}"
        case .idle: break
        }
        mode = .idle
    }

    private mutating func append(_ line: LineBytes, newline: Bool) {
        guard !oversize else { return }
        if buffer.count + line.count + 1 > Self.maxRecord { oversize = true; buffer.removeAll(); return }
        if newline { buffer.append(0x0A) }
        buffer.append(contentsOf: line.bytes)
    }

    private mutating func finishExport<Sink: GuestLogEventSink>(reader: inout GuestLogReader, into sink: inout Sink) {
        mode = .idle
        if malformed { reader.skippedJournalRecord(); return }
        reader.journalRecord(fields, style: .journalExport, number: startLine, into: &sink)
    }

    @inline(__always)
    private static func isNameByte(_ c: UInt8) -> Bool {
        (c >= 0x41 && c <= 0x5A) || (c >= 0x30 && c <= 0x39) || c == 0x5F
    }

    private mutating func exportField(_ line: LineBytes) {
        guard !malformed else { return }
        if let eq = line.find(byte: 0x3D) {
            let name = UnsafeBufferPointer(rebasing: line.bytes[0..<eq])
            guard eq > 0, name.allSatisfy(Self.isNameByte) else { malformed = true; return }
            fields.set(name, UnsafeBufferPointer(rebasing: line.bytes[(eq + 1)...]))
            return
        }
        // "NAME" alone: a binary field follows (64-bit little-endian length, data, "\n").
        guard line.count > 0, line.count <= 64, line.bytes.allSatisfy(Self.isNameByte) else { malformed = true; return }
        binaryName = Array(line.bytes)
        buffer.removeAll(keepingCapacity: true)
        binarySeen = 0
        binaryNeed = nil
        binaryLineCount = 0
        oversize = false
        mode = .exportBinary
    }

    /// One more line of a binary field's bytes (the "\n" between lines is part of them).
    private mutating func binaryLine(_ line: LineBytes) {
        let continuing = binaryLineCount > 0
        binaryLineCount += 1
        let add = UInt64(line.count) + (continuing ? 1 : 0)
        binarySeen += add                                           // ≤ total input: cannot overflow
        if !oversize {
            if continuing { buffer.append(0x0A) }
            buffer.append(contentsOf: line.bytes)
        }
        if binaryNeed == nil, buffer.count >= 8 {
            var n: UInt64 = 0
            for k in 0..<8 { n |= UInt64(buffer[k]) << (8 * UInt64(k)) }
            // 8 + n must not overflow; a field over the record limit is followed but not kept.
            guard n <= UInt64(Int64.max) - 8 else { malformed = true; mode = .export; return }
            binaryNeed = 8 + n
            if n > UInt64(Self.maxRecord) { oversize = true; buffer.removeAll() }
        }
        guard let need = binaryNeed else { return }
        if binarySeen < need { return }
        mode = .export
        if binarySeen > need || oversize {
            // Bytes lost (a "\r" before "\n" or an overlong line the splitter dropped), or too big.
            if binarySeen > need { malformed = true }
            return
        }
        buffer.withUnsafeBufferPointer { b in
            binaryName.withUnsafeBufferPointer { nm in fields.set(nm, UnsafeBufferPointer(rebasing: b[8...])) }
        }
    }
}
