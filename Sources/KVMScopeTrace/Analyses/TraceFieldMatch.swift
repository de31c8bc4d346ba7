/// `--grep FIELD=VALUE`: keeps events whose argument FIELD has VALUE. Numbers compare as
/// numbers whatever their spelling (`ret=-5`, `sector=0x800`, `sector=2048`), pointers as
/// addresses (`req=0x55d0c8a1c000`), strings exactly. Events without that argument never match.
public struct TraceFieldMatch: Sendable, Equatable, CustomStringConvertible {
    public let field: String
    public let value: String
    private let number: Int64?
    private let unsignedNumber: UInt64?

    /// Nil when `text` has no `=` or an empty field name.
    public init?(_ text: String) {
        guard let eq = text.firstIndex(of: "="), eq != text.startIndex else { return nil }
        field = String(text[..<eq])
        value = String(text[text.index(after: eq)...])
        let v = value.lowercased()
        if v.hasPrefix("0x"), let u = UInt64(v.dropFirst(2), radix: 16) {
            unsignedNumber = u
            number = Int64(bitPattern: u)
        } else if v.hasPrefix("-0x"), let u = UInt64(v.dropFirst(3), radix: 16), u <= UInt64(Int64.max) {
            number = -Int64(u)
            unsignedNumber = UInt64(bitPattern: -Int64(u))
        } else if let n = Int64(v) {
            number = n
            unsignedNumber = UInt64(bitPattern: n)
        } else if let u = UInt64(v) {
            unsignedNumber = u
            number = Int64(bitPattern: u)
        } else {
            number = nil
            unsignedNumber = nil
        }
    }

    public var description: String { "\(field)=\(value)" }

    public func matches(_ event: TraceEvent) -> Bool {
        guard let i = event.definition.argumentIndex(field) else { return false }
        switch event.value(i) {
        case let .signed(v): return number == v
        case let .unsigned(v), let .pointer(v): return unsignedNumber == v
        case let .string(s): return s == value
        }
    }
}
