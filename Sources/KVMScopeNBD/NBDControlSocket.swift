import Foundation
import KVMScopeCore

/// `nbd serve --control PATH`: a UNIX socket on which the server takes one command per
/// connection (one line, at most `maxCommandBytes`) and answers with text lines, the last of
/// which is `ok` or `error: ...`; then it closes. One client at a time, on a thread of its own,
/// so a slow or silent client (bounded by a 5 s timeout) never touches the NBD event loops. The
/// socket is created mode 0700 (umask 077): whoever may change the rules is whoever owns the server.
public final class NBDControlSocket: @unchecked Sendable {
    public static let maxCommandBytes = 64 << 10
    public let path: String
    private let fd: Int32
    private let handle: @Sendable (String) -> (lines: [String], ok: Bool)
    private let lock = NSLock()
    private var closed = false

    /// Binds `path` (a stale socket left by a dead server is replaced; any other file is not).
    public init(path: String, handle: @escaping @Sendable (String) -> (lines: [String], ok: Bool)) throws {
        self.path = path
        self.handle = handle
        var st = stat()
        if lstat(path, &st) == 0 {
            guard (st.st_mode & S_IFMT) == S_IFSOCK else {
                throw NBDServerError.cannotListen(address: path, reason: "it exists and is not a socket")
            }
            if Self.answers(path) { throw NBDServerError.cannotListen(address: path, reason: "another server is using it") }
            unlink(path)
        }
        let s = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard s >= 0 else { throw NBDServerError.cannotListen(address: path, reason: KVMScopeError.systemMessage(errno)) }
        guard var addr = Self.address(path) else {
            close(s)
            throw NBDServerError.cannotListen(address: path, reason: "the path is longer than a UNIX socket address holds (107 bytes)")
        }
        let old = umask(0o077)
        let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        umask(old)
        guard bound == 0, listen(s, 8) == 0 else {
            let e = errno
            close(s)
            throw NBDServerError.cannotListen(address: path, reason: KVMScopeError.systemMessage(e))
        }
        fd = s
    }

    public func start() {
        let thread = Thread { [self] in serve() }
        thread.name = "kvmscope-control"
        thread.start()
    }

    public func stop() {
        lock.lock(); defer { lock.unlock() }
        guard !closed else { return }
        closed = true
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
        unlink(path)
    }

    private func serve() {
        while true {
            let c = accept(fd, nil, nil)
            if c < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                lock.lock(); let done = closed; lock.unlock()
                if done { return }
                usleep(100_000)                 // EMFILE and the like: try again shortly, never spin
                continue
            }
            _ = fcntl(c, F_SETFD, FD_CLOEXEC)
            var tv = timeval(tv_sec: 5, tv_usec: 0)
            setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            let reply: (lines: [String], ok: Bool)
            switch readLine(c) {
            case .line(let text): reply = handle(text)
            case .tooLong: reply = (["error: a command is one line of at most \(Self.maxCommandBytes) bytes"], false)
            case .none: reply = (["error: no command (send one line, such as 'list')"], false)
            }
            let text = (reply.lines + [reply.ok ? "ok" : ""]).filter { !$0.isEmpty }.joined(separator: "\n") + "\n"
            var bytes = Array(text.utf8)
            bytes.withUnsafeMutableBytes { b in
                var off = 0
                while off < b.count {
                    let n = Glibc.send(c, b.baseAddress! + off, b.count - off, Int32(MSG_NOSIGNAL))
                    if n <= 0 { if n < 0 && errno == EINTR { continue }; break }
                    off += n
                }
            }
            // What the client still sends (the rest of an overlong line) is read and dropped
            // after the reply: closing with unread input would reset the connection and the
            // client would lose the reply. Bounded by the receive timeout and 16 MiB.
            shutdown(c, Int32(SHUT_WR))
            var drained = 0
            var sink = [UInt8](repeating: 0, count: 65536)
            while drained < 16 << 20 {
                let n = sink.withUnsafeMutableBytes { recv(c, $0.baseAddress, $0.count, 0) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                drained += n
            }
            close(c)
        }
    }

    private enum Read { case line(String), tooLong, none }

    private func readLine(_ c: Int32) -> Read {
        var data = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 4096)
        while data.count <= Self.maxCommandBytes {
            if let nl = data.firstIndex(of: 0x0a) { return .line(String(decoding: data[..<nl], as: UTF8.self)) }
            let n = chunk.withUnsafeMutableBytes { recv(c, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return data.isEmpty ? .none : .line(String(decoding: data, as: UTF8.self)) }
            data += chunk[0..<n]
        }
        return .tooLong
    }

    static func address(_ path: String) -> sockaddr_un? {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { return nil }
        withUnsafeMutableBytes(of: &addr.sun_path) { p in
            for (i, b) in bytes.enumerated() { p[i] = b }
            p[bytes.count] = 0
        }
        return addr
    }

    /// Whether a server answers on `path` (a live one must not be replaced).
    static func answers(_ path: String) -> Bool {
        guard var addr = address(path) else { return false }
        let s = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard s >= 0 else { return false }
        defer { close(s) }
        return withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(s, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } } == 0
    }

    /// The client side (`kvmscope nbd control`): sends `command`, returns the reply lines.
    public static func send(_ command: String, to path: String, timeout seconds: Int = 30) throws -> [String] {
        guard var addr = address(path) else {
            throw NBDServerError.control("\(path): the path is longer than a UNIX socket address holds (107 bytes)")
        }
        let s = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard s >= 0 else { throw NBDServerError.control("\(path): \(KVMScopeError.systemMessage(errno))") }
        defer { close(s) }
        var tv = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let connected = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(s, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        guard connected == 0 else {
            throw NBDServerError.control("cannot connect to \(path): \(KVMScopeError.systemMessage(errno)) (is nbd serve --control \(path) running?)")
        }
        var bytes = Array((command + "\n").utf8)
        _ = bytes.withUnsafeMutableBytes { Glibc.send(s, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        var reply = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 4096)
        while reply.count < 16 << 20 {
            let n = chunk.withUnsafeMutableBytes { recv(s, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw NBDServerError.control("\(path): no answer: \(KVMScopeError.systemMessage(errno))") }
            if n == 0 { break }
            reply += chunk[0..<n]
        }
        return String(decoding: reply, as: UTF8.self).split(separator: "\n").map(String.init)
    }
}
