import Foundation

/// A strict RFC 8259 parser into `JSONValue`, accepting and refusing what Foundation's
/// JSONDecoder does for a `JSONValue` (checked side by side by JSONValueParserTests). Decoding
/// through JSONDecoder cost about 26 µs per QMP event — JSONValue's `init(from:)` tries the
/// kinds one by one, and each miss throws a DecodingError — which made the QMP reader the
/// slowest input of `explain` (3 MB/s). Where JSONDecoder's rules go beyond the RFC:
/// - at most 512 arrays and objects nested (deeper input is refused, never a deep recursion);
/// - a number must fit a Double: one that overflows, or underflows to zero from non-zero
///   digits (`1e-400`), is refused; `0e-400` is zero;
/// - of repeated keys in an object, the first is kept (JSONDecoder never decodes the later
///   values, so a bad escape in one passes there; here every string must be valid);
/// - a comma may follow the last element of an array or object (`[1,]`), not stand alone (`[,]`);
/// - `\u` escapes must pair surrogates.
/// JSONDecoder also refuses `0e1` … `0e9`, which RFC 8259 allows (it takes `0e0` and `0e10`);
/// they are zero here.
enum JSONValueParser {
    static let maxDepth = 512

    static func parse(_ text: String) -> JSONValue? {
        var text = text
        return text.withUTF8 { parse(UnsafeRawBufferPointer($0)) }
    }

    static func parse(_ bytes: UnsafeRawBufferPointer) -> JSONValue? {
        var p = Parser(bytes: bytes)
        p.skipWhitespace()
        guard let value = p.value(depth: 0) else { return nil }
        p.skipWhitespace()
        return p.i == bytes.count ? value : nil
    }

    private struct Parser {
        let bytes: UnsafeRawBufferPointer
        var i = 0

        init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

        @inline(__always) var atEnd: Bool { i >= bytes.count }
        @inline(__always) func peek() -> UInt8? { i < bytes.count ? bytes[i] : nil }

        mutating func skipWhitespace() {
            while i < bytes.count {
                switch bytes[i] {
                case 0x20, 0x09, 0x0A, 0x0D: i += 1
                default: return
                }
            }
        }

        mutating func value(depth: Int) -> JSONValue? {
            guard let c = peek() else { return nil }
            switch c {
            case UInt8(ascii: "{"): return depth < maxDepth ? object(depth: depth + 1) : nil
            case UInt8(ascii: "["): return depth < maxDepth ? array(depth: depth + 1) : nil
            case UInt8(ascii: "\""): return string().map(JSONValue.string)
            case UInt8(ascii: "t"): return literal("true") ? .bool(true) : nil
            case UInt8(ascii: "f"): return literal("false") ? .bool(false) : nil
            case UInt8(ascii: "n"): return literal("null") ? .null : nil
            default: return number().map(JSONValue.number)
            }
        }

        mutating func literal(_ word: StaticString) -> Bool {
            let n = word.utf8CodeUnitCount
            guard bytes.count - i >= n else { return false }
            for k in 0..<n where bytes[i + k] != word.utf8Start[k] { return false }
            i += n
            return true
        }

        mutating func object(depth: Int) -> JSONValue? {
            i += 1                                          // {
            var members: [String: JSONValue] = [:]
            skipWhitespace()
            if peek() == UInt8(ascii: "}") { i += 1; return .object(members) }
            while true {
                skipWhitespace()
                if peek() == UInt8(ascii: "}"), !members.isEmpty { i += 1; return .object(members) }     // {"a": 1,}
                guard peek() == UInt8(ascii: "\""), let key = string() else { return nil }
                skipWhitespace()
                guard peek() == UInt8(ascii: ":") else { return nil }
                i += 1
                skipWhitespace()
                guard let v = value(depth: depth) else { return nil }
                if members[key] == nil { members[key] = v }
                skipWhitespace()
                switch peek() {
                case UInt8(ascii: ","): i += 1
                case UInt8(ascii: "}"): i += 1; return .object(members)
                default: return nil
                }
            }
        }

        mutating func array(depth: Int) -> JSONValue? {
            i += 1                                          // [
            var elements: [JSONValue] = []
            skipWhitespace()
            if peek() == UInt8(ascii: "]") { i += 1; return .array(elements) }
            while true {
                skipWhitespace()
                if peek() == UInt8(ascii: "]"), !elements.isEmpty { i += 1; return .array(elements) }    // [1,]
                guard let v = value(depth: depth) else { return nil }
                elements.append(v)
                skipWhitespace()
                switch peek() {
                case UInt8(ascii: ","): i += 1
                case UInt8(ascii: "]"): i += 1; return .array(elements)
                default: return nil
                }
            }
        }

