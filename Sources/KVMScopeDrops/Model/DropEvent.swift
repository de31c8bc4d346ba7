/// Where in the kernel a packet was freed as a drop, as precisely as the input said it:
/// a real address (binary ring buffer, perf/trace-cmd `%p`, NET_DM program counters), a
/// symbol with offset (`%pS`: `__udp4_lib_rcv+0x4bc/0xd00`), or only a hashed pointer
/// (ftrace text of `%p` since Linux 4.15, which no symbol table can resolve).
public struct DropLocation: Hashable, Sendable {
    public var address: UInt64?
    public var symbol: String?
    public var offset: UInt64?
    /// Size of the function (`%pS` prints it after a slash; kallsyms gives it too).
    public var size: UInt64?
    /// Kernel module, for symbols `%pS` prints as `sym+0x10/0x20 [nf_tables]`.
    public var module: String?
    /// The printed value is `%p`'s per-boot hash, not an address.
    public var hashed: Bool

    public init(address: UInt64? = nil, symbol: String? = nil, offset: UInt64? = nil,
                size: UInt64? = nil, module: String? = nil, hashed: Bool = false) {
        self.address = address
        self.symbol = symbol
        self.offset = offset
        self.size = size
        self.module = module
        self.hashed = hashed
    }

    /// `__udp4_lib_rcv+0x4bc`, `nft_do_chain+0x3e8 [nf_tables]`, or the address in hex.
    public var symbolText: String? {
        guard let symbol else { return nil }
        var s = symbol
        if let offset { s += "+0x" + String(offset, radix: 16) }
        if let module { s += " [\(module)]" }
        return s
    }

    /// `0xffffffff82046f4c`, when a real address is known.
    public var addressText: String? {
        guard let address, !hashed else { return nil }
        return "0x" + String(address, radix: 16)
    }

    /// What a report prints: `__udp4_lib_rcv+0x4bc (0xffffffff82046f4c)`, the symbol alone,
    /// the address alone, or `hashed pointer 00000000a6aa3c2b`.
    public var displayText: String {
        switch (symbolText, addressText) {
        case let (s?, a?): return "\(s) (\(a))"
        case let (s?, nil): return s
        case let (nil, a?): return a
        case (nil, nil):
            if hashed, let address { return "hashed pointer " + hex16(address) }
            return "unknown location"
        }
    }

    /// The same place in the kernel, ignoring how much detail each input had; used to merge
    /// an address with its later-symbolized form.
    public var isKnown: Bool { symbol != nil || (address != nil && !hashed) }
}

/// Whether the kernel's software stack or a device (NET_DM hardware reports) dropped it.
public enum DropOrigin: String, Hashable, Sendable, Codable {
    case software, hardware
}

/// A drop reason as the input had it: the name (`NO_SOCKET`), the enum value, or both.
/// Numbers differ between kernel versions (NETFILTER_DROP is 8 on 6.1 and 12 on 6.18), so a
/// number is only turned into a name with the table of the kernel that produced it.
public struct DropReason: Hashable, Sendable {
    public var code: UInt32?
    public var name: String?

    public init(code: UInt32? = nil, name: String? = nil) {
        self.code = code
        self.name = name.map(DropReason.canonicalName)
    }

    /// A name exactly as the kernel prints it (already canonical): no conversion.
    init(code: UInt32?, kernelName: String?) {
        self.code = code
        self.name = kernelName
    }

    /// `NO_SOCKET` for `SKB_DROP_REASON_NO_SOCKET` or `no_socket`.
    public static func canonicalName(_ s: String) -> String {
        // Fast path: names as the kernel prints them are already canonical.
        if !s.utf8.contains(where: { $0 >= 0x61 && $0 <= 0x7A }), !s.hasPrefix("SKB_DROP_REASON_") { return s }
        var n = s.uppercased()
        if n.hasPrefix("SKB_DROP_REASON_") { n.removeFirst("SKB_DROP_REASON_".count) }
        return n
    }

    /// The name, or `#3` / `0x10005 (subsystem 1, reason 5)` for numbers without a name.
    public var displayName: String {
        if let name { return name }
        guard let code else { return "unknown" }
        // Since 6.4 the upper 16 bits select a subsystem's own reason list (mac80211, ...).
        if code > 0xFFFF {
            return "0x\(String(code, radix: 16)) (subsystem \(code >> 16), reason \(code & 0xFFFF))"
        }
        return "#\(code)"
    }
}

/// One drop (or, for NET_DM summary alerts, `count` drops at one place).
public struct DropEvent: Sendable {
    /// Seconds on the trace clock (ftrace/perf/trace-cmd time stamps; NET_DM: since boot).
    public var time: Double?
    public var cpu: Int32?
    /// The task in whose context the kernel dropped it (often the sender, for softirq
    /// processing done on its way out; `0` for an idle CPU).
    public var pid: Int32?
    public var comm: String?
    public var location: DropLocation
    /// skb->protocol in host order: the EtherType (0x0800 IPv4, 0x86DD IPv6, ...).
    public var protocolNumber: UInt16?
    public var reason: DropReason?
    public var origin: DropOrigin
    public var count: Int
    /// NET_DM hardware drops: the device trap's name (e.g. `ingress_vlan_filter`).
    public var hardwareTrap: String?
    /// NET_DM packet alerts: the input interface.
    public var device: String?

    public init(time: Double? = nil, cpu: Int32? = nil, pid: Int32? = nil, comm: String? = nil,
                location: DropLocation, protocolNumber: UInt16? = nil, reason: DropReason? = nil,
                origin: DropOrigin = .software, count: Int = 1, hardwareTrap: String? = nil,
                device: String? = nil) {
        self.time = time
        self.cpu = cpu
        self.pid = pid
        self.comm = comm
        self.location = location
        self.protocolNumber = protocolNumber
        self.reason = reason
        self.origin = origin
        self.count = count
        self.hardwareTrap = hardwareTrap
        self.device = device
    }
}

func hex16(_ v: UInt64) -> String {
    let s = String(v, radix: 16)
    return String(repeating: "0", count: max(0, 16 - s.count)) + s
}
