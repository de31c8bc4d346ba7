import Foundation
import KVMScopeCore
import KVMScopeLive

/// The QMP events libvirt delivers on its event-loop thread, held for `takeEvents` on the
/// recorder's thread: in the order libvirt delivered them, bounded in bytes, with a pipe that is
/// readable while any wait (the monitor's `pollDescriptor`).
///
/// Invariant, kept under the lock: the pipe holds a byte whenever events are queued or the
/// stream has ended, and is drained only when they are taken.
final class MonitorEventQueue: @unchecked Sendable {
    let address: String
    let limitBytes: Int
    private let lock = NSLock()
    private var events: [QMPMessage] = []
    private var bytes = 0
    private var dropped = 0
    private var ended: String?
    private let readFD: Int32
    private let writeFD: Int32

    init(address: String, limitBytes: Int) throws {
        self.address = address
        self.limitBytes = limitBytes
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else {
            throw KVMScopeError.cannotOpen(path: "pipe", reason: KVMScopeError.systemMessage(errno))
        }
        for fd in fds {
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        }
        readFD = fds[0]; writeFD = fds[1]
    }

    deinit { Glibc.close(readFD); Glibc.close(writeFD) }

    var pollDescriptor: Int32 { readFD }

    /// From libvirt's thread: one event. Past the bound it is counted and dropped, and the next
    /// `take` after the kept ones throws (the recorder stops and restores, saying why).
    func push(_ message: QMPMessage) {
        lock.lock(); defer { lock.unlock() }
        guard ended == nil else { return }
        if dropped > 0 || bytes + message.line.count > limitBytes {
            dropped += 1
        } else {
            events.append(message)
            bytes += message.line.count
        }
        signal()
    }

    /// From libvirt's thread: the domain stopped or the connection closed; once the queued
    /// events are taken, `take` throws `QMPError.closed`.
    func end(_ reason: String) {
        lock.lock(); defer { lock.unlock() }
        if ended == nil { ended = reason }
        signal()
    }

    var hasEnded: Bool { lock.lock(); defer { lock.unlock() }; return ended != nil }

    /// What is queued, and what arrives within `seconds` if nothing is.
    func take(waiting seconds: Double) throws -> [QMPMessage] {
        if let got = try takeNow() { return got }
        if seconds > 0 {
            var p = pollfd(fd: readFD, events: Int16(POLLIN), revents: 0)
            _ = poll(&p, 1, Int32(min(seconds, 3600) * 1000))
            if let got = try takeNow() { return got }
        }
        return []
    }

    /// The queued events; nil when there are none and the stream goes on.
    private func takeNow() throws -> [QMPMessage]? {
        lock.lock(); defer { lock.unlock() }
        if !events.isEmpty {
            let out = events
            events = []; bytes = 0
            if dropped == 0 && ended == nil { drain() }   // else stay readable: the next take throws
            return out
        }
        if dropped > 0 { throw LibvirtError.eventsOverflowed(address: address, dropped: dropped, limitBytes: limitBytes) }
        if ended != nil { throw QMPError.closed(address: address) }
        drain()
        return nil
    }

    private func signal() {
        var b: UInt8 = 1
        _ = Glibc.write(writeFD, &b, 1)   // EAGAIN: the pipe is full, so readable already
    }

    private func drain() {
        var buf = [UInt8](repeating: 0, count: 256)
        while buf.withUnsafeMutableBytes({ Glibc.read(readFD, $0.baseAddress, $0.count) }) > 0 {}
    }
}
