import Foundation

/// The requests qemu-io runs in the background (aio_read, aio_write) and what waits for them
/// (aio_flush, sleep, wait_break), with blkdebug's breakpoints (break, resume, remove_break).
///
/// Each background request runs on a thread of its own. After submitting one, and after
/// resuming one, the session waits until no request is running inside the backend: each has
/// either returned from it or stopped at a breakpoint. That is where qemu-io's coroutine would
/// yield, so `blkdebug: Suspended request` lines come out where qemu-io prints them, and
/// `wait_break` can tell at once whether a request is stopped. Completed requests report when
/// the session next polls (after a command, in aio_flush, sleep and wait_break, before a
/// prompt), as qemu-io's callbacks run from its main loop.
///
/// Where qemu-io would wait forever, kvmscope says so and goes on: a synchronous request that
/// reaches a breakpoint (nobody could resume it), `wait_break` on a tag no request stopped at,
/// `aio_flush` with requests still stopped, and the end of the session with some stopped
/// (they are resumed).
final class AsyncRequests: @unchecked Sendable {
    private let condition = NSCondition()
    /// Background requests inside the backend and not stopped at a breakpoint.
    private var running = 0
    /// Submitted and not yet completed (stopped ones included).
    private var inFlight = 0
    private var inFlightBytes = 0
    private var stopped = 0
    /// Reports of completed requests, in the order they completed.
    private var completed: [String] = []
    private let sessionThread = pthread_self()

    /// What a script can keep in flight at once: threads and buffers are bounded, not the input.
    static let maxInFlight = 256
    static let maxInFlightBytes = 4 << 30

    func breakpointObserver(session: QemuIOSession) -> BlkdebugBreakpoints.Observer {
        let sessionThread = self.sessionThread
        return BlkdebugBreakpoints.Observer(
            mayStop: { pthread_equal(pthread_self(), sessionThread) == 0 },
            stopped: { [unowned self, unowned session] tag in
                session.out("blkdebug: Suspended request '\(tag)'\n")
                condition.lock(); running -= 1; stopped += 1; condition.broadcast(); condition.unlock()
            },
            willResume: { [unowned self] _ in
                condition.lock(); running += 1; stopped -= 1; condition.unlock()
            },
            resumed: { [unowned session] tag in session.out("blkdebug: Resuming request '\(tag)'\n") },
            refusedStop: { [unowned session] tag, event in
                session.err("\(session.programName): the request reached breakpoint '\(tag)' at \(event.rawValue), where qemu-io would wait "
                            + "forever (only aio_read and aio_write requests can be resumed): it went on, and the breakpoint is used up\n")
            })
    }

    /// Starts `work` on a thread of its own and waits until it has left the backend or stopped
    /// at a breakpoint. `work` calls its argument when the backend call returned and gives the
    /// report to print. False (and nothing started) when the bounds are reached and nothing
    /// in flight can complete to make room.
    func submit(bytes: Int, _ work: @escaping (_ leftBackend: @escaping () -> Void) -> String) -> String? {
        condition.lock()
        while inFlight >= Self.maxInFlight || (inFlight > 0 && inFlightBytes + bytes > Self.maxInFlightBytes) {
            if inFlight == stopped {
                condition.unlock()
                return "too many requests in flight (\(inFlight), \(inFlightBytes) bytes; at most \(Self.maxInFlight) and "
                    + "\(Self.maxInFlightBytes) bytes), and all of them are stopped at breakpoints: resume some first"
            }
            condition.wait()
        }
        inFlight += 1; inFlightBytes += bytes; running += 1
        condition.unlock()
        // The request's closure captures the session, which is not Sendable: what it touches
        // from this thread (the backend, the output and fault sinks) is thread-safe.
        let work = UncheckedTransfer(work)
        let thread = Thread { [self] in
            var left = false
            let leave = { [self] in
                guard !left else { return }
                left = true
                condition.lock(); running -= 1; condition.broadcast(); condition.unlock()
            }
            let report = work.value(leave)
            leave()
            condition.lock()
            completed.append(report)
            inFlight -= 1; inFlightBytes -= bytes
            condition.broadcast()
            condition.unlock()
        }
        thread.stackSize = 1 << 20
        thread.start()
        settle()
        return nil
    }

