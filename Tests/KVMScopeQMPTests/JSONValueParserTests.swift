import Foundation
import Testing
import KVMScopeTestSupport
import KVMScopeCore
@testable import KVMScopeQMP

/// The QMP reader's own JSON parser against the JSONDecoder it replaced: the same value, or
/// both refusing, on the edge cases where JSON parsers differ and on seeded random documents
/// and their one-byte mutations.
@Suite struct JSONValueParserTests {
    static func reference(_ text: String) -> JSONValue? {
        try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
    }

    static func nested(_ n: Int) -> String { String(repeating: "[", count: n) + String(repeating: "]", count: n) }

    static let edgeCases: [String] = [
        "{}", "[]", "1", "-0", "-0.0", "0", "00", "01", "1.", ".5", "-", "+1", "1e", "1e+", "1E5", "1.5E+3", "1e-400",
        "0e-400", "0.0e999", "5e-324", "1e-310", "1.7976931348623157e308", "1.8e308", "12345678901234567890",
        "0.0000000000000000000000000000000000000000001e-300", "-1e-400",
        "true", "false", "null", "tru", "nul", "True", "[1 2]", "[1,]", "[,1]", "{\"a\" 1}", "{\"a\":1,}", "{,}",
        "{\"a\":1,\"a\":2}", "[,]", "[1,,]", "{\"a\":1,,}", "[1, ]", "{\"\": 1}", "{1: 2}", "\"\\u0000\"", "\"a\tb\"", "\"\\ud83d\\ude00\"", "\"\\uDC00\"",
        "\"\\uD800\\u0041\"", "\"\\uD800\"", "\"\\u12\"", "\"\\u12G4\"", "\"\\/\"", "\"\\x\"", "\"\\\"", "\"abc", "\"é\"",
        "\"\\u00e9\"", "1 x", "1  ", " \t\r\n1", "1\u{0C}", "\u{0C}1", "[1]]", "{\"a\":{\"b\":[true,false,null]}}",
        nested(511), nested(512), nested(513), "{\"a\":" + nested(511) + "}", "{\"a\":" + nested(512) + "}", "",
        " ", "[\"\\b\\f\\n\\r\\t\\\"\\\\\"]",
    ]

    @Test(arguments: edgeCases)
    func edgeCasesAsJSONDecoder(_ text: String) {
        #expect(JSONValueParser.parse(text) == Self.reference(text), "\(text.prefix(80))")
    }

    /// The one place this parser is stricter than JSONDecoder: JSONDecoder keeps a repeated
    /// key's first value and never decodes the later one, so a bad escape there passes. That
    /// document is no JSON (RFC 8259 section 7): refused.
    @Test func aRepeatedKeysBadValueIsRefused() {
        let text = "{\"a\":\"x\",\"a\":\"\\u12G4\"}"
        #expect(Self.reference(text) == .object(["a": .string("x")]))
        #expect(JSONValueParser.parse(text) == nil)
        #expect(JSONValueParser.parse("{\"a\":\"x\",\"a\":\"y\"}") == .object(["a": .string("x")]))
    }

    /// JSONDecoder (swift-foundation, Swift 6.3) refuses exactly `0e1` … `0e9` (and `0E…`),
    /// though RFC 8259 section 6 allows them and it takes `0e0`, `0e10`, `-0e1` and `0.0e1`.
    /// They are zero here.
    @Test func zeroWithAOneDigitExponentIsZero() {
        for text in ["0e1", "0E5", "[0e9]"] {
            #expect(Self.reference(text) == nil)
            #expect(JSONValueParser.parse(text) != nil, "\(text)")
        }
        #expect(JSONValueParser.parse("0e1") == .number(0))
    }

    static func hasFoundationsZeroExponentQuirk(_ text: String) -> Bool {
        text.range(of: "(^|[^-0-9.])0[eE][1-9]($|[^0-9])", options: .regularExpression) != nil
    }

    static func document(_ g: inout SplitMix64, depth: Int = 0) -> String {
        func ws() -> String { ["", "", " ", "\n", "\t ", "\r\n"][Int.random(in: 0..<6, using: &g)] }
        func str() -> String {
            let pieces = ["a", "Z", " ", "é", "😀", "\\n", "\\\"", "\\\\", "\\/", "\\u0041", "\\u00e9", "\\ud83d\\ude00", "\\t", "device", "event"]
            return "\"" + (0..<Int.random(in: 0..<5, using: &g)).map { _ in pieces.randomElement(using: &g)! }.joined() + "\""
        }
        let kind = depth > 4 ? Int.random(in: 0..<4, using: &g) : Int.random(in: 0..<6, using: &g)
        switch kind {
        case 0:
            return ["0", "-0", "1", "-17", "3.25", "1e3", "2.5E-7", "1e308", "123456789012345678", "0.1", "7e-320"]
                .randomElement(using: &g)!
        case 1: return str()
        case 2: return ["true", "false", "null"].randomElement(using: &g)!
        case 3: return str()
        case 4:
            let n = Int.random(in: 0..<4, using: &g)
            return "[" + ws() + (0..<n).map { _ in ws() + document(&g, depth: depth + 1) + ws() }.joined(separator: ",") + "]"
        default:
            // Keys that one changed byte cannot make equal: a repeated key's later value is
            // never decoded by JSONDecoder, so an invalid escape in it goes unseen there
            // (below, `aRepeatedKeysBadValueIsRefused`).
            let keys = ["device", "event", "node-name", "qom-path", "é😀", "\\tab\\"].shuffled(using: &g).prefix(Int.random(in: 0..<4, using: &g))
            return "{" + ws() + keys.map { k in ws() + "\"" + k + "\"" + ws() + ":" + ws() + document(&g, depth: depth + 1) + ws() }
                .joined(separator: ",") + "}"
        }
    }

    @Test(arguments: [1, 2, 3] as [UInt64])
    func randomDocumentsAndTheirMutationsAsJSONDecoder(seed: UInt64) {
        var g = SplitMix64(seed: seed)
        let significant = Array("{}[],:\"\\-+.eE0123456789 tnfu\t".utf8)
        var accepted = 0
        for _ in 0..<1500 {
            let doc = Self.document(&g)
            #expect(JSONValueParser.parse(doc) == Self.reference(doc), "\(doc)")
            if JSONValueParser.parse(doc) != nil { accepted += 1 }
            var bytes = Array(doc.utf8)
            guard !bytes.isEmpty else { continue }
            let at = Int.random(in: 0..<bytes.count, using: &g)
            switch Int.random(in: 0..<3, using: &g) {
            case 0: bytes.remove(at: at)
            case 1: bytes.insert(significant.randomElement(using: &g)!, at: at)
            default: bytes[at] = significant.randomElement(using: &g)!
            }
            let mutated = String(decoding: bytes, as: UTF8.self)
            if Self.hasFoundationsZeroExponentQuirk(mutated) { continue }
            #expect(JSONValueParser.parse(mutated) == Self.reference(mutated), "\(mutated)")
        }
        #expect(accepted > 1000)
    }
}
