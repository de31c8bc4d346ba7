import KVMScope

/// NET_DM (drop_monitor) netlink datagrams as NetDropMonitorSource receives them: split into
/// messages, decode each as NET_DM (its own type as the family id, so every message is tried)
/// and as a generic-netlink controller answer.
public enum NetDropMonitorFuzz {
    static func encodeRaw(_ messages: [Netlink.Message]) -> [UInt8] {
        var out: [UInt8] = []
        for m in messages {
            Netlink.append(&out, UInt32(Netlink.headerSize + m.payload.count))
            Netlink.append(&out, m.type)
            Netlink.append(&out, m.flags)
            Netlink.append(&out, m.sequence)
            Netlink.append(&out, m.portID)
            out += m.payload
            while out.count % 4 != 0 { out.append(0) }
        }
        return out
    }

    static func checkAttributes(_ bytes: [UInt8], depth: Int) {
        guard depth < 4, let attrs = Netlink.attributes(bytes) else { return }
        // Re-encoding the attributes (type without the NLA_F_NESTED / byte-order bits) reads back the same.
        let encoded = attrs.flatMap { Netlink.encode($0) }
        FuzzCheck.require(Netlink.attributes(encoded) == attrs, "netlink attributes: re-encoding changed them")
        for a in attrs {
            _ = (a.u8, a.u16, a.u32, a.u64, a.string)
            if let nested = a.nested { checkAttributes(nested.flatMap { Netlink.encode($0) }, depth: depth + 1) }
        }
    }

    public static func run(_ bytes: [UInt8]) {
        _ = GenericNetlinkController.parseAnswer(bytes)
        guard let messages = Netlink.messages(bytes) else { return }
        FuzzCheck.require(Netlink.messages(encodeRaw(messages)) == messages, "netlink messages: re-encoding changed them")
        for m in messages {
            FuzzCheck.require(m.payload.count <= bytes.count - Netlink.headerSize, "netlink message longer than the datagram")
            _ = Netlink.errorCode(m)
            let drops = NetDropMonitor.decode(m, family: m.type)
            let again = NetDropMonitor.decode(m, family: m.type)
            FuzzCheck.require(drops?.count == again?.count, "NET_DM: same message decoded differently")
            if m.payload.count >= Netlink.genlHeaderSize {
                checkAttributes(Array(m.payload.dropFirst(Netlink.genlHeaderSize)), depth: 0)
            }
            if let drops {
                var aggregator = DropAggregator()
                for d in drops { aggregator.add(d) }
                let tally = aggregator.closeInterval(end: nil)
                FuzzCheck.validJSON((try? DropJSONRenderer.interval(tally)) ?? "", "NET_DM drops interval")
            }
        }
    }
}
