/// BLOCK_IO_ERROR's `operation` (QAPI `IoOperationType`: read, write; QEMU reports a failed
/// flush as a write). Anything else a stream carries is kept as `unknown`.
public enum QMPIOOperation: String, Sendable, Codable, CustomStringConvertible {
    case read, write, unknown
    public init(qmp value: String?) { self = value.flatMap(Self.init(rawValue:)) ?? .unknown }
    public var description: String { rawValue }
}

/// BLOCK_IO_ERROR's `action` (QAPI `BlockErrorAction`): the guest got the error (`report`), it
/// was hidden (`ignore`), or the VM paused (`stop`; a STOP event follows).
public enum QMPErrorAction: String, Sendable, Codable, CustomStringConvertible {
    case ignore, report, stop, unknown
    public init(qmp value: String?) { self = value.flatMap(Self.init(rawValue:)) ?? .unknown }
    public var description: String { rawValue }
}
