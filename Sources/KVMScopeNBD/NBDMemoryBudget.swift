import Foundation
import NIOCore

/// Bytes that all connections together may hold (`NBDServerLimits.maxTotalBytes`). A connection
/// reserves a request's bytes before it starts it and releases them once the reply is written;
/// one that cannot reserve stops reading and is woken on its own event loop when bytes come free.
public final class NBDMemoryBudget: @unchecked Sendable {
    public let limit: Int
    private let lock = NSLock()
    private var used = 0
    private var peak = 0
    private var waiters: [ObjectIdentifier: (EventLoop, @Sendable () -> Void)] = [:]

    public init(limit: Int) { self.limit = limit }

    /// Reserves `bytes`, or registers `wake` (run on `eventLoop` after the next release) and
    /// returns false.
    func reserve(_ bytes: Int, for owner: AnyObject, on eventLoop: EventLoop, wake: @escaping @Sendable () -> Void) -> Bool {
        lock.lock(); defer { lock.unlock() }
        if used + bytes <= limit {
            used += bytes
            peak = max(peak, used)
            return true
        }
        waiters[ObjectIdentifier(owner)] = (eventLoop, wake)
        return false
    }

    func release(_ bytes: Int) {
        lock.lock()
        used -= bytes
        let woken = waiters
        waiters.removeAll()
        lock.unlock()
        for (_, (loop, wake)) in woken { loop.execute(wake) }
    }

    /// A connection that closes stops waiting.
    func forget(_ owner: AnyObject) {
        lock.lock(); waiters[ObjectIdentifier(owner)] = nil; lock.unlock()
    }

    /// Bytes reserved now, and the most ever reserved at once.
    public var usage: (current: Int, peak: Int) {
        lock.lock(); defer { lock.unlock() }
        return (used, peak)
    }
}