        /// At the opening quote. The input is valid UTF-8 (it comes from a String), so bytes
        /// are copied as they are; only escapes and control characters need a look.
        mutating func string() -> String? {
            i += 1
            let start = i
            while i < bytes.count {
                let c = bytes[i]
                if c == UInt8(ascii: "\"") {
                    let s = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<i]), as: UTF8.self)
                    i += 1
                    return s
                }
                if c == UInt8(ascii: "\\") { return escapedString(from: start) }
                if c < 0x20 { return nil }
                i += 1
            }
            return nil
        }

        private mutating func escapedString(from start: Int) -> String? {
            var out = [UInt8](UnsafeRawBufferPointer(rebasing: bytes[start..<i]))
            while i < bytes.count {
                let c = bytes[i]
                if c == UInt8(ascii: "\"") {
                    i += 1
                    return String(decoding: out, as: UTF8.self)
                }
                if c < 0x20 { return nil }
                guard c == UInt8(ascii: "\\") else { out.append(c); i += 1; continue }
                guard i + 1 < bytes.count else { return nil }
                let e = bytes[i + 1]
                i += 2
                switch e {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    guard let unit = hex4() else { return nil }
                    var scalar = UInt32(unit)
                    if (0xD800...0xDBFF).contains(unit) {
                        guard bytes.count - i >= 6, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") else { return nil }
                        i += 2
                        guard let low = hex4(), (0xDC00...0xDFFF).contains(low) else { return nil }
                        scalar = 0x10000 + ((UInt32(unit) - 0xD800) << 10) + (UInt32(low) - 0xDC00)
                    } else if (0xDC00...0xDFFF).contains(unit) {
                        return nil
                    }
                    guard let s = Unicode.Scalar(scalar) else { return nil }
                    out.append(contentsOf: Array(String(Character(s)).utf8))
                default: return nil
                }
            }
            return nil
        }

        private mutating func hex4() -> UInt16? {
            guard bytes.count - i >= 4 else { return nil }
            var v: UInt16 = 0
            for _ in 0..<4 {
                let c = bytes[i]
                let d: UInt8
                switch c {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): d = c - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): d = c - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): d = c - UInt8(ascii: "A") + 10
                default: return nil
                }
                v = v << 4 | UInt16(d)
                i += 1
            }
            return v
        }

        /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`, converted by strtod (glibc
        /// rounds correctly), refused when it does not fit a Double as JSONDecoder refuses it.
        mutating func number() -> Double? {
            let start = i
            var nonZeroDigit = false
            func digits() -> Int {
                let from = i
                while i < bytes.count, bytes[i] >= UInt8(ascii: "0"), bytes[i] <= UInt8(ascii: "9") {
                    if bytes[i] != UInt8(ascii: "0") { nonZeroDigit = true }
                    i += 1
                }
                return i - from
            }
            if peek() == UInt8(ascii: "-") { i += 1 }
            guard let first = peek(), first >= UInt8(ascii: "0"), first <= UInt8(ascii: "9") else { return nil }
            if first == UInt8(ascii: "0") {
                i += 1
            } else {
                _ = digits()
            }
            if peek() == UInt8(ascii: ".") {
                i += 1
                guard digits() > 0 else { return nil }
            }
            let mantissaNonZero = nonZeroDigit
            if let e = peek(), e == UInt8(ascii: "e") || e == UInt8(ascii: "E") {
                i += 1
                if let s = peek(), s == UInt8(ascii: "+") || s == UInt8(ascii: "-") { i += 1 }
                guard digits() > 0 else { return nil }
            }
            // strtod needs a NUL-terminated copy; numbers are short.
            let length = i - start
            let value: Double = withUnsafeTemporaryAllocation(of: CChar.self, capacity: length + 1) { buf in
                for k in 0..<length { buf[k] = CChar(bitPattern: bytes[start + k]) }
                buf[length] = 0
                return strtod(buf.baseAddress!, nil)
            }
            guard value.isFinite, value != 0 || !mantissaNonZero else { return nil }
            return value
        }
    }
}
