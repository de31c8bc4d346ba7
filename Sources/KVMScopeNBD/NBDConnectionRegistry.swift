import Foundation
import NIOCore

/// The server's open client connections: enforces `maxConnections` and lets `shutdown()` close
/// them all at once. Shared by every listener (its lock makes it safe from any event loop).
final class NBDConnectionRegistry: @unchecked Sendable {
    private let lock = NSLock()
    private var channels: [ObjectIdentifier: Channel] = [:]
    private var closing = false
    private var refusedSinceReport = 0
    private var lastReport: NIODeadline?
    let limit: Int

    init(limit: Int) { self.limit = limit }

    /// Admits `channel` (removed again when it closes), or says how many refusals to report now:
    /// nil when admitted, 0 when the refusal is counted for the next report (at most one a second).
    func admit(_ channel: Channel) -> (refused: Bool, report: Int?) {
        lock.lock()
        if !closing && channels.count < limit {
            channels[ObjectIdentifier(channel)] = channel
            lock.unlock()
            channel.closeFuture.whenComplete { [self] _ in
                lock.lock(); channels[ObjectIdentifier(channel)] = nil; lock.unlock()
            }
            return (false, nil)
        }
        let now = NIODeadline.now()
        defer { lock.unlock() }
        if let last = lastReport, now - last < .seconds(1) {
            refusedSinceReport += 1
            return (true, nil)
        }
        let suppressed = refusedSinceReport
        refusedSinceReport = 0
        lastReport = now
        return (true, suppressed)
    }

    var count: Int { lock.lock(); defer { lock.unlock() }; return channels.count }

    /// Calls `body` with each open connection (outside the lock).
    func forEach(_ body: (Channel) -> Void) {
        lock.lock()
        let open = Array(channels.values)
        lock.unlock()
        open.forEach(body)
    }

    /// Stops admitting and closes every connection; the futures complete when they are closed.
    func closeAll(on eventLoop: EventLoop) -> EventLoopFuture<Void> {
        lock.lock()
        closing = true
        let open = Array(channels.values)
        lock.unlock()
        let closed = open.map { c in c.close().flatMapError { _ in c.eventLoop.makeSucceededFuture(()) } }
        return EventLoopFuture.andAllComplete(closed, on: eventLoop)
    }
}
