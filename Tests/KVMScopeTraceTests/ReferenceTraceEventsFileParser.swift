import Foundation
@testable import KVMScopeTrace

// The trace-events parser and the argument-type classification as they were on main 8d64d68,
// before the byte-level rewrite (issue 19), kept as the reference the new code is compared
// with: same entries, same bad lines, same argument kinds and widths on every input.

/// The old Character-level `TraceEventsFileParser`.
struct ReferenceTraceEventsFileParser {
    typealias Entry = TraceEventsFileParser.Entry
    private(set) var entries: [Entry] = []
    /// 1-based numbers of lines that looked like definitions but did not parse.
    private(set) var badLines: [Int] = []

    init(text: String) {
        var lineNumber = 0
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = rawLine.referenceTrimmedBlanks
            if line.isEmpty || line.hasPrefix("#") { continue }
            if let entry = Self.parse(line, line: lineNumber) { entries.append(entry) } else { badLines.append(lineNumber) }
        }
    }

    static func parse(_ line: Substring, line number: Int) -> Entry? {
        guard let open = line.firstIndex(of: "("),
              let close = line[open...].firstIndex(of: ")") else { return nil }
        let head = line[..<open].split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard let nameSub = head.last, isIdentifier(nameSub) else { return nil }
        let properties = head.dropLast().map(String.init)
        guard properties.allSatisfy(isIdentifier) else { return nil }
        var arguments: [TraceArgument] = []
        let argText = line[line.index(after: open)..<close]
        for part in argText.split(separator: ",", omittingEmptySubsequences: false) {
            let arg = part.referenceTrimmedBlanks
            if arg.isEmpty { return nil }                    // tracetool: "Empty argument"
            if arg == "void" { continue }
            let type: String, name: String
            if let star = arg.lastIndex(of: "*") {
                type = String(arg[...star])
                name = String(arg[arg.index(after: star)...].referenceTrimmedBlanks)
            } else {
                guard let space = arg.lastIndex(where: { $0 == " " || $0 == "\t" }) else { return nil }
                type = String(arg[..<space].referenceTrimmedBlanks)
                name = String(arg[arg.index(after: space)...])
            }
            guard isIdentifier(Substring(name)), !type.isEmpty else { return nil }
            arguments.append(TraceArgument(type: type, name: name))
        }
        guard arguments.count <= TraceEvent.maxArguments else { return nil }
        let rawFormat = String(line[line.index(after: close)...].referenceTrimmedBlanks)
        if !rawFormat.isEmpty && !rawFormat.hasPrefix("\"") { return nil }
        return Entry(name: String(nameSub), properties: properties, arguments: arguments,
                     rawFormat: rawFormat, line: number)
    }

    static func isIdentifier<S: StringProtocol>(_ s: S) -> Bool {
        !s.isEmpty && s.utf8.allSatisfy { TraceFormatString.isIdentifier($0) }
    }
}

/// The old `TraceArgument.init(type:name:)`: (kind, bitWidth) of a C type.
enum ReferenceTraceArgumentKind {
    static func classify(_ type: String) -> (TraceArgumentKind, Int) {
        let kind: TraceArgumentKind, bitWidth: Int
        let t = Substring(type).referenceTrimmedBlanks
        let stars = t.utf8.reduce(0) { $0 + ($1 == UInt8(ascii: "*") ? 1 : 0) }
        let base = t.split(whereSeparator: { $0 == "*" || $0 == " " || $0 == "\t" })
            .filter { $0 != "const" && $0 != "volatile" }
            .joined(separator: " ")
        // Exactly tracetool's is_string(), so that simpletrace payloads decode as QEMU wrote them.
        let stringPrefixes = ["const char*", "char*", "const char *", "char *"]
        if stars == 1 && stringPrefixes.contains(where: { t.hasPrefix($0) }) {
            kind = .string
            bitWidth = 64
        } else if stars > 0 {
            kind = .pointer
            bitWidth = 64
        } else {
            (kind, bitWidth) = integerKind(base)
        }
        return (kind, bitWidth)
    }

    /// Signedness and width of the integer types tracetool allows (ALLOWED_TYPES).
    static func integerKind(_ base: String) -> (TraceArgumentKind, Int) {
        switch base {
        case "uint8_t", "unsigned char": return (.unsigned, 8)
        case "int8_t", "char", "signed char": return (.signed, 8)
        case "bool", "_Bool": return (.unsigned, 8)
        case "uint16_t", "unsigned short", "unsigned short int": return (.unsigned, 16)
        case "int16_t", "short", "short int", "signed short": return (.signed, 16)
        case "uint32_t", "unsigned", "unsigned int": return (.unsigned, 32)
        case "int32_t", "int", "signed", "signed int": return (.signed, 32)
        case "uint64_t", "size_t", "uintptr_t", "unsigned long", "unsigned long long",
             "unsigned long int", "unsigned long long int": return (.unsigned, 64)
        default:
            // int64_t, ssize_t, ptrdiff_t, long, long long, and anything unknown.
            return (base.hasPrefix("u") || base.hasPrefix("unsigned") ? .unsigned : .signed, 64)
        }
    }
}

extension Substring {
    /// The old trimming, Character by Character.
    var referenceTrimmedBlanks: Substring {
        var start = startIndex, end = endIndex
        while start < end, self[start] == " " || self[start] == "\t" || self[start] == "\r" { start = index(after: start) }
        while end > start {
            let before = index(before: end)
            guard self[before] == " " || self[before] == "\t" || self[before] == "\r" else { break }
            end = before
        }
        return self[start..<end]
    }
}
