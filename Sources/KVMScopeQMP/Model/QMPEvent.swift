/// A JSON value as QMP sends it, kept as plain data (no Foundation types leak out).
public enum JSONValue: Equatable, Sendable, Codable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public var stringValue: String? { if case let .string(s) = self { return s }; return nil }
    public var boolValue: Bool? { if case let .bool(b) = self { return b }; return nil }
    public var numberValue: Double? { if case let .number(n) = self { return n }; return nil }
    public subscript(key: String) -> JSONValue? { if case let .object(o) = self { return o[key] }; return nil }

    public init(from decoder: Decoder) throws {
        // Most likely kinds first: each failed attempt throws a DecodingError, the bulk of the
        // cost (JSONDecoder never converts between kinds, so the order changes no result).
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let o = try? c.decode([String: JSONValue].self) { self = .object(o) }
        else if let n = try? c.decode(Double.self) { self = .number(n) }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else { self = .array(try c.decode([JSONValue].self)) }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case let .bool(b): try c.encode(b)
        case let .number(n): try c.encode(n)
        case let .string(s): try c.encode(s)
        case let .array(a): try c.encode(a)
        case let .object(o): try c.encode(o)
        }
    }
}

/// One QMP event: `{"event": NAME, "data": {...}, "timestamp": {"seconds": S, "microseconds": U}}`.
public struct QMPEvent: Equatable, Sendable {
    public let name: String
    /// Host wall clock, seconds since the Unix epoch (QMP's own timestamp, or virsh's).
    public let time: Double?
    public let data: JSONValue?
    /// Line where the event starts in its input (1-based).
    public let line: Int
    /// The libvirt domain a virsh record names (`for domain 'vm1'`); nil in a raw QMP stream,
    /// which is one QEMU's by construction.
    public let domain: String?
    /// Which QEMU run of the stream the event belongs to (0 for the first): a raw stream that a
    /// client kept appending to across restarts holds a greeting after each run's SHUTDOWN.
    public let run: Int

    public init(name: String, time: Double?, data: JSONValue?, line: Int, domain: String? = nil, run: Int = 0) {
        self.name = name
        self.time = time
        self.data = data
        self.line = line
        self.domain = domain
        self.run = run
    }

    /// The BLOCK_IO_ERROR fields, when this is one.
    public var blockIOError: BlockIOError? {
        guard name == "BLOCK_IO_ERROR", let data else { return nil }
        return BlockIOError(
            device: data["device"]?.stringValue ?? "",
            nodeName: data["node-name"]?.stringValue,
            qomPath: data["qom-path"]?.stringValue,
            operation: QMPIOOperation(qmp: data["operation"]?.stringValue),
            action: QMPErrorAction(qmp: data["action"]?.stringValue),
            nospace: data["nospace"]?.boolValue ?? false,
            reason: data["reason"]?.stringValue)
    }
}

/// QEMU's BLOCK_IO_ERROR: the host side saw an I/O error and took `action` (ignore, report, stop).
public struct BlockIOError: Equatable, Sendable, Codable {
    public let device: String
    public let nodeName: String?
    public let qomPath: String?
    /// read or write (QEMU reports flushes as writes).
    public let operation: QMPIOOperation
    /// "ignore", "report" (the guest got an error) or "stop" (the VM paused; a STOP follows).
    public let action: QMPErrorAction
    /// True when the error was ENOSPC (so `werror=enospc` applies).
    public let nospace: Bool
    /// strerror() text of the host errno, e.g. "No space left on device" (QEMU ≥ 2.x).
    public let reason: String?
}
