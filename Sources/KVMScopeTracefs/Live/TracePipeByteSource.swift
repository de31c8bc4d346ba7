import Foundation

/// A tracefs `trace_pipe` as a ByteStream: blocks (in poll, 100 ms at a time) until events
/// arrive, and ends — returns 0 like end of file — once the deadline passes or SIGINT/SIGTERM
/// came, after stopping tracing and draining what is left in the ring buffer. Line readers
/// use it exactly like a file.
public final class TracePipeByteSource: ByteStream {
    public let name: String
    public let knownSize: Int64? = nil
    private var fd: Int32
    private let deadline: DispatchTime
    private let onStop: () -> Void
    private var draining = false
    public private(set) var interrupted = false
    public private(set) var stoppedAt: DispatchTime?

    init(path: String, deadline: DispatchTime, onStop: @escaping () -> Void) throws {
        fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw TracefsError.io(path: path, reason: String(cString: strerror(errno))) }
        name = path
        self.deadline = deadline
        self.onStop = onStop
    }

    deinit { close() }

    /// Closes the pipe (the instance cannot be removed while it is open).
    public func close() {
        if fd >= 0 { Glibc.close(fd); fd = -1 }
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard fd >= 0 else { return 0 }
        while true {
            if !draining && (StopSignals.requested || DispatchTime.now() >= deadline) {
                interrupted = StopSignals.requested
                draining = true
                stoppedAt = DispatchTime.now()
                onStop()
            }
            let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
            if n > 0 { return n }
            if n == 0 { return 0 }
            let e = errno
            if e == EINTR { continue }
            guard e == EAGAIN || e == EWOULDBLOCK else {
                throw KVMScopeError.readFailed(path: name, reason: String(cString: strerror(e)))
            }
            if draining { return 0 }                 // stopped and empty: the end
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            // One reading of the clock: two could straddle the deadline, and the difference of
            // the second would underflow (a crash seen in CI when the deadline passed between them).
            let now = DispatchTime.now().uptimeNanoseconds
            let left = deadline.uptimeNanoseconds > now ? (deadline.uptimeNanoseconds - now) / 1_000_000 : 0
            _ = poll(&p, 1, Int32(min(100, left)))  // EINTR on a signal: loop checks the flag
        }
    }
}
