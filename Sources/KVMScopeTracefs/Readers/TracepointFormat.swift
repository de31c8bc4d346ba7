import Foundation

/// A tracepoint's `format` file (tracefs `events/SYSTEM/EVENT/format`): its id, the layout of
/// its binary record, its print format and the `__print_symbolic` tables in it. This is how
/// kvmscope reads binary records and names enum values without hard-coding any kernel
/// version's layout or numbering:
///
///     name: kfree_skb
///     ID: 2310
///     format:
///         field:unsigned short common_type;  offset:0;  size:2;  signed:0;
///         ...
///         field:enum skb_drop_reason reason; offset:36; size:4;  signed:0;
///
///     print fmt: "skbaddr=%p ... reason: %s", REC->skbaddr, ..., __print_symbolic(REC->reason, { 2, "NOT_SPECIFIED" }, ...)
public struct TracepointFormat: Sendable, Equatable {
    public struct Field: Sendable, Equatable {
        /// The C declaration's type, e.g. `void *`, `unsigned short`, `enum skb_drop_reason`.
        public let type: String
        public let name: String
        public let offset: Int
        public let size: Int
        public let isSigned: Bool
        /// `common_*` fields (type, flags, preempt count, pid) every event starts with.
        public let isCommon: Bool
    }

    public let name: String
    public let id: Int
    public let fields: [Field]
    /// The format string only, e.g. `skbaddr=%p protocol=%u location=%p reason: %s`.
    public let printFormat: String
    /// `__print_symbolic(REC->FIELD, { value, "NAME" }, ...)` tables by field name.
    public let symbolTables: [String: [UInt64: String]]

    public func field(_ name: String) -> Field? { fields.first { $0.name == name } }

