import Foundation

/// How one argument of a QEMU trace event is stored and shown. Decided by the C type in the
/// trace-events line, the way QEMU's tracetool decides it (scripts/tracetool/backend/simple.py
/// `is_string`: a `char *` with exactly one `*`; any other pointer is an address).
public enum TraceArgumentKind: String, Sendable, Codable {
    case signed, unsigned, pointer, string
}

/// One argument of a trace event: `uint64_t sector`.
public struct TraceArgument: Sendable, Equatable, Codable {
    public let type: String
    public let name: String
    public let kind: TraceArgumentKind
    /// Width of the C type in bits (8, 16, 32 or 64): a signed value printed with `%x`
    /// (e.g. `int ret` as `0xfffffffb`) is sign-extended from this width.
    public let bitWidth: Int

    public init(type: String, name: String) {
        self.type = type
        self.name = name
        (kind, bitWidth) = Self.classify(type)
    }

    /// (kind, width) of a C type, on its bytes (the catalog classifies 11 000 arguments at
    /// start-up): `t` is the type without surrounding blanks, `base` its words without `*`,
    /// `const` and `volatile`, joined by one space.
    static func classify(_ type: String) -> (TraceArgumentKind, Int) {
        var type = type
        return type.withUTF8 { b -> (TraceArgumentKind, Int) in
            guard let p = b.baseAddress else { return integerKind("") }
            let (s, e) = TraceEventsFileParser.trimmed(p, 0, b.count)
            var stars = 0
            for i in s..<e where p[i] == 0x2A { stars += 1 }
            // Exactly tracetool's is_string(), so that simpletrace payloads decode as QEMU wrote them.
            if stars == 1 {
                for prefix in Self.stringPrefixes where e - s >= prefix.count {
                    if prefix.withUnsafeBufferPointer({ memcmp(p + s, $0.baseAddress!, $0.count) == 0 }) {
                        return (.string, 64)
                    }
                }
            }
            if stars > 0 { return (.pointer, 64) }
            var base: [UInt8] = []
            var i = s
            while i < e {
                while i < e, p[i] == 0x2A || p[i] == 0x20 || p[i] == 0x09 { i += 1 }
                let w = i
                while i < e, p[i] != 0x2A, p[i] != 0x20, p[i] != 0x09 { i += 1 }
                guard i > w else { continue }
                let word = UnsafeBufferPointer(start: p + w, count: i - w)
                if word.elementsEqual("const".utf8) || word.elementsEqual("volatile".utf8) { continue }
                if !base.isEmpty { base.append(0x20) }
                base.append(contentsOf: word)
            }
            return integerKind(String(decoding: base, as: UTF8.self))
        }
    }

    private static let stringPrefixes: [[UInt8]] = ["const char*", "char*", "const char *", "char *"].map { Array($0.utf8) }

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

/// A piece of an event's printf format after macro expansion: literal bytes, or one
/// conversion that prints argument `argument`.
public enum TraceFormatPiece: Sendable, Equatable {
    case literal([UInt8])
    case conversion(TraceConversion)
}

/// One `%...` conversion of a printf format, reduced to what a reader needs to scan it back.
public struct TraceConversion: Sendable, Equatable {
    public enum Style: UInt8, Sendable {
        case signedDecimal, unsignedDecimal, hex, octal, pointer, string, character
    }
    public let style: Style
    public let argument: Int
    /// `#` flag: hex printed with a `0x` prefix (except for zero).
    public let alternate: Bool
    /// `-` flag: the value is padded with trailing spaces.
    public let leftJustified: Bool
}

/// One event of QEMU's trace-events files: `virtio_blk_rw_complete(void *vdev, void *req, int ret)
/// "vdev %p req %p ret %d"`. Immutable and shared (a class so that every decoded event can point
/// at its definition without copying it).
public final class TraceEventDefinition: Sendable, CustomStringConvertible {
    /// Dense index in its catalog; readers and analyses index arrays with it.
    public let id: Int
    public let name: String
    /// `disable`, `vcpu`, `tcg`: properties written before the name.
    public let properties: [String]
    public let arguments: [TraceArgument]
    /// The format exactly as written in the file, e.g. `"vdev %p req %p sector %"PRIu64`.
    public let rawFormat: String
    /// The format after joining C string literals and expanding `PRIu64`-style macros.
    /// Computed when asked (comparing signatures, building a scanner): a catalog holds ~5000
    /// definitions and a run scans a handful, so doing it for all was start-up time (issue 19).
    public var format: String { TraceFormatString.expand(rawFormat) }
    /// The format split into literals and conversions; nil when a text reader cannot scan it
    /// back (conversions that do not match the arguments, `%*d`, floating point).
    public var pieces: [TraceFormatPiece]? { TraceFormatString.pieces(format, arguments: arguments) }
    /// Where it came from, for messages: `trace-events-all:1234` or `bundled`.
    public let origin: String
    /// For string arguments, their position among the event's strings (else -1).
    public let stringSlots: [Int]
    public let stringCount: Int

    public init(id: Int, name: String, properties: [String], arguments: [TraceArgument],
                rawFormat: String, origin: String) {
        self.id = id
        self.name = name
        self.properties = properties
        self.arguments = arguments
        self.rawFormat = rawFormat
        self.origin = origin
        var slots: [Int] = []
        var n = 0
        for a in arguments {
            if a.kind == .string { slots.append(n); n += 1 } else { slots.append(-1) }
        }
        stringSlots = slots
        stringCount = n
    }

    /// A copy with another id (catalogs renumber what they merge).
    func renumbered(_ newID: Int) -> TraceEventDefinition {
        TraceEventDefinition(id: newID, name: name, properties: properties, arguments: arguments,
                             rawFormat: rawFormat, origin: origin)
    }

    /// Index of the argument called `name`, or nil. Resolve once, then read values by index.
    public func argumentIndex(_ argumentName: String) -> Int? {
        arguments.firstIndex { $0.name == argumentName }
    }

    /// The line as it would appear in a trace-events file.
    public var description: String {
        let props = properties.isEmpty ? "" : properties.joined(separator: " ") + " "
        let args = arguments.isEmpty ? "void" : arguments.map { a in
            a.type.hasSuffix("*") ? "\(a.type)\(a.name)" : "\(a.type) \(a.name)"
        }.joined(separator: ", ")
        return "\(props)\(name)(\(args))" + (rawFormat.isEmpty ? "" : " \(rawFormat)")
    }

    /// Same signature (arguments and format), whatever the id or origin.
    public func hasSameSignature(as other: TraceEventDefinition) -> Bool {
        name == other.name && arguments == other.arguments && format == other.format
    }

    /// The record simpletrace writes when its buffer overflowed: QEMU's simpletrace.py names it
    /// `Dropped_Event(uint64_t num_events_dropped)`, and so do we.
    public static let droppedEvents = TraceEventDefinition(
        id: -1, name: "Dropped_Event",
        properties: [], arguments: [TraceArgument(type: "uint64_t", name: "num_events_dropped")],
        rawFormat: "", origin: "simpletrace")
}

extension Substring {
    /// Without leading and trailing spaces and tabs (no Foundation: catalogs parse thousands of lines).
    var trimmedBlanks: Substring {
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
