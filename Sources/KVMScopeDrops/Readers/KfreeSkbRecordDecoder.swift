import KVMScopeTracefs
/// The fields of one binary `skb:kfree_skb` record, decoded with the offsets of the running
/// kernel's format file (so 32-bit kernels, the 5.17 reorder, the 6.18 `rx_sk` field and any
/// later change are read, not assumed).
public struct KfreeSkbRecord: Equatable, Sendable {
    public var pid: Int32
    public var skbaddr: UInt64
    public var location: UInt64
    public var protocolNumber: UInt16
    /// nil on kernels before 5.17, whose tracepoint has no reason.
    public var reason: UInt32?
    /// The receiving socket (6.18+), nil before.
    public var rxSocket: UInt64?
}

public struct KfreeSkbRecordDecoder: Sendable {
    public let eventID: UInt16
    let type: TracepointFormat.Field
    let pid: TracepointFormat.Field
    let skbaddr: TracepointFormat.Field
    let location: TracepointFormat.Field
    let protocolField: TracepointFormat.Field
    let reason: TracepointFormat.Field?
    let rxSocket: TracepointFormat.Field?
    /// Names of the reason values, from the format file's `__print_symbolic` table.
    public let reasonNames: [UInt64: String]

    public enum DecodeError: Error, Equatable, CustomStringConvertible {
        case missingField(String)
        public var description: String {
            switch self {
            case let .missingField(f):
                return "the kfree_skb format file has no usable '\(f)' field; this kernel's layout is not one kvmscope knows"
            }
        }
    }

    public init(format: TracepointFormat) throws {
        func need(_ name: String, sizes: Set<Int>) throws -> TracepointFormat.Field {
            guard let f = format.field(name), sizes.contains(f.size) else { throw DecodeError.missingField(name) }
            return f
        }
        eventID = UInt16(truncatingIfNeeded: format.id)
        type = try need("common_type", sizes: [2])
        pid = try need("common_pid", sizes: [4])
        skbaddr = try need("skbaddr", sizes: [4, 8])
        location = try need("location", sizes: [4, 8])
        protocolField = try need("protocol", sizes: [2])
        reason = format.field("reason").flatMap { [1, 2, 4].contains($0.size) ? $0 : nil }
        rxSocket = format.field("rx_sk").flatMap { [4, 8].contains($0.size) ? $0 : nil }
        reasonNames = format.symbolTables["reason"] ?? [:]
    }

    /// The record's event id (`common_type`), or nil when the payload is too short.
    @inline(__always)
    public func eventType(_ payload: UnsafeRawBufferPointer) -> UInt16? {
        guard payload.count >= type.offset + 2 else { return nil }
        return payload.loadUnaligned(fromByteOffset: type.offset, as: UInt16.self)
    }

    /// Decodes a payload whose `common_type` is this event; nil when it is another event or
    /// too short for the layout.
    public func decode(_ payload: UnsafeRawBufferPointer) -> KfreeSkbRecord? {
        guard eventType(payload) == eventID else { return nil }
        let need = max(pid.offset + 4, skbaddr.offset + skbaddr.size, location.offset + location.size,
                       protocolField.offset + 2, reason.map { $0.offset + $0.size } ?? 0,
                       rxSocket.map { $0.offset + $0.size } ?? 0)
        guard payload.count >= need else { return nil }
        return KfreeSkbRecord(
            pid: payload.loadUnaligned(fromByteOffset: pid.offset, as: Int32.self),
            skbaddr: Self.unsigned(payload, skbaddr),
            location: Self.unsigned(payload, location),
            protocolNumber: payload.loadUnaligned(fromByteOffset: protocolField.offset, as: UInt16.self),
            reason: reason.map { UInt32(truncatingIfNeeded: Self.unsigned(payload, $0)) },
            rxSocket: rxSocket.map { Self.unsigned(payload, $0) })
    }

    @inline(__always)
    static func unsigned(_ p: UnsafeRawBufferPointer, _ f: TracepointFormat.Field) -> UInt64 {
        switch f.size {
        case 8: return p.loadUnaligned(fromByteOffset: f.offset, as: UInt64.self)
        case 4: return UInt64(p.loadUnaligned(fromByteOffset: f.offset, as: UInt32.self))
        case 2: return UInt64(p.loadUnaligned(fromByteOffset: f.offset, as: UInt16.self))
        default: return UInt64(p.load(fromByteOffset: f.offset, as: UInt8.self))
        }
    }

    /// The reason as the kernel names it, or with its number only when the table lacks it.
    public func dropReason(_ code: UInt32?) -> DropReason? {
        guard let code else { return nil }
        return DropReason(code: code, kernelName: reasonNames[UInt64(code)])
    }
}
