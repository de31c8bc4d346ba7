/// The format strings of trace-events lines: C string literals glued to `PRIx64`-style macros,
/// turned into the printf format QEMU actually prints with and then into scannable pieces.
enum TraceFormatString {
    /// Joins the C literals of a trace-events format and expands inttypes.h macros the way
    /// QEMU's tracetool does for SystemTap (`PRIu64` → `u`): `"sector %"PRIu64" n %zu"` →
    /// `sector %u n %zu`. For the old `tcg` events with two formats, the last one is used.
    public static func expand(_ raw: String) -> String {
        var out: [UInt8] = []
        let bytes = Array(raw.utf8)
        var i = 0
        while i < bytes.count {
            let c = bytes[i]
            if c == UInt8(ascii: "\"") {
                i += 1
                while i < bytes.count, bytes[i] != UInt8(ascii: "\"") {
                    if bytes[i] == UInt8(ascii: "\\"), i + 1 < bytes.count {
                        i += 1
                        switch bytes[i] {
                        case UInt8(ascii: "n"): out.append(0x0A)
                        case UInt8(ascii: "t"): out.append(0x09)
                        case UInt8(ascii: "r"): out.append(0x0D)
                        default: out.append(bytes[i])
                        }
                    } else {
                        out.append(bytes[i])
                    }
                    i += 1
                }
                i += 1
            } else if c == UInt8(ascii: ",") {
                out.removeAll()            // tcg: `"translation fmt", "execution fmt"`
                i += 1
            } else if isIdentifier(c) {
                let start = i
                while i < bytes.count, isIdentifier(bytes[i]) { i += 1 }
                let macro = bytes[start..<i]
                // PRId64, PRIx32, PRIxPTR, PRIu8...: the fourth letter is the conversion.
                if macro.count >= 4, macro.starts(with: Array("PRI".utf8)) {
                    out.append(macro[start + 3])
                }
            } else {
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    @inline(__always) static func isIdentifier(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x5F
    }

    /// Splits an expanded printf format into literals and conversions, numbering conversions
    /// in argument order. Nil when the format cannot be scanned back reliably: the number of
    /// conversions differs from the number of arguments, or it uses `*` widths or floats.
    public static func pieces(_ format: String, arguments: [TraceArgument]) -> [TraceFormatPiece]? {
        let f = Array(format.utf8)
        var pieces: [TraceFormatPiece] = []
        var literal: [UInt8] = []
        var argument = 0
        var i = 0
        func flushLiteral() {
            if !literal.isEmpty { pieces.append(.literal(literal)); literal = [] }
        }
        while i < f.count {
            let c = f[i]
            guard c == UInt8(ascii: "%") else { literal.append(c); i += 1; continue }
            i += 1
            guard i < f.count else { return nil }
            if f[i] == UInt8(ascii: "%") { literal.append(c); i += 1; continue }
            var alternate = false, left = false
            while i < f.count, let flag = Optional(f[i]), "-+ #0".utf8.contains(flag) {
                if flag == UInt8(ascii: "#") { alternate = true }
                if flag == UInt8(ascii: "-") { left = true }
                i += 1
            }
            while i < f.count, f[i] >= 0x30, f[i] <= 0x39 { i += 1 }          // width
            if i < f.count, f[i] == UInt8(ascii: "*") { return nil }
            if i < f.count, f[i] == UInt8(ascii: ".") {                       // precision
                i += 1
                if i < f.count, f[i] == UInt8(ascii: "*") { return nil }
                while i < f.count, f[i] >= 0x30, f[i] <= 0x39 { i += 1 }
            }
            while i < f.count, "hlLqjzZt".utf8.contains(f[i]) { i += 1 }       // length
            guard i < f.count else { return nil }
            let style: TraceConversion.Style
            switch f[i] {
            case UInt8(ascii: "d"), UInt8(ascii: "i"): style = .signedDecimal
            case UInt8(ascii: "u"): style = .unsignedDecimal
            case UInt8(ascii: "x"), UInt8(ascii: "X"): style = .hex
            case UInt8(ascii: "o"): style = .octal
            case UInt8(ascii: "p"): style = .pointer
            case UInt8(ascii: "s"): style = .string
            case UInt8(ascii: "c"): style = .character
            default: return nil
            }
            i += 1
            guard argument < arguments.count else { return nil }
            flushLiteral()
            pieces.append(.conversion(TraceConversion(style: style, argument: argument,
                                                      alternate: alternate, leftJustified: left)))
            argument += 1
        }
        flushLiteral()
        return argument == arguments.count ? pieces : nil
    }
}