    /// The record size implied by the fields (end of the last one).
    public var recordSize: Int { fields.map { $0.offset + $0.size }.max() ?? 0 }

    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case missing(String)
        case badField(line: String)
        public var description: String {
            switch self {
            case let .missing(what): return "not a tracepoint format file (no \(what))"
            case let .badField(line): return "malformed field line in format file: \(line)"
            }
        }
    }

    public static func parse(_ text: String) throws -> TracepointFormat {
        var name: String?
        var id: Int?
        var fields: [Field] = []
        var printLine: String?
        var sawBlankAfterCommon = false
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("name:") {
                name = line.dropFirst(5).trimmingCharacters(in: .whitespaces)
            } else if line.hasPrefix("ID:") {
                id = Int(line.dropFirst(3).trimmingCharacters(in: .whitespaces))
            } else if line.hasPrefix("field:") {
                guard let f = parseField(line, common: !sawBlankAfterCommon) else {
                    throw ParseError.badField(line: line)
                }
                fields.append(f)
            } else if line.isEmpty {
                if !fields.isEmpty { sawBlankAfterCommon = true }
            } else if line.hasPrefix("print fmt:") {
                printLine = String(line.dropFirst("print fmt:".count)).trimmingCharacters(in: .whitespaces)
            }
        }
        guard let name else { throw ParseError.missing("name: line") }
        guard let id else { throw ParseError.missing("ID: line") }
        guard !fields.isEmpty else { throw ParseError.missing("field: lines") }
        let (fmt, args) = splitPrintFormat(printLine ?? "")
        return TracepointFormat(name: name, id: id, fields: fields, printFormat: fmt,
                                symbolTables: parseSymbolTables(args))
    }

    /// `field:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;`
    static func parseField(_ line: String, common: Bool) -> Field? {
        let parts = line.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
        guard parts.count >= 3, parts[0].hasPrefix("field:") else { return nil }
        var decl = parts[0].dropFirst("field:".count).trimmingCharacters(in: .whitespaces)
        // Arrays (`char comm[16]`) keep their brackets on the name; strip them for the name.
        if let bracket = decl.firstIndex(of: "["), decl.hasSuffix("]") {
            decl = String(decl[..<bracket])
        }
        guard let split = decl.lastIndex(where: { $0 == " " || $0 == "*" }) else { return nil }
        let fieldName = String(decl[decl.index(after: split)...])
        let type = decl[...split].trimmingCharacters(in: .whitespaces)
        var offset: Int?, size: Int?, signed = false
        for p in parts.dropFirst() {
            if p.hasPrefix("offset:") { offset = Int(p.dropFirst(7)) }
            else if p.hasPrefix("size:") { size = Int(p.dropFirst(5)) }
            else if p.hasPrefix("signed:") { signed = p.dropFirst(7) == "1" }
        }
        guard let offset, let size, !fieldName.isEmpty, offset >= 0, size > 0 else { return nil }
        return Field(type: type, name: fieldName, offset: offset, size: size, isSigned: signed,
                     isCommon: common && fieldName.hasPrefix("common_"))
    }

    /// Splits `"fmt", arg, arg` into the unquoted format and the argument text.
    static func splitPrintFormat(_ s: String) -> (String, String) {
        let chars = Array(s.utf8)
        guard let first = chars.firstIndex(of: 0x22) else { return ("", s) }
        var i = first + 1
        var fmt: [UInt8] = []
        while i < chars.count {
            let c = chars[i]
            if c == 0x5C, i + 1 < chars.count { fmt.append(chars[i + 1]); i += 2; continue }
            if c == 0x22 { break }
            fmt.append(c)
            i += 1
        }
        let rest = i + 1 < chars.count ? String(decoding: chars[(i + 1)...], as: UTF8.self) : ""
        return (String(decoding: fmt, as: UTF8.self), rest)
    }

    /// Every `__print_symbolic(REC->field, { v, "N" }, ...)` in the arguments. Entries whose
    /// value is not a number (an enum the kernel failed to resolve) are left out.
    static func parseSymbolTables(_ args: String) -> [String: [UInt64: String]] {
        var tables: [String: [UInt64: String]] = [:]
        var search = args[...]
        while let r = search.range(of: "__print_symbolic(") {
            var rest = search[r.upperBound...]
            guard let comma = rest.firstIndex(of: ",") else { break }
            var fieldExpr = rest[..<comma].trimmingCharacters(in: .whitespaces)
            if fieldExpr.hasPrefix("REC->") { fieldExpr.removeFirst(5) }
            rest = rest[rest.index(after: comma)...]
            var table: [UInt64: String] = [:]
            // Walk `{ value, "NAME" }` pairs until the closing parenthesis of the call.
            while true {
                let trimmed = rest.drop { $0 == " " || $0 == "," || $0 == "\t" || $0 == "\n" }
                guard trimmed.first == "{" else { rest = trimmed; break }
                guard let close = trimmed.firstIndex(of: "}") else { rest = trimmed[trimmed.endIndex...]; break }
                let body = trimmed[trimmed.index(after: trimmed.startIndex)..<close]
                let pieces = body.split(separator: ",", maxSplits: 1)
                if pieces.count == 2 {
                    let v = pieces[0].trimmingCharacters(in: .whitespaces)
                    let n = pieces[1].trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
                    if let value = parseCNumber(v) { table[value] = n }
                }
                rest = trimmed[trimmed.index(after: close)...]
            }
            if !table.isEmpty { tables[fieldExpr] = table }
            search = rest
        }
        return tables
    }

    /// `12`, `0x1c`, `-1` (as two's complement) — what format files print for enum values.
    static func parseCNumber(_ s: String) -> UInt64? {
        var t = s
        while t.hasSuffix("UL") || t.hasSuffix("U") || t.hasSuffix("L") { t.removeLast() }
        if t.hasPrefix("0x") || t.hasPrefix("0X") { return UInt64(t.dropFirst(2), radix: 16) }
        if t.hasPrefix("-"), let n = Int64(t) { return UInt64(bitPattern: n) }
        return UInt64(t)
    }
}

