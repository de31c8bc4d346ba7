import Foundation

/// blkdebug's breakpoints, which qemu-io's `break`, `resume`, `wait_break` and `remove_break`
/// drive (block/blkdebug.c: `blkdebug_debug_breakpoint`, `suspend_request`,
/// `blkdebug_debug_resume`, `blkdebug_debug_remove_breakpoint`, `blkdebug_debug_is_suspended`):
///
/// - `break EVENT TAG` adds a suspend rule that matches in every state; the first request that
///   fires EVENT consumes the rule and stops there, tagged TAG, printing
///   `blkdebug: Suspended request 'TAG'`.
/// - `resume TAG` lets the most recently suspended request with that tag go on (it prints
///   `blkdebug: Resuming request 'TAG'`); `remove_break TAG` drops the rules with that tag and
///   resumes every request suspended with it. Both fail with ENOENT when there was nothing.
///
/// A request stops on the thread that runs it: `reach` blocks there until it is resumed. The
/// `observer` hears of each stop and each resume so that a caller waiting for its requests to
/// reach a resting point (done or stopped) knows when they have.
public final class BlkdebugBreakpoints: @unchecked Sendable {
    /// Told, on the requesting thread, that a request stopped (before it blocks), and, on the
    /// resuming thread, that one will go on (before it wakes, so that no waiter can see it as
    /// neither stopped nor running). `mayStop` answers whether this thread may block at all:
    /// a request nobody else can resume (qemu-io's synchronous commands) must not.
    public struct Observer {
        public var mayStop: () -> Bool
        public var stopped: (_ tag: String) -> Void
        public var willResume: (_ tag: String) -> Void
        /// On the requesting thread, once it runs again.
        public var resumed: (_ tag: String) -> Void
        public var refusedStop: (_ tag: String, _ event: BlkdebugEvent) -> Void
        public init(mayStop: @escaping () -> Bool, stopped: @escaping (String) -> Void,
                    willResume: @escaping (String) -> Void, resumed: @escaping (String) -> Void,
                    refusedStop: @escaping (String, BlkdebugEvent) -> Void) {
            self.mayStop = mayStop
            self.stopped = stopped
            self.willResume = willResume
            self.resumed = resumed
            self.refusedStop = refusedStop
        }
    }

    private struct Rule { let event: BlkdebugEvent; let tag: String }
    private final class Stopped {
        let tag: String
        var resumed = false
        init(tag: String) { self.tag = tag }
    }

    private let condition = NSCondition()
    /// Newest first, as blkdebug inserts at the head of its rule list.
    private var rules: [Rule] = []
    /// Newest first (blkdebug's `suspended_reqs` list, also head-inserted).
    private var stopped: [Stopped] = []
    private let observer: Observer

    public init(observer: Observer) { self.observer = observer }

    public func add(event: BlkdebugEvent, tag: String) {
        condition.lock(); defer { condition.unlock() }
        rules.insert(Rule(event: event, tag: tag), at: 0)
    }

    /// Removes the rules with `tag` and resumes its stopped requests. QEMU 7.2 reports ENOENT
    /// whenever it resumed a request this way (`resume_req_by_tag` with all=true ends by
    /// returning -ENOENT), so the answer is QEMU's: found only when rules went and nothing was
    /// resumed.
    public func remove(tag: String) -> (removedRules: Bool, resumed: Int) {
        condition.lock(); defer { condition.unlock() }
        let before = rules.count
        rules.removeAll { $0.tag == tag }
        var resumed = 0
        for s in stopped where s.tag == tag && !s.resumed {
            wake(s)
            resumed += 1
        }
        return (rules.count != before, resumed)
    }

    /// Resumes the most recent request stopped with `tag`; false when there is none.
    public func resume(tag: String) -> Bool {
        condition.lock(); defer { condition.unlock() }
        guard let s = stopped.first(where: { $0.tag == tag && !$0.resumed }) else { return false }
        wake(s)
        return true
    }

    /// Resumes every stopped request (at the end of a session) and returns their tags.
    public func resumeAll() -> [String] {
        condition.lock(); defer { condition.unlock() }
        let tags = stopped.filter { !$0.resumed }.map(\.tag)
        for s in stopped where !s.resumed { wake(s) }
        return tags
    }

    public func isSuspended(tag: String) -> Bool {
        condition.lock(); defer { condition.unlock() }
        return stopped.contains { $0.tag == tag && !$0.resumed }
    }

    public var hasRules: Bool {
        condition.lock(); defer { condition.unlock() }
        return !rules.isEmpty
    }

    private func wake(_ s: Stopped) {
        observer.willResume(s.tag)
        s.resumed = true
        condition.broadcast()
    }

    /// Called as a request fires `event`: stops it here if a rule asks to.
    public func reach(_ event: BlkdebugEvent) {
        condition.lock()
        guard let index = rules.firstIndex(where: { $0.event == event }) else { condition.unlock(); return }
        let rule = rules.remove(at: index)
        guard observer.mayStop() else {
            condition.unlock()
            observer.refusedStop(rule.tag, event)
            return
        }
        let s = Stopped(tag: rule.tag)
        stopped.insert(s, at: 0)
        observer.stopped(rule.tag)
        while !s.resumed { condition.wait() }
        stopped.removeAll { $0 === s }
        condition.unlock()
        observer.resumed(rule.tag)
    }
}
