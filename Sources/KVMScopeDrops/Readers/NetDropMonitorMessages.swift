/// The NET_DM generic-netlink protocol (include/uapi/linux/net_dropmon.h, net/core/drop_monitor.c):
/// the commands kvmscope sends and the alerts it decodes into drops.
///
/// Summary alert (NET_DM_CMD_ALERT, the default mode dropwatch uses): one attribute of type 0
/// holding `struct net_dm_alert_msg { u32 entries; struct net_dm_drop_point { u8 pc[8]; u32 count; } points[]; }`,
/// or, for hardware drops, NET_DM_ATTR_HW_ENTRIES { HW_ENTRY { HW_TRAP_NAME, HW_TRAP_COUNT } ... }.
/// Packet alert (NET_DM_CMD_PACKET_ALERT): one dropped packet with ORIGIN, PC, SYMBOL (`%pS`),
/// IN_PORT, TIMESTAMP, PROTO, REASON (5.18+), or HW_TRAP_GROUP_NAME/HW_TRAP_NAME from devices.
public enum NetDropMonitor {
    public static let familyName = "NET_DM"
    public static let multicastGroup = "events"
    public static let version: UInt8 = 2

    public enum Command: UInt8 {
        case alert = 1, config = 2, start = 3, stop = 4, packetAlert = 5, configGet = 6, configNew = 7
    }

    public enum Attr: UInt16 {
        case alertMode = 1, pc = 2, symbol = 3, inPort = 4, timestamp = 5, proto = 6, payload = 7, pad = 8
        case truncLen = 9, origLen = 10, queueLen = 11, stats = 12, hwStats = 13, origin = 14
        case hwTrapGroupName = 15, hwTrapName = 16, hwEntries = 17, hwEntry = 18, hwTrapCount = 19
        case swDrops = 20, hwDrops = 21, flowActionCookie = 22, reason = 23
    }

    static let portNetdevName: UInt16 = 1
    static let alertModePacket: UInt8 = 1
    static let originHardware: UInt16 = 1
    /// sizeof(struct net_dm_drop_point): u8 pc[8] + u32 count, 4-byte aligned.
    static let dropPointSize = 12

    /// NET_DM_CMD_CONFIG: per-packet alerts (with the reason), `truncate` bytes of payload each.
    public static func configPacketMode(family: UInt16, sequence: UInt32, truncate: UInt32 = 1, queueLength: UInt32 = 10_000) -> [UInt8] {
        Netlink.encode(type: family, flags: Netlink.flagRequest | Netlink.flagAck, sequence: sequence,
                       genl: (Command.config.rawValue, version),
                       attributes: [Netlink.attr(Attr.alertMode.rawValue, alertModePacket),
                                    Netlink.attr(Attr.truncLen.rawValue, truncate),
                                    Netlink.attr(Attr.queueLen.rawValue, queueLength)])
    }

    /// NET_DM_CMD_START / STOP for software and (optionally) hardware drops.
    public static func control(_ command: Command, family: UInt16, sequence: UInt32, hardware: Bool) -> [UInt8] {
        var attrs = [Netlink.Attribute(type: Attr.swDrops.rawValue, payload: [])]
        if hardware { attrs.append(Netlink.Attribute(type: Attr.hwDrops.rawValue, payload: [])) }
        return Netlink.encode(type: family, flags: Netlink.flagRequest | Netlink.flagAck, sequence: sequence,
                              genl: (command.rawValue, version), attributes: attrs)
    }

    /// Turns one NET_DM message (payload after the netlink header) into drops. Malformed
    /// messages yield nil so the caller can count them.
    public static func decode(_ message: Netlink.Message, family: UInt16) -> [DropEvent]? {
        guard message.type == family, message.payload.count >= Netlink.genlHeaderSize else { return nil }
        let command = message.payload[0]
        guard let attrs = Netlink.attributes(Array(message.payload.dropFirst(Netlink.genlHeaderSize))) else { return nil }
        switch command {
        case Command.alert.rawValue: return decodeSummary(attrs)
        case Command.packetAlert.rawValue: return decodePacket(attrs).map { [$0] }
        default: return []
        }
    }

    static func decodeSummary(_ attrs: [Netlink.Attribute]) -> [DropEvent]? {
        var events: [DropEvent] = []
        for a in attrs {
            if a.type == 0 {
                // struct net_dm_alert_msg
                let p = a.payload
                guard p.count >= 4 else { return nil }
                let entries = Int(p.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) })
                guard entries <= (p.count - 4) / dropPointSize else { return nil }
                for k in 0..<entries {
                    let base = 4 + k * dropPointSize
                    let (pc, count) = p.withUnsafeBytes {
                        ($0.loadUnaligned(fromByteOffset: base, as: UInt64.self),
                         $0.loadUnaligned(fromByteOffset: base + 8, as: UInt32.self))
                    }
                    // pc 0 is the "hardware" point of old kernels' napi_poll probe (rx_dropped rose).
                    events.append(DropEvent(location: pc == 0 ? DropLocation() : DropLocation(address: pc),
                                            origin: pc == 0 ? .hardware : .software, count: Int(count)))
                }
            } else if a.type == Attr.hwEntries.rawValue {
                for entry in a.nested ?? [] where entry.type == Attr.hwEntry.rawValue {
                    var name: String?, count: UInt32?
                    for f in entry.nested ?? [] {
                        if f.type == Attr.hwTrapName.rawValue { name = f.string }
                        if f.type == Attr.hwTrapCount.rawValue { count = f.u32 }
                    }
                    guard let name, let count else { return nil }
                    events.append(DropEvent(location: DropLocation(), origin: .hardware, count: Int(count), hardwareTrap: name))
                }
            }
        }
        return events
    }

    static func decodePacket(_ attrs: [Netlink.Attribute]) -> DropEvent? {
        var e = DropEvent(location: DropLocation())
        var sawAnything = false
        for a in attrs {
            switch Attr(rawValue: a.type) {
            case .origin?:
                if a.u16 == originHardware { e.origin = .hardware }
                sawAnything = true
            case .pc?:
                e.location.address = a.u64
                sawAnything = true
            case .symbol?:
                let loc = parseSymbolText(a.string)
                e.location.symbol = loc.symbol
                e.location.offset = loc.offset
                e.location.size = loc.size
                e.location.module = loc.module
            case .timestamp?:
                if let ns = a.u64 { e.time = Double(ns) / 1e9 }
            case .proto?:
                e.protocolNumber = a.u16
            case .reason?:
                e.reason = DropReason(name: a.string)
            case .hwTrapName?:
                e.hardwareTrap = a.string
                sawAnything = true
            case .inPort?:
                for f in a.nested ?? [] where f.type == portNetdevName { e.device = f.string }
            default:
                break
            }
        }
        return sawAnything ? e : nil
    }

    /// `__udp4_lib_rcv+0x4bc/0xd00` or `nft_do_chain+0x3e8/0x610 [nf_tables]` (drop_monitor
    /// formats the pc with `%pS`).
    static func parseSymbolText(_ s: String) -> DropLocation {
        var bytes = Array(s.utf8)
        return bytes.withUnsafeMutableBufferPointer { b in
            let line = LineBytes(UnsafeBufferPointer(b))
            let tok = line.token(at: 0)
            var loc = KfreeSkbLineParser().parseLocation(line, tok) ?? DropLocation()
            let next = line.skipBlanks(tok.upperBound)
            if next < line.count, line[next] == 0x5B, let close = line.find(byte: 0x5D, from: next) {
                loc.module = line.string(next + 1..<close)
            }
            return loc
        }
    }
}
