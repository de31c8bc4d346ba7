import Foundation

/// One QMP connection used by several clients at once, each through a `QMPMonitor` of its own
/// (`client()`): `watch` keeps polling a VM while `record` records it (QEMU serves one client
/// per monitor, chardev/char-socket.c, so a second connection would wait unanswered).
///
/// Commands take turns: one `execute` at a time on the connection, replies matched by id as
/// ever. Every event is given to every client, in order: whichever client reads it off the
/// socket puts it in each client's queue and wakes the others (a pipe each), so no client loses
/// an event because another was reading. A client's queue is bounded (`maxQueuedEvents`); past
/// it the oldest are dropped and counted (`droppedEvents`), so a client that stops reading
/// cannot make the others hold unbounded memory.
///
/// The connection closes when the last client closes; a client closed earlier only leaves.
public final class SharedQMPMonitor: @unchecked Sendable {
    public static let defaultMaxQueuedEvents = 65_536

    /// A client's queue holds at most this many events.
    public let maxQueuedEvents: Int
    private let underlying: any QMPMonitor
    private let lock = NSLock()
    /// Weak: a client is kept alive by its user, and keeps this alive (a client dropped unclosed leaves on deinit).
    private var clients: [ObjectIdentifier: WeakClient] = [:]
    private struct WeakClient { weak var client: Client? }
    private var everHadClient = false
    /// The peer is gone (`takeEvents` threw `.closed`): each client gets `.closed` once its queue is empty.
    private var peerGone: QMPError?

    public init(_ monitor: any QMPMonitor, maxQueuedEvents: Int = SharedQMPMonitor.defaultMaxQueuedEvents) {
        underlying = monitor
        self.maxQueuedEvents = max(1, maxQueuedEvents)
    }

    public var address: String { underlying.address }
    public var qemuVersion: String { underlying.qemuVersion }

    /// A new client: it sees the events that arrive from now on.
    public func client() -> any QMPMonitor {
        let c = Client(shared: self)
        lock.withLock { clients[ObjectIdentifier(c)] = WeakClient(client: c); everHadClient = true }
        return c
    }

    /// Clients open now.
    public var clientCount: Int { lock.withLock { clients.count } }

    // MARK: - Under the clients

    fileprivate func execute(_ command: String, arguments: [String: Any]?, timeout: Double) throws -> Any {
        // Events that come while the command waits stay in the connection's own queue until a
        // client takes events (then every client gets them): reading on here could take a reply
        // meant for no one yet.
        try lock.withLock {
            if let gone = peerGone { throw gone }
            return try underlying.execute(command, arguments: arguments, timeout: timeout)
        }
    }

    /// Reads what the socket has without waiting and gives each event to every client.
    private func fillLocked() throws {
        guard peerGone == nil else { return }
        let events: [QMPMessage]
        do { events = try underlying.takeEvents(waiting: 0) } catch let e as QMPError {
            if case .closed = e { peerGone = e; for c in clients.values { c.client?.wake() } }
            throw e
        }
        guard !events.isEmpty else { return }
        for c in clients.values { c.client?.enqueue(events) }
    }

    fileprivate func take(for client: Client, waiting seconds: Double) throws -> [QMPMessage] {
        let deadline = QMPSocketMonitor.now() + max(0, seconds)
        while true {
            let fd: Int32 = try lock.withLock {
                if client.hasEvents { return -2 }
                do { try fillLocked() } catch QMPError.closed {}
                if client.hasEvents { return -2 }
                if let gone = peerGone { throw gone }
                return underlying.pollDescriptor
            }
            if fd == -2 { return lock.withLock { client.drain() } }
            let left = deadline - QMPSocketMonitor.now()
            if left <= 0 { return [] }
            // The socket or this client's wake pipe (another client read our events off the socket).
            var fds = [pollfd(fd: client.wakeRead, events: Int16(POLLIN), revents: 0)]
            if fd >= 0 { fds.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0)) }
            // Without a descriptor to wait on (an implementation that has none) wait in short slices.
            let slice = fd >= 0 ? left : min(left, 0.05)
            _ = poll(&fds, nfds_t(fds.count), Int32(min(slice * 1000, 1_000_000)) + 1)
        }
    }

    fileprivate func pollDescriptor(for client: Client) -> Int32 {
        lock.withLock { !client.hasEvents && peerGone == nil ? underlying.pollDescriptor : -1 }
    }

    fileprivate func leave(_ client: Client) {
        let last: Bool = lock.withLock {
            guard clients.removeValue(forKey: ObjectIdentifier(client)) != nil else { return false }
            clients = clients.filter { $0.value.client != nil }
            return clients.isEmpty && everHadClient
        }
        if last { underlying.close() }
    }

    /// One client's view: its own event queue and wake pipe.
    fileprivate final class Client: QMPMonitor, @unchecked Sendable {
        let shared: SharedQMPMonitor
        // Guarded by shared.lock.
        var queue: [QMPMessage] = []
        var head = 0
        var dropped = 0
        var hasEvents: Bool { queue.count > head }
        let wakeRead: Int32
        private let wakeWrite: Int32
        private var closed = false

        init(shared: SharedQMPMonitor) {
            self.shared = shared
            var fds: [Int32] = [-1, -1]
            _ = pipe(&fds)
            for fd in fds where fd >= 0 {
                _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            }
            wakeRead = fds[0]; wakeWrite = fds[1]
        }
        deinit { close(); Glibc.close(wakeRead); Glibc.close(wakeWrite) }

        var address: String { shared.address }
        var qemuVersion: String { shared.qemuVersion }
        var pollDescriptor: Int32 { shared.pollDescriptor(for: self) }

        func execute(_ command: String, arguments: [String: Any]?, timeout: Double) throws -> Any {
            guard !closed else { throw QMPError.closed(address: address) }
            return try shared.execute(command, arguments: arguments, timeout: timeout)
        }

        func takeEvents(waiting seconds: Double) throws -> [QMPMessage] {
            guard !closed else { throw QMPError.closed(address: address) }
            return try shared.take(for: self, waiting: seconds)
        }

        func close() {
            guard !closed else { return }
            closed = true
            shared.leave(self)
        }

        /// Under shared.lock.
        func enqueue(_ events: [QMPMessage]) {
            queue.append(contentsOf: events)
            let over = queue.count - head - shared.maxQueuedEvents
            if over > 0 { head += over; dropped += over }
            if head > 4096, head * 2 > queue.count { queue.removeFirst(head); head = 0 }
            wake()
        }

        /// Under shared.lock.
        func drain() -> [QMPMessage] {
            var byte: UInt8 = 0
            while read(wakeRead, &byte, 1) == 1 {}
            defer { queue.removeAll(keepingCapacity: true); head = 0 }
            return Array(queue[head...])
        }

        func wake() {
            var byte: UInt8 = 1
            _ = write(wakeWrite, &byte, 1)   // a full pipe is already a wake-up
        }
    }
}

extension SharedQMPMonitor {
    /// Events dropped so far for the client `monitor` (one of `client()`'s), its queue being full.
    public func droppedEvents(of monitor: any QMPMonitor) -> Int {
        guard let c = monitor as? Client else { return 0 }
        return lock.withLock { c.dropped }
    }
}
