import Foundation

/// A blocking stream socket with time limits, for `NBDClient`. Every wait is cut into slices of
/// `slice` seconds (SO_RCVTIMEO/SO_SNDTIMEO) so that a caller can give up on a peer that stops
/// answering instead of hanging in recv(2) or send(2) for ever.
final class NBDClientSocket: @unchecked Sendable {
    let fd: Int32
    static let slice = 0.5

    private init(fd: Int32) {
        self.fd = fd
        var tv = timeval(tv_sec: 0, tv_usec: Int(Self.slice * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { Glibc.close(fd) }

    /// Connects within `timeout` seconds; the error says where and why.
    static func connect(_ transport: NBDURI.Transport, timeout: Double) throws -> NBDClientSocket {
        switch transport {
        case let .unix(path):
            var addr = sockaddr_un()
            addr.sun_family = sa_family_t(AF_UNIX)
            let bytes = Array(path.utf8)
            guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
                throw NBDClientError("socket path \(path) is too long")
            }
            withUnsafeMutableBytes(of: &addr.sun_path) { $0.copyBytes(from: bytes) }
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw NBDClientError("cannot create a socket: \(String(cString: strerror(errno)))") }
            let e = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connectWithin(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size), timeout)
                }
            }
            if e != 0 {
                Glibc.close(fd)
                throw NBDClientError("cannot connect to \(path): \(String(cString: strerror(e)))")
            }
            return NBDClientSocket(fd: fd)
        case let .tcp(host, port):
            var hints = addrinfo()
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            hints.ai_family = AF_UNSPEC
            var list: UnsafeMutablePointer<addrinfo>?
            let rc = getaddrinfo(host, String(port), &hints, &list)
            guard rc == 0, let first = list else {
                throw NBDClientError("cannot resolve \(host): \(String(cString: gai_strerror(rc)))")
            }
            defer { freeaddrinfo(list) }
            var lastError: Int32 = ECONNREFUSED
            var node: UnsafeMutablePointer<addrinfo>? = first
            while let a = node {
                node = a.pointee.ai_next
                let fd = socket(a.pointee.ai_family, a.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), a.pointee.ai_protocol)
                if fd < 0 { lastError = errno; continue }
                let e = connectWithin(fd, a.pointee.ai_addr, a.pointee.ai_addrlen, timeout)
                if e == 0 {
                    var one: Int32 = 1
                    setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
                    return NBDClientSocket(fd: fd)
                }
                lastError = e
                Glibc.close(fd)
            }
            throw NBDClientError("cannot connect to \(host):\(port): \(String(cString: strerror(lastError)))")
        }
    }

    /// connect(2) without blocking longer than `timeout`: 0 or an errno.
    private static func connectWithin(_ fd: Int32, _ addr: UnsafePointer<sockaddr>, _ len: socklen_t, _ timeout: Double) -> Int32 {
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
        defer { _ = fcntl(fd, F_SETFL, flags) }
        if Glibc.connect(fd, addr, len) == 0 { return 0 }
        guard errno == EINPROGRESS || errno == EAGAIN else { return errno }
        var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let ms = Int32(max(0, min(1000, deadline.timeIntervalSinceNow * 1000)))
            let n = poll(&p, 1, ms)
            if n < 0 && errno == EINTR { continue }
            if n > 0 { break }
            if Date() >= deadline { return ETIMEDOUT }
        }
        var err: Int32 = 0
        var errLen = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &errLen)
        return err
    }

    /// Sends every byte; `stillWaiting` is asked after each idle slice (false: give up, ETIMEDOUT).
    func sendAll(_ buffer: UnsafeRawBufferPointer, stillWaiting: () -> Bool) -> Int32 {
        var done = 0
        while done < buffer.count {
            let n = send(fd, buffer.baseAddress! + done, buffer.count - done, Int32(MSG_NOSIGNAL))
            if n > 0 { done += n; continue }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                if stillWaiting() { continue }
                return ETIMEDOUT
            }
            return n == 0 ? EPIPE : errno
        }
        return 0
    }

    /// Fills `buffer`; `stillWaiting` is asked after each idle slice. ESHUTDOWN when the peer
    /// closed the connection, ETIMEDOUT when `stillWaiting` said to give up.
    func receive(into buffer: UnsafeMutableRawBufferPointer, stillWaiting: () -> Bool) -> Int32 {
        var done = 0
        while done < buffer.count {
            let n = recv(fd, buffer.baseAddress! + done, buffer.count - done, 0)
            if n > 0 { done += n; continue }
            if n == 0 { return ESHUTDOWN }
            if errno == EINTR { continue }
            if errno == EAGAIN || errno == EWOULDBLOCK {
                if stillWaiting() { continue }
                return ETIMEDOUT
            }
            return errno
        }
        return 0
    }

    /// Wakes a thread blocked in `receive` or `sendAll` (they return an error at once).
    func shutdownBoth() { _ = Glibc.shutdown(fd, Int32(SHUT_RDWR)) }
}

/// Big-endian integers in and out of byte arrays (NBD's network byte order).
enum BigEndian {
    static func append<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
    }

    static func read<T: FixedWidthInteger>(_ type: T.Type, _ bytes: UnsafeRawBufferPointer, at offset: Int) -> T {
        var v: T = 0
        withUnsafeMutableBytes(of: &v) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + MemoryLayout<T>.size])) }
        return T(bigEndian: v)
    }

    static func read<T: FixedWidthInteger>(_ type: T.Type, _ bytes: [UInt8], at offset: Int) -> T {
        bytes.withUnsafeBytes { read(type, $0, at: offset) }
    }
}
