import Foundation

/// The one JSON contract every `--json` output follows (docs/json.md): camelCase keys, every
/// documented key present (`null` when unknown), durations with their unit in the key, times as
/// `…Time` in seconds, and `schemaVersion` at the top level of every document and of every
/// JSON Lines record. Changing a key is a versioned change: bump `schemaVersion` and say so in
/// docs/json.md.
public enum JSONContract {
    public static let schemaVersion = 2
}

/// Every `--json` report goes through here, so all commands share one encoding:
/// sorted keys (stable diffs), pretty-printed, no escaped slashes, a trailing newline, and the
/// contract's `schemaVersion` added at the top level.
public enum JSONReport {
    /// `value` must encode as a JSON object (reports and JSON Lines records both are).
    public static func encode<T: Encodable>(_ value: T, pretty: Bool = true) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
                                          : [.sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        let data = try encoder.encode(Versioned(body: value))
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    /// The body's own keys plus `schemaVersion`, in one object (JSONEncoder merges the two keyed
    /// containers asked of the same encoder).
    private struct Versioned<Body: Encodable>: Encodable {
        let body: Body
        enum Key: String, CodingKey { case schemaVersion }
        func encode(to encoder: Encoder) throws {
            try body.encode(to: encoder)
            var c = encoder.container(keyedBy: Key.self)
            try c.encode(JSONContract.schemaVersion, forKey: .schemaVersion)
        }
    }
}

/// An optional that the JSON contract wants as `null` rather than left out: synthesized
/// `Encodable` skips a nil optional, but encodes this wrapper, which writes the nil.
@propertyWrapper
public struct NullEncoded<Value: Encodable>: Encodable {
    public var wrappedValue: Value?
    public init(wrappedValue: Value?) { self.wrappedValue = wrappedValue }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        if let v = wrappedValue { try c.encode(v) } else { try c.encodeNil() }
    }
}
extension NullEncoded: Sendable where Value: Sendable {}
extension NullEncoded: Equatable where Value: Equatable {}
extension NullEncoded: Hashable where Value: Hashable {}

/// Which clock a report's `…Time` values are on, written as a `clock` key beside them.
public enum ReportClock: String, Codable, Sendable {
    /// The host's wall clock: seconds since the Unix epoch.
    case wall
    /// Seconds since the machine booted (printk stamps, a kernel's uptime).
    case uptime
    /// The kernel trace clock of the capture (tracefs, perf, trace-cmd: boot-relative seconds).
    case trace
}

extension NullEncoded: Decodable where Value: Decodable {
    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        wrappedValue = c.decodeNil() ? nil : try c.decode(Value.self)
    }
}

extension KeyedDecodingContainer {
    /// A `@NullEncoded` key may also be absent (documents written before the contract).
    public func decode<V: Decodable>(_ type: NullEncoded<V>.Type, forKey key: Key) throws -> NullEncoded<V> {
        try decodeIfPresent(type, forKey: key) ?? NullEncoded(wrappedValue: nil)
    }
}