    /// Waits until no background request runs inside the backend.
    func settle() {
        condition.lock()
        while running > 0 { condition.wait() }
        condition.unlock()
    }

    /// The reports of the requests completed since last time.
    func takeCompleted() -> [String] {
        condition.lock(); defer { condition.unlock() }
        let done = completed
        completed = []
        return done
    }

    /// Waits until every request completed but those stopped at breakpoints; returns how many
    /// are stopped.
    func drain() -> Int {
        condition.lock(); defer { condition.unlock() }
        while inFlight > stopped || running > 0 { condition.wait() }
        return stopped
    }

    /// Waits until `deadline` (monotonic seconds), or until a request completed.
    func waitForCompletion(until deadline: Double, now: () -> Double) {
        condition.lock(); defer { condition.unlock() }
        while completed.isEmpty {
            let left = deadline - now()
            if left <= 0 { return }
            _ = condition.wait(until: Date(timeIntervalSinceNow: min(left, 3600)))
        }
    }
}

/// A value handed to another thread whose thread safety the code, not the type, guarantees.
private struct UncheckedTransfer<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

extension QemuIOSession {
    var breakpoints: BlkdebugBreakpoints? { (backend as? FaultInjectingBackend)?.breakpoints }

    /// Prints what background requests reported since the last poll.
    public func deliverCompletions() {
        for report in async.takeCompleted() { out(report) }
    }

    /// At the end of a session: requests left stopped at breakpoints are resumed (qemu-io would
    /// hang), then everything in flight completes and reports.
    public func finish() {
        async.settle()
        if let tags = breakpoints?.resumeAll(), !tags.isEmpty {
            err("\(programName): resuming \(tags.count == 1 ? "a request" : "\(tags.count) requests") still stopped at "
                + tags.map { "'\($0)'" }.joined(separator: ", ") + " at the end (qemu-io would wait forever)\n")
            async.settle()
        }
        _ = async.drain()
        deliverCompletions()
    }

