import Foundation
import Testing
import KVMScopeTestSupport
import KVMScopeCore
import KVMScopeTracefs
@testable import KVMScopeDrops

/// NET_DM messages built byte by byte from include/uapi/linux/net_dropmon.h and the kernel's
/// net/core/drop_monitor.c (little-endian host order, as the kernel sends them).
enum NetDMBytes {
    static func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }

    static func attr(_ type: UInt16, _ payload: [UInt8]) -> [UInt8] {
        var out = le(UInt16(4 + payload.count)) + le(type) + payload
        while out.count % 4 != 0 { out.append(0) }
        return out
    }

    static func message(type: UInt16, seq: UInt32 = 0, genlCommand: UInt8, _ attrs: [UInt8]) -> [UInt8] {
        let body = [genlCommand, 2, 0, 0] + attrs
        return le(UInt32(16 + body.count)) + le(type) + le(UInt16(0)) + le(seq) + le(UInt32(0)) + body
    }
}

@Suite struct NetDropMonitorTests {
    typealias B = NetDMBytes

    @Test func getFamilyRequestBytes() {
        let bytes = GenericNetlinkController.request(name: "NET_DM", sequence: 7)
        #expect(bytes == [32, 0, 0, 0,  0x10, 0,  1, 0,  7, 0, 0, 0,  0, 0, 0, 0,   // nlmsghdr
                          3, 1, 0, 0,                                                // CTRL_CMD_GETFAMILY v1
                          11, 0, 2, 0, 0x4E, 0x45, 0x54, 0x5F, 0x44, 0x4D, 0, 0])   // FAMILY_NAME "NET_DM\0" + pad
    }

    @Test func familyReplyWithMulticastGroup() throws {
        let groups = B.attr(0x8000 | 7, B.attr(0x8000 | 1, B.attr(2, B.le(UInt32(5))) + B.attr(1, Array("events".utf8) + [0])))
        let reply = B.message(type: 0x10, seq: 7, genlCommand: 1,
                              B.attr(2, Array("NET_DM".utf8) + [0]) + B.attr(1, B.le(UInt16(0x1c)))
                              + B.attr(3, B.le(UInt32(2))) + groups)
        let answer = try #require(GenericNetlinkController.parseAnswer(reply))
        #expect(answer == .family(.init(id: 0x1c, name: "NET_DM", version: 2, multicastGroups: ["events": 5])))
    }

    @Test func absentFamilyIsENOENT() throws {
        // NLMSG_ERROR carrying -ENOENT and the request's header: what this kernel answers.
        let err = B.le(UInt32(36)) + B.le(UInt16(2)) + B.le(UInt16(0x100)) + B.le(UInt32(7)) + B.le(UInt32(0))
            + B.le(Int32(-2)) + Array(GenericNetlinkController.request(name: "NET_DM", sequence: 7).prefix(16))
        #expect(GenericNetlinkController.parseAnswer(err) == .error(ENOENT))
        #expect(NetDropMonitorSource.absentMessage(errno: ENOENT).contains("CONFIG_NET_DROP_MONITOR is off"))
        #expect(GenericNetlinkController.parseAnswer([1, 2, 3]) == nil)
    }

    @Test func thisKernelsFamilyProbe() throws {
        // This machine's kernel is built without CONFIG_NET_DROP_MONITOR: the probe must say
        // so in dropwatch's failure case, not hang or crash.
        let result = NetDropMonitorSource.probe()
        guard let config = try? Data(contentsOf: URL(fileURLWithPath: "/proc/config.gz")),
              !config.isEmpty else { return }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", "zcat /proc/config.gz | grep -c '^# CONFIG_NET_DROP_MONITOR is not set'"]
        let out = Pipe()
        p.standardOutput = out
        try p.run(); p.waitUntilExit()
        let off = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).hasPrefix("1")
        if off {
            #expect(result == .absent(NetDropMonitorSource.absentMessage(errno: ENOENT)))
            #expect(throws: DropsError.netDropMonitor(NetDropMonitorSource.absentMessage(errno: ENOENT))) { try NetDropMonitorSource() }
        }
    }

    @Test func summaryAlert() throws {
        // struct net_dm_alert_msg { u32 entries; { u8 pc[8]; u32 count; } points[2]; }
        let alert = B.le(UInt32(2)) + B.le(UInt64(0xffffffff82046f4c)) + B.le(UInt32(17))
            + B.le(UInt64(0xffffffff81f63638)) + B.le(UInt32(3))
        let msg = try #require(Netlink.messages(B.message(type: 0x1c, genlCommand: 1, B.attr(0, alert))))
        let drops = try #require(NetDropMonitor.decode(msg[0], family: 0x1c))
        #expect(drops.count == 2)
        #expect(drops[0].location == DropLocation(address: 0xffffffff82046f4c))
        #expect(drops[0].count == 17)
        #expect(drops[0].origin == .software)
        #expect(drops[1].count == 3)
        #expect(drops[0].reason == nil)
    }

    @Test func oldKernelsHardwarePointIsPCZero() throws {
        let alert = B.le(UInt32(1)) + B.le(UInt64(0)) + B.le(UInt32(4))
        let msg = try #require(Netlink.messages(B.message(type: 0x1c, genlCommand: 1, B.attr(0, alert))))
        let drops = try #require(NetDropMonitor.decode(msg[0], family: 0x1c))
        #expect(drops.first?.origin == .hardware)
        #expect(drops.first?.count == 4)
    }

    @Test func hardwareSummaryEntries() throws {
        let entry = B.attr(0x8000 | 18, B.attr(16, Array("ingress_vlan_filter".utf8) + [0]) + B.attr(19, B.le(UInt32(9))))
        let msg = try #require(Netlink.messages(B.message(type: 0x1c, genlCommand: 1, B.attr(0x8000 | 17, entry))))
        let drops = try #require(NetDropMonitor.decode(msg[0], family: 0x1c))
        #expect(drops.count == 1)
        #expect(drops[0].origin == .hardware)
        #expect(drops[0].hardwareTrap == "ingress_vlan_filter")
        #expect(drops[0].count == 9)
    }

    @Test func packetAlertWithReason() throws {
        let port = B.attr(0x8000 | 4, B.attr(0, B.le(UInt32(2))) + B.attr(1, Array("veth0".utf8) + [0]))
        let attrs = B.attr(14, B.le(UInt16(0)))                           // ORIGIN software
            + B.attr(8, [])                                                 // PAD (u64 alignment)
            + B.attr(2, B.le(UInt64(0xffffffff82046f4c)))                   // PC
            + B.attr(3, Array("__udp4_lib_rcv+0x4bc/0xd00".utf8) + [0])    // SYMBOL (%pS)
            + port
            + B.attr(5, B.le(UInt64(1_700_000_000_123_456_789)))            // TIMESTAMP ns
            + B.attr(6, B.le(UInt16(0x0800)))                               // PROTO
            + B.attr(10, B.le(UInt32(29)))                                  // ORIG_LEN
            + B.attr(23, Array("NO_SOCKET".utf8) + [0])                     // REASON
        let msg = try #require(Netlink.messages(B.message(type: 0x1c, genlCommand: 5, attrs)))
        let drops = try #require(NetDropMonitor.decode(msg[0], family: 0x1c))
        #expect(drops.count == 1)
        let d = drops[0]
        #expect(d.location == DropLocation(address: 0xffffffff82046f4c, symbol: "__udp4_lib_rcv", offset: 0x4bc, size: 0xd00))
        #expect(d.reason == DropReason(name: "NO_SOCKET"))
        #expect(d.protocolNumber == 0x0800)
        #expect(d.device == "veth0")
        #expect(d.origin == .software)
        #expect(d.time == 1_700_000_000.123456789)
    }

    @Test func hardwarePacketAlertAndModuleSymbol() throws {
        let attrs = B.attr(14, B.le(UInt16(1))) + B.attr(15, Array("l2_drops".utf8) + [0])
            + B.attr(16, Array("ingress_vlan_filter".utf8) + [0]) + B.attr(6, B.le(UInt16(0x8100)))
        let msg = try #require(Netlink.messages(B.message(type: 0x1c, genlCommand: 5, attrs)))
        let d = try #require(NetDropMonitor.decode(msg[0], family: 0x1c)?.first)
        #expect(d.origin == .hardware)
        #expect(d.hardwareTrap == "ingress_vlan_filter")
        #expect(NetDropMonitor.parseSymbolText("nft_do_chain+0x3e8/0x610 [nf_tables]")
                == DropLocation(symbol: "nft_do_chain", offset: 0x3e8, size: 0x610, module: "nf_tables"))
    }

    @Test func malformedAlertsAreRejected() throws {
        // entries claims more points than the attribute holds.
        let bad = B.le(UInt32(5)) + B.le(UInt64(1)) + B.le(UInt32(1))
        let msg = try #require(Netlink.messages(B.message(type: 0x1c, genlCommand: 1, B.attr(0, bad))))
        #expect(NetDropMonitor.decode(msg[0], family: 0x1c) == nil)
        // An attribute length running past the message.
        var broken = B.message(type: 0x1c, genlCommand: 5, B.attr(2, B.le(UInt64(1))))
        broken[20] = 200
        let m2 = try #require(Netlink.messages(broken))
        #expect(NetDropMonitor.decode(m2[0], family: 0x1c) == nil)
        // A message length running past the datagram.
        var cut = B.message(type: 0x1c, genlCommand: 1, [])
        cut[0] = 99
        #expect(Netlink.messages(cut) == nil)
        // Another family's message is not ours.
        #expect(NetDropMonitor.decode(try #require(Netlink.messages(B.message(type: 0x1d, genlCommand: 1, [])))[0], family: 0x1c) == nil)
    }

    @Test func controlMessages() throws {
        let start = NetDropMonitor.control(.start, family: 0x1c, sequence: 3, hardware: true)
        let m = try #require(Netlink.messages(start)?.first)
        #expect(m.type == 0x1c)
        #expect(m.flags == 0x5)                  // REQUEST | ACK
        #expect(Array(m.payload.prefix(4)) == [3, 2, 0, 0])
        #expect(Netlink.attributes(Array(m.payload.dropFirst(4)))?.map(\.type) == [20, 21])
        let config = try #require(Netlink.messages(NetDropMonitor.configPacketMode(family: 0x1c, sequence: 4, truncate: 1))?.first)
        let attrs = try #require(Netlink.attributes(Array(config.payload.dropFirst(4))))
        #expect(attrs.map(\.type) == [1, 9, 11])
        #expect(attrs[0].u8 == 1)
        #expect(attrs[1].u32 == 1)
    }
}
