import Glibc

/// Whole-message I/O on a blocking socket, for tests that play a protocol's peer by hand.
public enum SocketBytes {
    /// send(2) of all of `bytes` (MSG_NOSIGNAL: a closed peer is an error, not SIGPIPE).
    public static func send(_ fd: Int32, _ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// Exactly `n` bytes, or nil on EOF, error or the socket's receive timeout.
    public static func recv(_ fd: Int32, _ n: Int) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: n), got = 0
        while got < n {
            let r = out.withUnsafeMutableBytes { Glibc.recv(fd, $0.baseAddress! + got, n - got, 0) }
            if r <= 0 { return nil }
            got += r
        }
        return out
    }
}