    func aioRead(_ cmd: Command, _ args: [String]) -> Bool {
        guard let (f, ops) = getopt(cmd, args, spec: "CP:iqv") else { return usage(cmd) }
        if f["i"] != nil {
            out("injecting invalid read request\n")
            return true
        }
        guard ops.count >= 2 else { return usage(cmd) }
        guard let r = vectoredRead(f, ops) else { return false }
        let backend = self.backend
        let t0 = now()
        let refused = async.submit(bytes: r.count) { [unowned self] leftBackend in
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: r.count, alignment: 4096)
            defer { buffer.deallocate() }
            buffer.initializeMemory(as: UInt8.self, repeating: 0xab)
            let completion = inRange(r.offset, Int64(r.count)) ? backend.read(offset: r.offset, into: buffer) : BlockCompletion(errno: EIO)
            leftBackend()
            let e = complete(completion, "aio_read")
            // aio_read_done prints what readv prints; a failure does not fail the command (it was submitted).
            return readOutcome(UnsafeRawBufferPointer(buffer), r, errno: e, seconds: now() - t0, flags: f).text
        }
        if let refused { report(refused); return false }
        return true
    }

    func aioWrite(_ cmd: Command, _ args: [String]) -> Bool {
        guard let (f, ops) = getopt(cmd, args, spec: "CfiqP:uz") else { return usage(cmd) }
        if f["i"] != nil {
            out("injecting invalid write request\n")
            return true
        }
        guard ops.count >= 2 else { return usage(cmd) }
        let zero = f["z"] != nil, fua = f["f"] != nil, mayUnmap = f["u"] != nil
        if zero && ops.count != 2 { out("-z supports only a single length parameter\n"); return false }
        if mayUnmap && !zero { out("-u requires -z to be specified\n"); return false }
        var fill: UInt8 = 0xcd
        if let p = f["P"] { guard let b = pattern(p) else { return false }; fill = b }
        guard let offset = number(ops[0]) else { return false }
        guard let lengths = vectorLengths(ops.dropFirst()) else { return false }
        let count = lengths.reduce(0, +)
        let quiet = f["q"] != nil, machine = f["C"] != nil
        let backend = self.backend
        let t0 = now()
        let refused = async.submit(bytes: zero ? 0 : count) { [unowned self] leftBackend in
            let completion: BlockCompletion
            if !inRange(offset, Int64(count)) {
                completion = BlockCompletion(errno: EIO)
            } else if zero {
                completion = backend.writeZeroes(offset: offset, length: Int64(count), mayUnmap: mayUnmap, fua: fua)
            } else {
                let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 4096)
                defer { buffer.deallocate() }
                buffer.initializeMemory(as: UInt8.self, repeating: fill)
                completion = backend.write(offset: offset, from: UnsafeRawBufferPointer(buffer), fua: fua)
            }
            leftBackend()
            let e = complete(completion, "aio_write")
            let t1 = now()
            if e != 0 { return "aio_write failed: \(strerror(e))\n" }
            if quiet { return "" }
            return QemuIOFormat.report("wrote", seconds: t1 - t0, offset: offset, count: Int64(count), total: Int64(count), ops: 1, machine: machine)
        }
        if let refused { report(refused); return false }
        return true
    }

    /// aio_flush_f: blk_drain_all, every request in flight completes.
    func aioFlush() -> Bool {
        let stoppedCount = async.drain()
        deliverCompletions()
        guard stoppedCount == 0 else {
            report("aio_flush: \(stoppedCount == 1 ? "a request is" : "\(stoppedCount) requests are") stopped at a breakpoint "
                   + "and cannot complete until resumed (qemu-io would wait forever)")
            return false
        }
        return true
    }

    /// sleep_f: strtol(arg, &end, 0) milliseconds; background requests report meanwhile.
    func sleep(_ arg: String) -> Bool {
        guard let ms = QemuIOFormat.strtol(arg), ms >= 0 else {
            out("\(arg) is not a valid number\n")
            return false
        }
        let deadline = now() + Double(ms) / 1000
        while now() < deadline {
            async.waitForCompletion(until: deadline, now: now)
            deliverCompletions()
        }
        return true
    }

    func setBreakpoint(event name: String, tag: String) -> Bool {
        // blkdebug_debug_breakpoint: an event name QEMU does not know is ENOENT.
        guard let event = BlkdebugEvent(rawValue: name), let breakpoints else {
            out("Could not set breakpoint: \(strerror(ENOENT))\n")
            return false
        }
        if !event.firesOnRawImage {
            err("\(programName): note: \(name) is an event of a format driver (qcow2); a raw image never fires it, so no request will stop at '\(tag)'\n")
        }
        breakpoints.add(event: event, tag: tag)
        return true
    }

    func resume(tag: String) -> Bool {
        guard let breakpoints, breakpoints.resume(tag: tag) else {
            out("Could not resume request: \(strerror(ENOENT))\n")
            return false
        }
        async.settle()
        return true
    }

    func removeBreakpoint(tag: String) -> Bool {
        let (removedRules, resumed) = breakpoints?.remove(tag: tag) ?? (false, 0)
        async.settle()
        // As QEMU 7.2: resuming requests this way still says ENOENT (BlkdebugBreakpoints.remove).
        guard removedRules && resumed == 0 else {
            out("Could not remove breakpoint \(tag): \(strerror(ENOENT))\n")
            return false
        }
        return true
    }

    /// wait_break_f: returns once a request is stopped with `tag`. Every background request has
    /// already either stopped or left the backend (events fire only inside it), so if none is
    /// stopped with `tag` now, none ever will be.
    func waitBreak(tag: String) -> Bool {
        async.settle()
        deliverCompletions()
        if breakpoints?.isSuspended(tag: tag) == true { return true }
        report("wait_break: no request is stopped at '\(tag)', and none still running can reach it (qemu-io would wait forever)")
        return false
    }
}
