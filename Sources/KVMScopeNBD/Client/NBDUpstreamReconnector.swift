import Foundation

/// Brings a lost upstream back for `NBDUpstreamDisk`: on the first request that finds the
/// connection dead, a thread of its own connects again and again (at once, then 0.25 s later,
/// doubling to every 2 s) until the upstream answers or the disk is closed, the way QEMU's NBD
/// client keeps reconnecting in the background (block/nbd.c, `nbd_co_reconnect_loop`) while
/// requests wait at most `reconnect-delay` seconds (`nbd_co_do_establish_connection` callers
/// give up after the delay). A new connection is used only if its export is the one the
/// first announced (same size, flags, block sizes, meta context available or not): anything
/// else is another disk, and writing to it as if it were this one would corrupt it — it is
/// closed and the attempts go on, so that the right upstream, started later, is taken.
public final class NBDUpstreamReconnector: @unchecked Sendable {
    public struct Policy: Sendable {
        /// Seconds a request waits for a reconnection before it fails with EIO.
        public var delay: Double
        /// Opens and negotiates a new connection (throws with one line when it cannot).
        public var connect: @Sendable () throws -> NBDClient
        public var log: @Sendable (String) -> Void

        public init(delay: Double, connect: @escaping @Sendable () throws -> NBDClient, log: @escaping @Sendable (String) -> Void) {
            self.delay = delay
            self.connect = connect
            self.log = log
        }
    }

    private let policy: Policy
    private let uri: NBDURI
    private let expected: NBDClient.Export
    private let condition = NSCondition()
    private var client: NBDClient
    /// When the connection in use was found dead (nil while it works).
    private var lostAt: Date?
    private var reconnecting = false
    private var closed = false

    init(first: NBDClient, policy: Policy) {
        client = first
        uri = first.uri
        expected = first.export
        self.policy = policy
    }

    var current: NBDClient {
        condition.lock(); defer { condition.unlock() }
        return client
    }

    /// The connection to send again on after `dead` died: a new one made within the delay
    /// counted from the loss, or nil (the request fails with EIO).
    func replacement(for dead: NBDClient) -> NBDClient? {
        condition.lock()
        defer { condition.unlock() }
        if client !== dead { return client }
        if closed { return nil }
        let since = lostAt ?? Date()
        lostAt = since
        if !reconnecting {
            reconnecting = true
            let thread = Thread { [self] in reconnectLoop(lost: dead) }
            thread.name = "kvmscope-nbd-reconnect"
            thread.start()
        }
        let deadline = since.addingTimeInterval(policy.delay)
        while client === dead && !closed {
            if !condition.wait(until: deadline) { break }
        }
        return client === dead ? nil : client
    }

    func stop() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }

    func close() {
        condition.lock()
        closed = true
        let c = client
        condition.broadcast()
        condition.unlock()
        c.close()
    }

    private func reconnectLoop(lost: NBDClient) {
        var pause = 0.125
        var attempts = 0
        var lastError = ""
        var lastDifference = ""
        while true {
            // At once first (the upstream may be back already), then 0.25 s, 0.5 s ... 2 s apart.
            if attempts > 0 { Thread.sleep(forTimeInterval: pause) }
            pause = min(pause * 2, 2)
            condition.lock()
            let stop = closed
            condition.unlock()
            if stop { return }
            attempts += 1
            let fresh: NBDClient
            do { fresh = try policy.connect() } catch {
                var message = (error as? NBDClientError)?.message ?? "\(error)"
                if message.hasPrefix("\(uri): ") { message.removeFirst("\(uri): ".count) }
                // One line per new reason, not one per attempt.
                if message != lastError { policy.log("upstream \(uri): reconnecting: \(message) (trying again, at most 2 s apart)") }
                lastError = message
                continue
            }
            if let difference = Self.difference(expected, fresh.export) {
                fresh.close()
                if difference != lastDifference {
                    policy.log("upstream \(uri) came back with \(difference): that is another disk, not used; still trying to reach the one served")
                }
                lastDifference = difference
                lastError = ""
                continue
            }
            condition.lock()
            let since = lostAt ?? Date()
            if closed {
                condition.unlock()
                fresh.close()
                return
            }
            client = fresh
            lostAt = nil
            reconnecting = false
            condition.broadcast()
            condition.unlock()
            let took = String(format: "%.1f", Date().timeIntervalSince(since))
            policy.log("upstream \(uri): reconnected \(took) s after a request found it gone (\(attempts) attempt\(attempts == 1 ? "" : "s")); requests go on")
            lost.close()
            return
        }
    }

    /// What makes `new` another disk than `old`, in words; nil when it is the same.
    static func difference(_ old: NBDClient.Export, _ new: NBDClient.Export) -> String? {
        if new.size != old.size { return "size \(new.size) instead of \(old.size) bytes" }
        if new.transmissionFlags != old.transmissionFlags {
            return "transmission flags 0x\(String(new.transmissionFlags, radix: 16)) instead of 0x\(String(old.transmissionFlags, radix: 16))"
        }
        if new.minimumBlockSize != old.minimumBlockSize || new.preferredBlockSize != old.preferredBlockSize || new.maximumPayload < old.maximumPayload {
            return "block sizes \(new.minimumBlockSize)/\(new.preferredBlockSize)/\(new.maximumPayload) instead of \(old.minimumBlockSize)/\(old.preferredBlockSize)/\(old.maximumPayload)"
        }
        if (new.allocationContext == nil) != (old.allocationContext == nil) {
            return new.allocationContext == nil ? "no base:allocation context" : "a base:allocation context it did not have"
        }
        return nil
    }
}
