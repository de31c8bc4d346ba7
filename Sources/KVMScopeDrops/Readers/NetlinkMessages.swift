import Glibc

/// Netlink and generic-netlink framing (include/uapi/linux/netlink.h, genetlink.h), host byte
/// order as the kernel sends it. Pure byte work, so every message kvmscope sends or decodes is
/// testable without a socket.
///
///     nlmsghdr   u32 len | u16 type | u16 flags | u32 seq | u32 pid     (16 bytes)
///     genlmsghdr u8 cmd | u8 version | u16 reserved                     (4 bytes)
///     nlattr     u16 len (header included) | u16 type (+ NESTED 0x8000), payload padded to 4
public enum Netlink {
    public static let headerSize = 16
    public static let genlHeaderSize = 4
    public static let msgError: UInt16 = 2
    public static let msgDone: UInt16 = 3
    public static let flagRequest: UInt16 = 0x1
    public static let flagAck: UInt16 = 0x4
    static let attrTypeMask: UInt16 = 0x3FFF

    public struct Message: Equatable, Sendable {
        public var type: UInt16
        public var flags: UInt16
        public var sequence: UInt32
        public var portID: UInt32
        public var payload: [UInt8]
    }

    public struct Attribute: Equatable, Sendable {
        public var type: UInt16
        public var payload: [UInt8]

        public var u8: UInt8? { payload.count >= 1 ? payload[0] : nil }
        public var u16: UInt16? { read(UInt16.self) }
        public var u32: UInt32? { read(UInt32.self) }
        public var u64: UInt64? { read(UInt64.self) }
        /// A NUL-terminated string attribute.
        public var string: String {
            let end = payload.firstIndex(of: 0) ?? payload.count
            return String(decoding: payload[..<end], as: UTF8.self)
        }
        public var nested: [Attribute]? { Netlink.attributes(payload) }

        func read<T: FixedWidthInteger>(_: T.Type) -> T? {
            guard payload.count >= MemoryLayout<T>.size else { return nil }
            return payload.withUnsafeBytes { $0.loadUnaligned(as: T.self) }
        }
    }

    static func align4(_ n: Int) -> Int { (n + 3) & ~3 }

    /// Splits a datagram into messages; nil when a length field points outside it.
    public static func messages(_ bytes: [UInt8]) -> [Message]? {
        var out: [Message] = []
        var i = 0
        while i + headerSize <= bytes.count {
            let (len, type, flags, seq, pid) = bytes.withUnsafeBytes { p in
                (Int(p.loadUnaligned(fromByteOffset: i, as: UInt32.self)),
                 p.loadUnaligned(fromByteOffset: i + 4, as: UInt16.self),
                 p.loadUnaligned(fromByteOffset: i + 6, as: UInt16.self),
                 p.loadUnaligned(fromByteOffset: i + 8, as: UInt32.self),
                 p.loadUnaligned(fromByteOffset: i + 12, as: UInt32.self))
            }
            guard len >= headerSize, i + len <= bytes.count else { return nil }
            out.append(Message(type: type, flags: flags, sequence: seq, portID: pid,
                               payload: Array(bytes[(i + headerSize)..<(i + len)])))
            i += align4(len)
        }
        return out
    }

    /// The attributes in `bytes`; nil when one is malformed.
    public static func attributes(_ bytes: [UInt8]) -> [Attribute]? {
        attributes(bytes[...])
    }

    static func attributes(_ bytes: ArraySlice<UInt8>) -> [Attribute]? {
        var out: [Attribute] = []
        var i = bytes.startIndex
        while i + 4 <= bytes.endIndex {
            let len = Int(UInt16(bytes[i]) | UInt16(bytes[i + 1]) << 8)
            let type = (UInt16(bytes[i + 2]) | UInt16(bytes[i + 3]) << 8) & attrTypeMask
            guard len >= 4, i + len <= bytes.endIndex else { return nil }
            out.append(Attribute(type: type, payload: Array(bytes[(i + 4)..<(i + len)])))
            i += align4(len)
        }
        return out
    }

    /// One message: header, optional generic-netlink header, attributes.
    public static func encode(type: UInt16, flags: UInt16, sequence: UInt32, portID: UInt32 = 0,
                              genl: (command: UInt8, version: UInt8)?, attributes: [Attribute]) -> [UInt8] {
        var body: [UInt8] = []
        if let genl { body += [genl.command, genl.version, 0, 0] }
        for a in attributes { body += encode(a) }
        var out: [UInt8] = []
        append(&out, UInt32(headerSize + body.count))
        append(&out, type)
        append(&out, flags)
        append(&out, sequence)
        append(&out, portID)
        return out + body
    }

