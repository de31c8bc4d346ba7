import Foundation

/// skb->protocol values (EtherTypes, host order, as the tracepoint prints them in decimal:
/// `protocol=2048` is 0x0800, IPv4) with the names a network engineer uses. Values are from
/// include/uapi/linux/if_ether.h.
public enum EtherType {
    public static let table: [(value: UInt16, name: String, description: String)] = [
        (0x0000, "none", "no protocol set (packet not yet classified, e.g. locally built)"),
        (0x0001, "802.3", "Novell raw 802.3"),
        (0x0003, "all", "every protocol (packet socket wildcard)"),
        (0x0004, "802.2", "802.2 LLC frame (e.g. spanning tree BPDUs)"),
        (0x0005, "SNAP", "802.2 SNAP"),
        (0x000C, "CAN", "CAN frame"),
        (0x000D, "CANFD", "CAN FD frame"),
        (0x000E, "CANXL", "CAN XL frame"),
        (0x0800, "IPv4", "Internet Protocol version 4"),
        (0x0806, "ARP", "Address Resolution Protocol"),
        (0x8035, "RARP", "Reverse ARP"),
        (0x8100, "802.1Q", "VLAN-tagged frame"),
        (0x86DD, "IPv6", "Internet Protocol version 6"),
        (0x8808, "PAUSE", "Ethernet flow control"),
        (0x8809, "SLOW", "slow protocols (LACP)"),
        (0x8847, "MPLS", "MPLS unicast"),
        (0x8848, "MPLS-MC", "MPLS multicast"),
        (0x8863, "PPPoE-D", "PPPoE discovery"),
        (0x8864, "PPPoE", "PPPoE session"),
        (0x888E, "EAPOL", "802.1X port authentication"),
        (0x88A8, "802.1ad", "QinQ service VLAN tag"),
        (0x88CC, "LLDP", "Link Layer Discovery Protocol"),
        (0x88E5, "MACsec", "802.1AE MAC security"),
        (0x88F7, "PTP", "Precision Time Protocol"),
        (0x8906, "FCoE", "Fibre Channel over Ethernet"),
        (0x8915, "RoCE", "RDMA over Converged Ethernet"),
        (0x894F, "NSH", "Network Service Header"),
        (0x9000, "LOOP", "Ethernet loopback test"),
    ]

    private static let byValue: [UInt16: Int] = {
        var d: [UInt16: Int] = [:]
        for (i, e) in table.enumerated() { d[e.value] = i }
        return d
    }()

    /// `IPv4`, or `0x1234` for values not in the table.
    public static func name(_ value: UInt16) -> String {
        if let i = byValue[value] { return table[i].name }
        return hex(value)
    }

    public static func description(_ value: UInt16) -> String? {
        byValue[value].map { table[$0].description }
    }

    /// `0x0800`.
    public static func hex(_ value: UInt16) -> String {
        let s = String(value, radix: 16, uppercase: true)
        return "0x" + String(repeating: "0", count: max(0, 4 - s.count)) + s
    }

    /// Accepts `ipv4`, `IPv6`, `arp`, `2048`, `0x0800`, `0x86dd`.
    public static func parse(_ text: String) -> UInt16? {
        let t = text.trimmingCharacters(in: .whitespaces)
        let lower = t.lowercased()
        if lower.hasPrefix("0x") { return UInt16(lower.dropFirst(2), radix: 16) }
        if let n = UInt16(t) { return n }
        return table.first { $0.name.lowercased() == lower }?.value
    }
}
