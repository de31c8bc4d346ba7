/// Parses QEMU trace-events definition files (`trace-events`, `trace-events-all`):
///
///     [disable|vcpu|tcg ...] name(type arg, ...) "format"
///
/// with the same rules as QEMU's tracetool (scripts/tracetool/__init__.py): `#` comments,
/// `void` for no arguments, the type of a pointer argument is everything up to the last `*`.
/// Lines that do not parse are skipped and counted, never fatal.
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
        var lineNumber = 0
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = rawLine.trimmedBlanks
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
            let arg = part.trimmedBlanks
            if arg.isEmpty { return nil }                    // tracetool: "Empty argument"
            if arg == "void" { continue }
            let type: String, name: String
            if let star = arg.lastIndex(of: "*") {
                type = String(arg[...star])
                name = String(arg[arg.index(after: star)...].trimmedBlanks)
            } else {
                guard let space = arg.lastIndex(where: { $0 == " " || $0 == "\t" }) else { return nil }
                type = String(arg[..<space].trimmedBlanks)
                name = String(arg[arg.index(after: space)...])
            }
            guard isIdentifier(Substring(name)), !type.isEmpty else { return nil }
            arguments.append(TraceArgument(type: type, name: name))
        }
        guard arguments.count <= TraceEvent.maxArguments else { return nil }
        let rawFormat = String(line[line.index(after: close)...].trimmedBlanks)
        if !rawFormat.isEmpty && !rawFormat.hasPrefix("\"") { return nil }
        return Entry(name: String(nameSub), properties: properties, arguments: arguments,
                     rawFormat: rawFormat, line: number)
    }

    static func isIdentifier<S: StringProtocol>(_ s: S) -> Bool {
        !s.isEmpty && s.utf8.allSatisfy { TraceFormatString.isIdentifier($0) }
    }
}

import Foundation