    public static func encode(_ a: Attribute, nested: Bool = false) -> [UInt8] {
        var out: [UInt8] = []
        append(&out, UInt16(4 + a.payload.count))
        append(&out, a.type | (nested ? 0x8000 : 0))
        out += a.payload
        while out.count % 4 != 0 { out.append(0) }
        return out
    }

    public static func append<T: FixedWidthInteger>(_ out: inout [UInt8], _ v: T) {
        withUnsafeBytes(of: v) { out += $0 }
    }

    public static func attr<T: FixedWidthInteger>(_ type: UInt16, _ v: T) -> Attribute {
        var p: [UInt8] = []
        append(&p, v)
        return Attribute(type: type, payload: p)
    }

    public static func attr(_ type: UInt16, string: String) -> Attribute {
        Attribute(type: type, payload: Array(string.utf8) + [0])
    }

    /// The errno of an NLMSG_ERROR message (0 = acknowledgement), positive.
    public static func errorCode(_ m: Message) -> Int32? {
        guard m.type == msgError, m.payload.count >= 4 else { return nil }
        let v = m.payload.withUnsafeBytes { $0.loadUnaligned(as: Int32.self) }
        // The kernel puts 0 or a negative errno there (af_netlink.c netlink_ack); anything else
        // (a positive value, or Int32.min, whose negation does not exist) is a malformed
        // acknowledgement: still a failure, reported as a protocol error.
        guard v <= 0, v != .min else { return EPROTO }
        return -v
    }
}

/// The controller request that finds a generic-netlink family by name (CTRL_CMD_GETFAMILY),
/// and its answer: the family id and the multicast groups to join.
public enum GenericNetlinkController {
    public static let familyID: UInt16 = 0x10          // GENL_ID_CTRL
    static let cmdNewFamily: UInt8 = 1
    static let cmdGetFamily: UInt8 = 3
    static let attrFamilyID: UInt16 = 1
    static let attrFamilyName: UInt16 = 2
    static let attrVersion: UInt16 = 3
    static let attrMulticastGroups: UInt16 = 7
    static let attrGroupName: UInt16 = 1
    static let attrGroupID: UInt16 = 2

    public struct Family: Equatable, Sendable {
        public var id: UInt16
        public var name: String
        public var version: UInt32
        public var multicastGroups: [String: UInt32]
    }

    public enum Answer: Equatable, Sendable {
        case family(Family)
        /// The kernel answered with an error: ENOENT means no such family (module not loaded).
        case error(Int32)
    }

    public static func request(name: String, sequence: UInt32) -> [UInt8] {
        Netlink.encode(type: familyID, flags: Netlink.flagRequest, sequence: sequence,
                       genl: (cmdGetFamily, 1), attributes: [Netlink.attr(attrFamilyName, string: name)])
    }

    /// Decodes the controller's reply datagram; nil when it is neither a family nor an error.
    public static func parseAnswer(_ bytes: [UInt8]) -> Answer? {
        guard let messages = Netlink.messages(bytes) else { return nil }
        for m in messages {
            if let e = Netlink.errorCode(m) {
                if e != 0 { return .error(e) }
                continue
            }
            guard m.type == familyID, m.payload.count >= Netlink.genlHeaderSize, m.payload[0] == cmdNewFamily,
                  let attrs = Netlink.attributes(Array(m.payload.dropFirst(Netlink.genlHeaderSize))) else { continue }
            var family = Family(id: 0, name: "", version: 0, multicastGroups: [:])
            for a in attrs {
                switch a.type {
                case attrFamilyID: family.id = a.u16 ?? 0
                case attrFamilyName: family.name = a.string
                case attrVersion: family.version = a.u32 ?? 0
                case attrMulticastGroups:
                    for group in a.nested ?? [] {
                        var name: String?, id: UInt32?
                        for g in group.nested ?? [] {
                            if g.type == attrGroupName { name = g.string }
                            if g.type == attrGroupID { id = g.u32 }
                        }
                        if let name, let id { family.multicastGroups[name] = id }
                    }
                default: break
                }
            }
            if family.id != 0 { return .family(family) }
        }
        return nil
    }
}
