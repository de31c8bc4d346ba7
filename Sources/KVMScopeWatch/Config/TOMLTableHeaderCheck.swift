/// toml++ (TOMLKit's parser, v3) checks the key of a `key = value` line before reading it, but
/// not the key of a table header: `[?]`, `[ é]`, `[[\u{1}` reach its parse_key() with a
/// character no key starts with, and its TOML_ASSERT aborts the process (toml.hpp,
/// parser::parse_table_header → parse_key; found by WatchConfigTests' random files). So the
/// headers are checked here first, in one pass: a `[` that starts a line outside any
/// multi-line array or string opens a header, and the header must begin with a bare-key
/// character (A-Z a-z 0-9 _ -) or a quote, as TOML requires (toml.io, "Table").
enum TOMLTableHeaderCheck {
    /// The 1-based line of the first header that does not begin with a key, if any.
    static func firstHeaderWithoutKey(in text: String) -> Int? {
        var depth = 0                       // `[` of array values still open
        var multiline: UInt8? = nil         // the quote of an open """ or ''' string
        var line = 1
        let b = Array(text.utf8)
        var i = 0
        var atLineStart = true
        func startsTriple(_ q: UInt8, _ at: Int) -> Bool { at + 2 < b.count && b[at] == q && b[at + 1] == q && b[at + 2] == q }
        while i < b.count {
            let c = b[i]
            if c == 0x0A { line += 1; atLineStart = true; i += 1; continue }
            if let q = multiline {
                if c == 0x5C, q == 0x22 { i += 2; continue }            // \" inside """ ... """
                if startsTriple(q, i) { multiline = nil; i += 3 } else { i += 1 }
                atLineStart = false
                continue
            }
            if atLineStart, c == 0x20 || c == 0x09 { i += 1; continue }
            if atLineStart, depth == 0, c == 0x5B {                     // a table header
                var k = i + 1
                if k < b.count, b[k] == 0x5B { k += 1 }
                while k < b.count, b[k] == 0x20 || b[k] == 0x09 { k += 1 }
                if k < b.count, b[k] != 0x5D, !isKeyStart(b[k]) { return line }
                while i < b.count, b[i] != 0x0A { i += 1 }            // the rest of the header line
                continue
            }
            atLineStart = false
            switch c {
            case 0x23:                                                  // # comment
                while i < b.count, b[i] != 0x0A { i += 1 }
                continue
            case 0x22, 0x27:                                            // " or '
                if startsTriple(c, i) { multiline = c; i += 3; continue }
                i += 1
                while i < b.count, b[i] != c, b[i] != 0x0A {
                    if c == 0x22, b[i] == 0x5C { i += 1 }
                    i += 1
                }
                if i < b.count, b[i] == c { i += 1 }
                continue
            case 0x5B: depth += 1
            case 0x5D: depth = max(0, depth - 1)
            default: break
            }
            i += 1
        }
        return nil
    }

    static func isKeyStart(_ c: UInt8) -> Bool {
        (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39) || c == 0x5F || c == 0x2D
            || c == 0x22 || c == 0x27
    }
}
