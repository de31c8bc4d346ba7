import Foundation

/// A raw NETLINK_GENERIC socket: send a request, wait for its answer, join a multicast group,
/// receive datagrams with a timeout. Errors are errno values; callers turn them into sentences.
final class NetlinkSocket {
    static let netlinkGeneric: Int32 = 16          // NETLINK_GENERIC
    static let solNetlink: Int32 = 270             // SOL_NETLINK
    static let addMembership: Int32 = 1            // NETLINK_ADD_MEMBERSHIP

    struct SystemError: Error, Equatable { let code: Int32; let call: String }

    let fd: Int32
    private var sequence: UInt32 = UInt32(truncatingIfNeeded: time(nil))
    /// Datagrams the kernel could not queue for us (ENOBUFS): alerts were lost.
    private(set) var overruns = 0

    init() throws {
        fd = socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), Self.netlinkGeneric)
        guard fd >= 0 else { throw SystemError(code: errno, call: "socket(AF_NETLINK)") }
        // struct sockaddr_nl { u16 family; u16 pad; u32 pid (0: kernel assigns); u32 groups; }
        var addr = [UInt8](repeating: 0, count: 12)
        addr.withUnsafeMutableBytes { $0.storeBytes(of: UInt16(AF_NETLINK), as: UInt16.self) }
        let rc = addr.withUnsafeBytes { bind(fd, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), 12) }
        guard rc == 0 else { let e = errno; close(fd); throw SystemError(code: e, call: "bind(AF_NETLINK)") }
        var size: Int32 = 4 << 20
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
    }

    deinit { close(fd) }

    func nextSequence() -> UInt32 { sequence &+= 1; return sequence }

    func send(_ bytes: [UInt8]) throws {
        // Destination: the kernel (sockaddr_nl with pid 0).
        var addr = [UInt8](repeating: 0, count: 12)
        addr.withUnsafeMutableBytes { $0.storeBytes(of: UInt16(AF_NETLINK), as: UInt16.self) }
        let n = bytes.withUnsafeBytes { b in
            addr.withUnsafeBytes { a in
                sendto(fd, b.baseAddress, b.count, 0, a.baseAddress!.assumingMemoryBound(to: sockaddr.self), 12)
            }
        }
        guard n == bytes.count else { throw SystemError(code: errno, call: "sendto(netlink)") }
    }

    /// One datagram, or nil when `timeoutMs` passed (or a signal arrived) first.
    func receive(timeoutMs: Int32, capacity: Int = 1 << 17) throws -> [UInt8]? {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let r = poll(&p, 1, timeoutMs)
        if r == 0 || (r < 0 && errno == EINTR) { return nil }
        guard r > 0 else { throw SystemError(code: errno, call: "poll(netlink)") }
        var buffer = [UInt8](repeating: 0, count: capacity)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if n >= 0 { return Array(buffer.prefix(n)) }
            switch errno {
            case EINTR: continue
            case EAGAIN: return nil
            case ENOBUFS: overruns += 1; return nil
            default: throw SystemError(code: errno, call: "recv(netlink)")
            }
        }
    }

    /// Sends a request and returns the errno of its acknowledgement (0 = success).
    func transact(_ bytes: [UInt8], sequence: UInt32, timeoutMs: Int32 = 2000) throws -> Int32 {
        try send(bytes)
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(timeoutMs) * 1_000_000
        while DispatchTime.now().uptimeNanoseconds < deadline {
            guard let datagram = try receive(timeoutMs: 100) else { continue }
            for m in Netlink.messages(datagram) ?? [] where m.sequence == sequence {
                if let e = Netlink.errorCode(m) { return e }
            }
        }
        return ETIMEDOUT
    }

    func join(group: UInt32) throws {
        var g = group
        guard setsockopt(fd, Self.solNetlink, Self.addMembership, &g, socklen_t(MemoryLayout<UInt32>.size)) == 0 else {
            throw SystemError(code: errno, call: "setsockopt(NETLINK_ADD_MEMBERSHIP)")
        }
    }
}
