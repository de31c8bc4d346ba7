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
    /// Where the fields are, as plain integers: what `decode` reads, cheap for a loop over
    /// millions of records to copy (the Fields hold Strings).
    public let layout: Layout

    public struct Layout: Sendable {
        let eventID: UInt16
        let typeAt: Int, pidAt: Int, skbaddrAt: Int, skbaddrSize: Int, locationAt: Int, locationSize: Int
        let protocolAt: Int
        /// Size 0: the format has no such field.
        let reasonAt: Int, reasonSize: Int, rxSocketAt: Int, rxSocketSize: Int
        /// Bytes a payload needs to hold every field.
        let need: Int

        /// Decodes a payload whose `common_type` is this event; nil when it is another event or
        /// too short for the layout.
        @inline(__always)
        public func decode(_ payload: UnsafeRawBufferPointer) -> KfreeSkbRecord? {
            guard typeAt <= payload.count - 2, payload.loadUnaligned(fromByteOffset: typeAt, as: UInt16.self) == eventID,
                  payload.count >= need else { return nil }
            return KfreeSkbRecord(
                pid: payload.loadUnaligned(fromByteOffset: pidAt, as: Int32.self),
                skbaddr: KfreeSkbRecordDecoder.unsigned(payload, skbaddrAt, skbaddrSize),
                location: KfreeSkbRecordDecoder.unsigned(payload, locationAt, locationSize),
                protocolNumber: payload.loadUnaligned(fromByteOffset: protocolAt, as: UInt16.self),
                reason: reasonSize == 0 ? nil : UInt32(truncatingIfNeeded: KfreeSkbRecordDecoder.unsigned(payload, reasonAt, reasonSize)),
                rxSocket: rxSocketSize == 0 ? nil : KfreeSkbRecordDecoder.unsigned(payload, rxSocketAt, rxSocketSize))
        }
    }

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
        // Offsets come from the file: a sum past Int.max means no record can hold the field.
        func end(_ f: TracepointFormat.Field?) -> Int {
            guard let f else { return 0 }
            let (e, overflow) = f.offset.addingReportingOverflow(f.size)
            return overflow ? .max : e
        }
        let need = max(end(pid), end(skbaddr), end(location), end(protocolField), end(reason), end(rxSocket))
        layout = Layout(eventID: eventID, typeAt: type.offset, pidAt: pid.offset, skbaddrAt: skbaddr.offset,
                        skbaddrSize: skbaddr.size, locationAt: location.offset, locationSize: location.size,
                        protocolAt: protocolField.offset, reasonAt: reason?.offset ?? 0, reasonSize: reason?.size ?? 0,
                        rxSocketAt: rxSocket?.offset ?? 0, rxSocketSize: rxSocket?.size ?? 0, need: need)
    }

    /// The record's event id (`common_type`), or nil when the payload is too short.
    @inline(__always)
    public func eventType(_ payload: UnsafeRawBufferPointer) -> UInt16? {
        guard type.offset <= payload.count - 2 else { return nil }
        return payload.loadUnaligned(fromByteOffset: type.offset, as: UInt16.self)
    }

    /// Decodes a payload whose `common_type` is this event; nil when it is another event or
    /// too short for the layout.
    public func decode(_ payload: UnsafeRawBufferPointer) -> KfreeSkbRecord? { layout.decode(payload) }

    @inline(__always)
    static func unsigned(_ p: UnsafeRawBufferPointer, _ offset: Int, _ size: Int) -> UInt64 {
        switch size {
        case 8: return p.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
        case 4: return UInt64(p.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
        case 2: return UInt64(p.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
        default: return UInt64(p.load(fromByteOffset: offset, as: UInt8.self))
        }
    }

    /// The reason as the kernel names it, or with its number only when the table lacks it.
    public func dropReason(_ code: UInt32?) -> DropReason? {
        guard let code else { return nil }
        return DropReason(code: code, kernelName: reasonNames[UInt64(code)])
    }
}
