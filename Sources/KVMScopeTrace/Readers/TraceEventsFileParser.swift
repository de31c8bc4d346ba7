/// Parses QEMU trace-events definition files (`trace-events`, `trace-events-all`):
///
///     [disable|vcpu|tcg ...] name(type arg, ...) "format"
///
/// with the same rules as QEMU's tracetool (scripts/tracetool/__init__.py): `#` comments,
/// `void` for no arguments, the type of a pointer argument is everything up to the last `*`.
/// Lines that do not parse are skipped and counted, never fatal.
///
/// Works on the UTF-8 bytes: every `trace` run parses the installed trace-events-all (6 000
/// lines), and doing it Character by Character was 0.1 s of start-up (issue 19). Every byte
/// the grammar looks at is ASCII, so the result is the one the Character-level parser gave
/// (kept as the reference in the tests), except that a `\r\n` line end now ends a line.
struct TraceEventsFileParser {
    public struct Entry: Equatable {
        public var name: String
        public var properties: [String]
        public var arguments: [TraceArgument]
        public var rawFormat: String
        public var line: Int
    }

    public private(set) var entries: [Entry] = []
    /// 1-based numbers of lines that looked like definitions but did not parse.
    public private(set) var badLines: [Int] = []

    public init(text: String) {
        var text = text
        text.withUTF8 { bytes in
            guard let base = bytes.baseAddress else { return }
            let n = bytes.count
            var lineNumber = 0
            var start = 0
            while start <= n {
                var end = start
                while end < n, base[end] != 0x0A { end += 1 }
                lineNumber += 1
                let (s, e) = Self.trimmed(base, start, end)
                if s < e, base[s] != 0x23 {                         // not blank, not `#`
                    if let entry = Self.parse(base, s, e, line: lineNumber) { entries.append(entry) }
                    else { badLines.append(lineNumber) }
                }
                start = end + 1
            }
        }
    }

    @inline(__always) static func isBlank(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 || c == 0x0D }
    @inline(__always) static func isSpaceOrTab(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 }

    /// `p[start..<end]` without leading and trailing spaces, tabs and carriage returns.
    @inline(__always)
    static func trimmed(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> (Int, Int) {
        var s = start, e = end
        while s < e, isBlank(p[s]) { s += 1 }
        while e > s, isBlank(p[e - 1]) { e -= 1 }
        return (s, e)
    }

    static func string(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> String {
        String(decoding: UnsafeBufferPointer(start: p + start, count: end - start), as: UTF8.self)
    }

    static func isIdentifier(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> Bool {
        guard start < end else { return false }
        for i in start..<end where !TraceFormatString.isIdentifier(p[i]) { return false }
        return true
    }

    /// One trimmed, non-comment line `p[start..<end]`.
    static func parse(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int, line number: Int) -> Entry? {
        var open = start
        while open < end, p[open] != 0x28 { open += 1 }             // '('
        guard open < end else { return nil }
        var close = open + 1
        while close < end, p[close] != 0x29 { close += 1 }          // ')'
        guard close < end else { return nil }
        // The words before `(`: properties, then the name.
        var words: [(Int, Int)] = []
        var i = start
        while i < open {
            while i < open, isSpaceOrTab(p[i]) { i += 1 }
            let w = i
            while i < open, !isSpaceOrTab(p[i]) { i += 1 }
            if i > w { words.append((w, i)) }
        }
        guard let (nameStart, nameEnd) = words.last, isIdentifier(p, nameStart, nameEnd) else { return nil }
        var properties: [String] = []
        for (ws, we) in words.dropLast() {
            guard isIdentifier(p, ws, we) else { return nil }
            properties.append(string(p, ws, we))
        }
        var arguments: [TraceArgument] = []
        var partStart = open + 1
        while partStart <= close {
            var partEnd = partStart
            while partEnd < close, p[partEnd] != 0x2C { partEnd += 1 }   // ','
            let (a, b) = trimmed(p, partStart, partEnd)
            partStart = partEnd + 1
            if a == b { return nil }                                  // tracetool: "Empty argument"
            if b - a == 4, p[a] == 0x76, p[a + 1] == 0x6F, p[a + 2] == 0x69, p[a + 3] == 0x64 { continue }  // void
            var star = b - 1
            while star >= a, p[star] != 0x2A { star -= 1 }            // the last '*'
            let typeRange: (Int, Int), nameRange: (Int, Int)
            if star >= a {
                typeRange = (a, star + 1)
                nameRange = trimmed(p, star + 1, b)
            } else {
                var space = b - 1
                while space >= a, !isSpaceOrTab(p[space]) { space -= 1 }
                guard space >= a else { return nil }
                typeRange = trimmed(p, a, space)
                nameRange = (space + 1, b)
            }
            guard isIdentifier(p, nameRange.0, nameRange.1), typeRange.0 < typeRange.1 else { return nil }
            arguments.append(TraceArgument(type: string(p, typeRange.0, typeRange.1),
                                           name: string(p, nameRange.0, nameRange.1)))
        }
        guard arguments.count <= TraceEvent.maxArguments else { return nil }
        let (fs, fe) = trimmed(p, close + 1, end)
        if fs < fe && p[fs] != 0x22 { return nil }                     // '"'
        return Entry(name: string(p, nameStart, nameEnd), properties: properties, arguments: arguments,
                     rawFormat: string(p, fs, fe), line: number)
    }
}
