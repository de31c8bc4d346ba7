import Foundation

/// Buffered writing to a file descriptor (stdout) for outputs of millions of lines; `flush()`
/// after each line in follow mode so that `tail -f | kvmscope` users see lines as they happen.
public final class BufferedOutput {
    public var buffer: [UInt8] = []
    private let fd: Int32
    private let limit: Int

    public init(fd: Int32 = STDOUT_FILENO, limit: Int = 1 << 16) {
        self.fd = fd
        self.limit = limit
        buffer.reserveCapacity(limit + 4096)
    }

    /// Flushes when the buffer is over its limit.
    public func maybeFlush() throws { if buffer.count >= limit { try flush() } }

    public func flush() throws {
        var offset = 0
        while offset < buffer.count {
            let n = buffer.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                // A closed pipe (`| head`) ends the output quietly, like other Unix tools.
                if errno == EPIPE { buffer.removeAll(keepingCapacity: true); throw BrokenPipe() }
                throw KVMScopeError.readFailed(path: "<stdout>", reason: KVMScopeError.systemMessage(errno))
            }
            offset += n
        }
        buffer.removeAll(keepingCapacity: true)
    }

    public func write(_ text: String) throws {
        buffer += text.utf8
        try maybeFlush()
    }

    /// Thrown when stdout was closed by the reader.
    public struct BrokenPipe: Error {}
}
