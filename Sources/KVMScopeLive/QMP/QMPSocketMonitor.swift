import Foundation
import KVMScopeCore

/// A QMP monitor over a Unix or TCP socket (QEMU's `-qmp unix:…`/`tcp:…`, `-mon mode=control`).
///
/// Non-blocking descriptor, every wait bounded by poll(2); messages are split on newlines (QEMU
/// ends each JSON object with one: monitor/qmp.c `qmp_send_response`) and none may exceed
/// `maxMessageBytes` (query-trace-events of QEMU 7.2 is ~300 KB; 64 MiB bounds a hostile peer).
public final class QMPSocketMonitor: QMPMonitor {
    public let address: String
    public private(set) var qemuVersion = "?"
    /// The QEMU on the other end of a Unix socket (SO_PEERCRED): its pid and uid.
    public private(set) var peerPID: Int32?
    public private(set) var peerUID: UInt32?

    public static let maxMessageBytes = 64 << 20
    private var fd: Int32
    private var buffer: [UInt8] = []
    private var scanned = 0
    private var pending: [QMPMessage] = []
    private var nextID = 0
    private var peerClosed = false

    public var pollDescriptor: Int32 { pending.isEmpty ? fd : -1 }

    /// Connects and negotiates; `greetingTimeout` bounds how long a taken monitor is waited for.
    public convenience init(_ target: QMPAddress, greetingTimeout: Double = 3, connectTimeout: Double = 5) throws {
        let fd = try Self.connect(target, timeout: connectTimeout)
        var isUnix = false
        if case .unix = target { isUnix = true }
        try self.init(connectedDescriptor: fd, address: target.description, peerCredentials: isUnix, greetingTimeout: greetingTimeout)
    }

    /// Negotiates on a socket already connected (owned from here on, closed on failure): the
    /// fuzz target and tests hand it one end of a socketpair.
    public init(connectedDescriptor: Int32, address: String, peerCredentials: Bool = false, greetingTimeout: Double = 3) throws {
        self.address = address
        fd = connectedDescriptor
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        if peerCredentials {
            var cred = PeerCredentials()
            var len = socklen_t(MemoryLayout<PeerCredentials>.size)
            if getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0, cred.pid > 0 {
                peerPID = cred.pid; peerUID = cred.uid
            }
        }
        do {
            guard let greeting = try readLine(until: Self.now() + greetingTimeout) else {
                throw QMPError.monitorTaken(address: address, waitedSeconds: greetingTimeout)
            }
            guard let obj = Self.parse(greeting), obj["QMP"] != nil else {
                throw QMPError.notQMP(address: address, firstBytes: String(decoding: greeting.prefix(60), as: UTF8.self))
            }
            qemuVersion = KVMScopeLive.qemuVersion(fromGreeting: obj) ?? "?"
            _ = try execute("qmp_capabilities", arguments: nil, timeout: 10)
        } catch let e as QMPError {
            Glibc.close(fd); fd = -1
            if case .closed = e, peerClosed { throw QMPError.notQMP(address: address, firstBytes: "") }
            throw e
        }
    }

    deinit { if fd >= 0 { Glibc.close(fd) } }

    public func close() { if fd >= 0 { Glibc.close(fd); fd = -1 } }

    public func execute(_ command: String, arguments: [String: Any]?, timeout: Double) throws -> Any {
        nextID += 1
        let id = "kvmscope-\(nextID)"
        var message: [String: Any] = ["execute": command, "id": id]
        if let arguments { message["arguments"] = arguments }
        var bytes = Array(try JSONSerialization.data(withJSONObject: message))
        bytes.append(0x0A)
        try send(bytes, command: command, deadline: Self.now() + timeout)
        let deadline = Self.now() + timeout
        while true {
            guard let line = try readLine(until: deadline) else { throw QMPError.timedOut(command: command, seconds: timeout) }
            guard let obj = Self.parse(line) else { throw QMPError.badReply(command: command, detail: "not a JSON object") }
            if obj["event"] is String { pending.append(QMPMessage(line: line, object: obj)); continue }
            guard (obj["id"] as? String) == id else { continue }   // a reply to someone else's id: not ours
            return try qmpReturnValue(obj, command: command, qemuVersion: qemuVersion)
        }
    }

    /// Messages read per `takeEvents` call at most: a peer that never stops sending (a flood of
    /// events or of garbage) must not keep its caller in here; the rest comes next call.
    public static let maxMessagesPerTake = 4096

    public func takeEvents(waiting seconds: Double) throws -> [QMPMessage] {
        var read = 0
        func keep(_ line: [UInt8]) {
            read += 1
            if let obj = Self.parse(line), obj["event"] is String { pending.append(QMPMessage(line: line, object: obj)) }
        }
        // What is buffered or readable now; then, only if that was nothing, wait for one message.
        while read < Self.maxMessagesPerTake, let line = try readLine(until: 0, allowClosed: true) { keep(line) }
        if pending.isEmpty, read == 0, seconds > 0, let line = try readLine(until: Self.now() + seconds, allowClosed: true) {
            keep(line)
            while read < Self.maxMessagesPerTake, let more = try readLine(until: 0, allowClosed: true) { keep(more) }
        }
        if pending.isEmpty, peerClosed { throw QMPError.closed(address: address) }
        defer { pending = [] }
        return pending
    }