/// The ring buffer's page and record headers as the running kernel describes them in
/// `events/header_page` and `events/header_event` (offsets differ on 32-bit kernels; the
/// type_len codes have been stable since 2.6.30, but are read, not assumed).
public struct RingBufferLayout: Sendable, Equatable {
    public var timestampOffset = 0
    public var timestampSize = 8
    public var commitOffset = 8
    public var commitSize = 8
    public var dataOffset = 16
    /// Bytes of event data a page holds (4080 with 4 KiB pages on 64-bit).
    public var dataSize = 4080
    public var paddingType: UInt32 = 29
    public var timeExtendType: UInt32 = 30
    public var timeStampType: UInt32 = 31
    public var dataMaxTypeLen: UInt32 = 28
    /// Pages written by a big-endian kernel (a trace.dat from another machine): every number
    /// is byte-swapped, and the event header's bitfield puts type_len in the top 5 bits
    /// (libtraceevent kbuffer.c, `type_len = data >> 27` for KBUFFER_ENDIAN_BIG).
    public var bigEndian = false

    /// A whole sub-buffer as `trace_pipe_raw` returns it.
    public var pageSize: Int { dataOffset + dataSize }

    public init() {}

    /// Parses `header_page` (required) and `header_event` (optional: defaults are the
    /// values every kernel since 2.6.30 prints).
    public static func parse(headerPage: String, headerEvent: String?) throws -> RingBufferLayout {
        var l = RingBufferLayout()
        var seen = Set<String>()
        for raw in headerPage.split(separator: "\n") {
            let line = raw.trimmingCharacters(in: .whitespaces)
            guard line.hasPrefix("field:") else { continue }
            let parts = line.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count >= 3 else { continue }
            let decl = parts[0].dropFirst(6).trimmingCharacters(in: .whitespaces)
            let name = decl.split(separator: " ").last.map(String.init) ?? ""
            let offset = parts.first { $0.hasPrefix("offset:") }.flatMap { Int($0.dropFirst(7)) }
            let size = parts.first { $0.hasPrefix("size:") }.flatMap { Int($0.dropFirst(5)) }
            guard let offset, let size else { continue }
            switch name {
            case "timestamp": l.timestampOffset = offset; l.timestampSize = size
            case "commit": l.commitOffset = offset; l.commitSize = size
            case "data": l.dataOffset = offset; l.dataSize = size
            default: continue
            }
            seen.insert(name)
        }
        guard seen.isSuperset(of: ["timestamp", "commit", "data"]) else {
            throw TracepointFormat.ParseError.missing("timestamp/commit/data fields in header_page")
        }
        guard l.timestampSize == 8, l.commitSize == 4 || l.commitSize == 8,
              l.dataOffset >= l.commitOffset + l.commitSize, l.dataSize > 0 else {
            throw TracepointFormat.ParseError.missing("a page header layout kvmscope can read")
        }
        if let headerEvent {
            for raw in headerEvent.split(separator: "\n") {
                let line = raw.trimmingCharacters(in: .whitespaces)
                guard let eq = line.range(of: "==") else { continue }
                guard let v = UInt32(line[eq.upperBound...].trimmingCharacters(in: .whitespaces)) else { continue }
                if line.hasPrefix("padding") { l.paddingType = v }
                else if line.hasPrefix("time_extend") { l.timeExtendType = v }
                else if line.hasPrefix("time_stamp") { l.timeStampType = v }
                else if line.hasPrefix("data max type_len") { l.dataMaxTypeLen = v }
            }
        }
        return l
    }

    /// The sub-buffer size for a given `buffer_subbuf_size_kb` (6.8+ lets it be larger than a page).
    public func withPageSize(_ bytes: Int) -> RingBufferLayout {
        var l = self
        l.dataSize = max(bytes - dataOffset, 0)
        return l
    }
}