    // MARK: - Socket

    /// The monotonic clock every wait on a monitor is measured by.
    static func now() -> Double {
        var ts = timespec(); clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    private static func parse(_ line: [UInt8]) -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(line))) as? [String: Any]
    }

    /// The next newline-terminated message, or nil when `deadline` passes first. Throws
    /// `.closed` at end of stream (unless `allowClosed`, then nil).
    private func readLine(until deadline: Double, allowClosed: Bool = false) throws -> [UInt8]? {
        while true {
            if let nl = buffer[scanned...].firstIndex(of: 0x0A) {
                let line = Array(buffer[..<nl])
                buffer.removeSubrange(...nl)
                scanned = 0
                let trimmed = line.last == 0x0D ? Array(line.dropLast()) : line
                if trimmed.allSatisfy({ $0 == 0x20 }) { continue }
                return trimmed
            }
            scanned = buffer.count
            if buffer.count > Self.maxMessageBytes { throw QMPError.messageTooLarge(address: address, limit: Self.maxMessageBytes) }
            if peerClosed || fd < 0 { if allowClosed { return nil }; throw QMPError.closed(address: address) }
            let left = deadline - Self.now()
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let r = poll(&p, 1, Int32(max(0, min(left, 3600)) * 1000))
            if r < 0 {
                if errno == EINTR { if Self.now() >= deadline { return nil }; continue }
                throw QMPError.cannotConnect(address: address, reason: KVMScopeError.systemMessage(errno))
            }
            if r == 0 { return nil }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n > 0 { buffer.append(contentsOf: chunk[..<n]); continue }
            if n == 0 || (errno != EAGAIN && errno != EINTR) { peerClosed = true }
        }
    }

    private func send(_ bytes: [UInt8], command: String, deadline: Double) throws {
        var off = 0
        while off < bytes.count {
            guard fd >= 0 else { throw QMPError.closed(address: address) }
            let n = bytes[off...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n > 0 { off += n; continue }
            if n < 0 && (errno == EAGAIN || errno == EINTR) {
                var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                let left = deadline - Self.now()
                if left <= 0 { throw QMPError.timedOut(command: command, seconds: 0) }
                _ = poll(&p, 1, Int32(left * 1000))
                continue
            }
            peerClosed = true
            throw QMPError.closed(address: address)
        }
    }

    private static func connect(_ target: QMPAddress, timeout: Double) throws -> Int32 {
        switch target {
        case let .unix(path):
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw QMPError.cannotConnect(address: target.description, reason: KVMScopeError.systemMessage(errno)) }
            var sa = sockaddr_un()
            sa.sun_family = sa_family_t(AF_UNIX)
            let bytes = Array(path.utf8)
            guard bytes.count < MemoryLayout.size(ofValue: sa.sun_path) else {
                Glibc.close(fd)
                throw QMPError.cannotConnect(address: target.description, reason: "socket path longer than \(MemoryLayout.size(ofValue: sa.sun_path) - 1) bytes")
            }
            withUnsafeMutableBytes(of: &sa.sun_path) { raw in for (i, b) in bytes.enumerated() { raw[i] = b } }
            let r = withUnsafePointer(to: &sa) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            guard r == 0 else {
                let e = errno; Glibc.close(fd)
                let hint = e == ENOENT ? " (no such socket: is the VM running, and is this its -qmp path?)"
                    : e == ECONNREFUSED ? " (nothing listens there: QEMU exited and left the socket file)"
                    : e == EACCES ? " (run as root or as the VM's user)" : ""
                throw QMPError.cannotConnect(address: target.description, reason: KVMScopeError.systemMessage(e) + hint)
            }
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            return fd
        case let .tcp(host, port):
            var hints = addrinfo()
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            var res: UnsafeMutablePointer<addrinfo>?
            let gai = getaddrinfo(host, String(port), &hints, &res)
            guard gai == 0, let first = res else {
                throw QMPError.cannotConnect(address: target.description, reason: String(cString: gai_strerror(gai)))
            }
            defer { freeaddrinfo(res) }
            var lastError = ECONNREFUSED
            var ai: UnsafeMutablePointer<addrinfo>? = first
            while let a = ai {
                defer { ai = a.pointee.ai_next }
                let fd = socket(a.pointee.ai_family, a.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), a.pointee.ai_protocol)
                guard fd >= 0 else { lastError = errno; continue }
                if Glibc.connect(fd, a.pointee.ai_addr, a.pointee.ai_addrlen) == 0 { return fd }
                if errno == EINPROGRESS {
                    var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                    if poll(&p, 1, Int32(timeout * 1000)) == 1 {
                        var err: Int32 = 0
                        var len = socklen_t(MemoryLayout<Int32>.size)
                        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len)
                        if err == 0 { return fd }
                        lastError = err
                    } else { lastError = ETIMEDOUT }
                } else { lastError = errno }
                Glibc.close(fd)
            }
            throw QMPError.cannotConnect(address: target.description, reason: KVMScopeError.systemMessage(lastError))
        }
    }
}

/// `struct ucred` of <sys/socket.h> (pid, uid, gid), which Glibc's module hides behind _GNU_SOURCE.
private struct PeerCredentials { var pid: Int32 = 0; var uid: UInt32 = 0; var gid: UInt32 = 0 }
