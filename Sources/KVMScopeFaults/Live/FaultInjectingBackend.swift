import Foundation

/// A disk (a raw image file, or an upstream NBD export: any `LowerDisk`) with blkdebug's rule
/// engine in front, firing the events QEMU's block layer fires for a raw image under blkdebug
/// (`-drive file=blkdebug:rules.cfg:disk.img,format=raw`, or `blkdebug:rules.cfg:nbd:...`):
///
/// | request      | events, in order                                   | checked as   |
/// |--------------|----------------------------------------------------|--------------|
/// | read         | read_aio                                           | read         |
/// | write        | write_aio, pwritev, (I/O), pwritev_done            | write        |
/// | write zeroes | pwritev_zero, (I/O), pwritev_done                  | write-zeroes |
/// | discard      | —                                                  | discard      |
/// | flush        | flush_to_os; if anything was written since the last successful flush: flush_to_disk, (fsync) | flush |
/// | block status | —                                                  | block-status |
///
/// A FUA write (or any write with `writethrough`, qemu-io's default cache mode) is the write
/// followed by a flush, as QEMU emulates FUA on files; a disk that does FUA itself (an NBD
/// upstream with NBD_FLAG_SEND_FUA) gets it passed down instead, as QEMU's block layer passes
/// BDRV_REQ_FUA to a driver whose supported_write_flags have it (block/io.c bdrv_driver_pwritev). Like blkdebug, an injected error skips the
/// I/O; a flush with nothing written since the last successful one does nothing and cannot fail.
public final class FaultInjectingBackend: BlockBackend, @unchecked Sendable {
    public let image: any LowerDisk
    /// qemu-io's default (`-t writethrough`): every write carries FUA.
    public let writethrough: Bool
    private var engine: FaultRuleEngine?
    /// kvmscope's own sections ([error-rate], [bad-blocks], ...), applied after blkdebug's rules.
    private var extra: KvmscopeFaultEngine?
    /// The rules in force (nil: none), for what a reply held back before a change still owes.
    private var rules: BlkdebugConfig?
    private let lock = NSLock()
    /// QEMU's write_gen / flushed_gen: a flush only reaches the disk if something was written since.
    private var writeGeneration: UInt64 = 0
    private var flushedGeneration: UInt64 = 0
    /// `kvmscope io` only: the raw format node above blkdebug that qemu-io opens
    /// (`-f raw blkdebug:rules:img`), with write_gen / flushed_gen of its own. It emulates FUA
    /// (writethrough, `write -f`) by flushing itself inside the write, before its
    /// bdrv_co_write_req_finish counts the write (block/io.c: bdrv_driver_pwritev's emulated
    /// flush, then write_gen++), while blkdebug's node below has already counted it. A node's
    /// bdrv_co_flush fires flush_to_disk into its child only when its own generations differ,
    /// so the raw node's flush after a first write fires no flush_to_disk; then it flushes its
    /// children, and blkdebug's node, whose generations differ, checks the flush rules
    /// (blkdebug_co_flush) and fdatasyncs. So a FUA write is still durable, the first one
    /// too; only the event lags one write behind. The NBD server leaves this off and keeps one
    /// pair of generations.
    public let formatNodeAbove: Bool
    private var formatWriteGeneration: UInt64 = 0
    private var formatFlushedGeneration: UInt64 = 0
    /// qemu-io's `break` points (set before the first request; `kvmscope io` only): a request
    /// stops at an event before the event is fired into the rules, outside the lock.
    public var breakpoints: BlkdebugBreakpoints?
    /// The rules' clock, for the engines a change of rules builds too: a [rate] pipe kept across
    /// a change holds times on it.
    private let clock: () -> Double

    public init(image: any LowerDisk, rules: BlkdebugConfig?, seed: UInt64 = 1, writethrough: Bool = false,
                formatNodeAbove: Bool = false, clock: @escaping () -> Double = FaultRuleEngine.monotonicSeconds) {
        self.image = image
        self.writethrough = writethrough
        self.formatNodeAbove = formatNodeAbove
        self.rules = rules
        self.clock = clock
        if let rules, !rules.isEmpty { engine = FaultRuleEngine(config: rules, seed: seed, clock: clock) }
        if let rules, !rules.kvmscope.isEmpty { extra = KvmscopeFaultEngine(sections: rules.kvmscope, clock: clock) }
    }

    public var size: Int64 { image.size }
    public var isReadOnly: Bool { image.isReadOnly }

    /// The disk's, but FUA always: emulated by a flush when the disk does not do it itself, and
    /// also honoured by a disk without a cache (nothing to flush, writes are durable). Flush is
    /// announced only when the disk has one.
    public var capabilities: DiskCapabilities {
        var c = image.capabilities
        c.fua = true
        return c
    }

    /// Swaps in new rules (SIGHUP, `nbd control`): a fresh engine, as if blkdebug were reopened
    /// (state 1, `none` fired), except that a [rate] the change left as it was keeps its pipe:
    /// with an empty one, new requests would pass at full speed beside the backlog still
    /// waiting, and the server would exceed the rate until it drained.
    public func replaceRules(_ rules: BlkdebugConfig?, seed: UInt64 = 1) {
        let fresh = (rules?.isEmpty ?? true) ? nil : FaultRuleEngine(config: rules!, seed: seed, clock: clock)
        lock.lock(); defer { lock.unlock() }
        extra = (rules?.kvmscope.isEmpty ?? true) ? nil : KvmscopeFaultEngine(sections: rules!.kvmscope, clock: clock, previous: extra)
        engine = fresh
        self.rules = rules
    }

    /// A reply held back when the rules changed waits only for what the rules now in force ask
    /// of it: nothing for a rule that is gone (a removed [rate] or [delay] lets its waiters go),
    /// at most what the [delay] or `delay =` at the same place asks for now (a shorter delay
    /// shortens the waits already running; a longer one applies to new requests only), all of
    /// it for a [rate] with the same speed (another speed: the wait ends, new requests use the
    /// new pipe).
    public func owedDelay(_ fault: InjectedFault) -> UInt64 {
        lock.lock(); defer { lock.unlock() }
        guard fault.delayNanoseconds > 0, let rules else { return 0 }
        let at = fault.rule.location
        switch fault.kind {
        case .injectError:
            guard let r = rules.injectErrors.first(where: { $0.location == at }) else { return 0 }
            return min(fault.delayNanoseconds, r.extensions.delayNanoseconds ?? 0)
        case .delay:
            guard let kind = FaultOperationKind(fault.operation),
                  let s = rules.kvmscope.delays.first(where: { $0.location == at }) else { return 0 }
            return min(fault.delayNanoseconds, s.delays[kind.rawValue])
        case .rate:
            guard let s = rules.kvmscope.rates.first(where: { $0.location == at }) else { return 0 }
            let same = fault.connectionBitsPerSecond > 0 ? s.connectionBitsPerSecond == fault.connectionBitsPerSecond
                : s.bitsPerSecond == fault.bitsPerSecond
            return same ? fault.delayNanoseconds : 0
        default:
            return fault.delayNanoseconds
        }
    }

    /// A reply held by a [stall] whose section a change removed is let go.
    public func holdsStall(_ stall: FaultStall) -> Bool {
        lock.lock(); defer { lock.unlock() }
        return rules?.kvmscope.stalls.contains { $0.location == stall.location } ?? false
    }

    /// The engine's hit counters (copy), for reports.
    public func ruleHits() -> [Int] {
        lock.lock(); defer { lock.unlock() }
        return engine?.hits ?? []
    }

    public var currentState: Int {
        lock.lock(); defer { lock.unlock() }
        return engine?.state ?? 1
    }

    // MARK: - rule plumbing

    /// Fires `events` and checks the request, under the lock.
    private func decide(_ events: [BlkdebugEvent], _ op: BlockOperation, offset: Int64, length: Int64) -> InjectedFault? {
        if let breakpoints {
            for e in events {
                breakpoints.reach(e)
                lock.lock(); engine?.fire(e); lock.unlock()
            }
        }
        lock.lock(); defer { lock.unlock() }
        guard let engine else { return nil }
        if breakpoints == nil { for e in events { engine.fire(e) } }
        guard let d = engine.check(offset: offset, bytes: op == .flush ? 0 : length, iotype: op.iotype),
              d.errno != 0 || d.delayNanoseconds != 0 else { return nil }
        return InjectedFault(rule: d.rule, ruleIndex: d.ruleIndex, operation: op, offset: offset, length: length,
                             errno: d.errno, delayNanoseconds: d.delayNanoseconds)
    }

    /// The kvmscope sections' decision for a request blkdebug let through, under the lock.
    private func decideExtra(_ op: BlockOperation, offset: Int64, length: Int64) -> KvmscopeFaultEngine.Decision? {
        lock.lock(); defer { lock.unlock() }
        return extra?.decide(op, offset: offset, length: length)
    }

    /// `c` with the kvmscope sections' errno (if `c` succeeded), delay, stall and faults added.
    private func with(_ c: BlockCompletion, _ d: KvmscopeFaultEngine.Decision?) -> BlockCompletion {
        guard let d else { return c }
        let (delay, overflow) = c.delayNanoseconds.addingReportingOverflow(d.delayNanoseconds)
        return BlockCompletion(errno: c.errno != 0 ? c.errno : d.errno, delayNanoseconds: overflow ? .max : delay,
                               faults: c.faults + d.faults, stall: c.stall ?? d.stall)
    }

    private func written(offset: Int64, length: Int64) {
        lock.lock(); defer { lock.unlock() }
        extra?.written(offset: offset, length: length)
    }

    private func fire(_ event: BlkdebugEvent) {
        breakpoints?.reach(event)
        lock.lock(); defer { lock.unlock() }
        engine?.fire(event)
        if event == .pwritevDone { writeGeneration &+= 1 }
    }

    private func completion(_ fault: InjectedFault?, ioErrno: Int32 = 0) -> BlockCompletion {
        guard let fault else { return BlockCompletion(errno: ioErrno) }
        return BlockCompletion(errno: fault.errno != 0 ? fault.errno : ioErrno, delayNanoseconds: fault.delayNanoseconds, faults: [fault])
    }

    private func merge(_ a: BlockCompletion, _ b: BlockCompletion) -> BlockCompletion {
        let (delay, overflow) = a.delayNanoseconds.addingReportingOverflow(b.delayNanoseconds)
        return BlockCompletion(errno: a.errno != 0 ? a.errno : b.errno, delayNanoseconds: overflow ? .max : delay,
                               faults: a.faults + b.faults, stall: a.stall ?? b.stall)
    }

    /// The format node's bdrv_co_write_req_finish: write_gen++ once its request is done.
    private func countFormatNodeWrite() {
        guard formatNodeAbove else { return }
        lock.lock(); formatWriteGeneration &+= 1; lock.unlock()
    }

    private func flushedGenerationLocked() -> UInt64 {
        lock.lock(); defer { lock.unlock() }
        return flushedGeneration
    }

    // MARK: - BlockBackend

    public func read(offset: Int64, into buffer: UnsafeMutableRawBufferPointer) -> BlockCompletion {
        let fault = decide([.readAIO], .read, offset: offset, length: Int64(buffer.count))
        if let fault, fault.errno != 0 { return completion(fault) }
        let d = decideExtra(.read, offset: offset, length: Int64(buffer.count))
        if let d, d.errno != 0 { return with(completion(fault), d) }
        var result = completion(fault, ioErrno: image.read(offset: offset, into: buffer))
        if result.succeeded, d != nil {
            lock.lock()
            result.faults += extra?.flipBits(offset: offset, buffer: buffer) ?? []
            lock.unlock()
        }
        return with(result, d)
    }

    public func write(offset: Int64, from buffer: UnsafeRawBufferPointer, fua: Bool) -> BlockCompletion {
        if isReadOnly { return BlockCompletion(errno: EPERM) }
        let fault = decide([.writeAIO, .pwritev], .write, offset: offset, length: Int64(buffer.count))
        let nativeFUA = (fua || writethrough) && image.capabilities.fua
        var result: BlockCompletion
        if let fault, fault.errno != 0 {
            result = completion(fault)
        } else {
            let d = decideExtra(.write, offset: offset, length: Int64(buffer.count))
            if let d, d.errno != 0 || d.dropWrite {
                result = with(completion(fault), d)          // failed, or dropped by [flakey] drop-writes
            } else {
                result = completion(fault, ioErrno: image.write(offset: offset, from: buffer, fua: nativeFUA))
                if result.succeeded && d != nil { written(offset: offset, length: Int64(buffer.count)) }
                result = with(result, d)
            }
        }
        fire(.pwritevDone)
        if result.succeeded && (fua || writethrough) && !nativeFUA { result = merge(result, flush()) }
        countFormatNodeWrite()
        if result.succeeded { (image as? RawImageFile)?.coverCompletedWrite(end: offset + Int64(buffer.count)) }
        return result
    }

    public func writeZeroes(offset: Int64, length: Int64, mayUnmap: Bool, fua: Bool) -> BlockCompletion {
        writeZeroes(offset: offset, length: length, mayUnmap: mayUnmap, fua: fua, noFallback: false)
    }

    /// With `noFallback` (qemu-io's `write -z -n`, BDRV_REQ_NO_FALLBACK), an ENOTSUP, from a rule
    /// or from the disk, is the answer: block/io.c bdrv_co_do_pwrite_zeroes falls back to
    /// writing a zeroed buffer only without the flag.
    public func writeZeroes(offset: Int64, length: Int64, mayUnmap: Bool, fua: Bool, noFallback: Bool) -> BlockCompletion {
        if isReadOnly { return BlockCompletion(errno: EPERM) }
        let fault = decide([.pwritevZero], .writeZeroes, offset: offset, length: length)
        let nativeFUA = (fua || writethrough) && image.capabilities.fua
        var result: BlockCompletion
        if let fault, fault.errno == EOPNOTSUPP, noFallback {
            result = completion(fault)
        } else if let fault, fault.errno == EOPNOTSUPP {
            // QEMU's block layer answers ENOTSUP from write-zeroes by writing a zeroed buffer,
            // which blkdebug then checks as a write.
            let again = decide([], .write, offset: offset, length: length)
            let e: Int32
            if let again, again.errno != 0 { e = again.errno } else { e = image.writeZeroes(offset: offset, length: length, mayUnmap: false, fua: nativeFUA) }
            result = BlockCompletion(errno: e, delayNanoseconds: fault.delayNanoseconds + (again?.delayNanoseconds ?? 0),
                                     faults: [fault] + (again.map { [$0] } ?? []))
        } else if let fault, fault.errno != 0 {
            result = completion(fault)
        } else {
            let d = decideExtra(.writeZeroes, offset: offset, length: length)
            if let d, d.errno != 0 || d.dropWrite {
                result = with(completion(fault), d)
            } else {
                let e = noFallback ? image.writeZeroesWithoutFallback(offset: offset, length: length, mayUnmap: mayUnmap, fua: nativeFUA)
                    : image.writeZeroes(offset: offset, length: length, mayUnmap: mayUnmap, fua: nativeFUA)
                result = completion(fault, ioErrno: e)
                if result.succeeded && d != nil { written(offset: offset, length: length) }
                result = with(result, d)
            }
        }
        fire(.pwritevDone)
        if result.succeeded && (fua || writethrough) && !nativeFUA { result = merge(result, flush()) }
        countFormatNodeWrite()
        if result.succeeded { (image as? RawImageFile)?.coverCompletedWrite(end: offset + length) }
        return result
    }

    public func discard(offset: Int64, length: Int64) -> BlockCompletion {
        if isReadOnly { return BlockCompletion(errno: EPERM) }
        let fault = decide([], .discard, offset: offset, length: length)
        let result: BlockCompletion
        // QEMU's block layer treats ENOTSUP from a discard as success (discard is advisory).
        if let fault, fault.errno == EOPNOTSUPP {
            result = BlockCompletion(delayNanoseconds: fault.delayNanoseconds, faults: [fault])
        } else if let fault, fault.errno != 0 {
            result = completion(fault)
        } else if let d = decideExtra(.discard, offset: offset, length: length) {
            result = with(d.errno != 0 || d.dropWrite ? completion(fault)
                          : completion(fault, ioErrno: image.discard(offset: offset, length: length)), d)
        } else {
            result = completion(fault, ioErrno: image.discard(offset: offset, length: length))
        }
        // Counted after the hole is punched, whatever the outcome, as QEMU's
        // bdrv_co_write_req_finish counts write_gen: counted before, a flush running meanwhile
        // could record this generation as synced before the punch, and the next flush (after
        // the trim's reply) would skip the fdatasync it needs.
        lock.lock(); writeGeneration &+= 1; lock.unlock()
        countFormatNodeWrite()
        return result
    }

    public func flush() -> BlockCompletion {
        // kvmscope's sections see every flush request, as nbdkit's filters do, also one with
        // nothing to write back (which blkdebug's rules never see).
        if let d = decideExtra(.flush, offset: 0, length: 0) {
            return d.errno != 0 ? with(.ok, d) : with(blkdebugFlush(), d)
        }
        return blkdebugFlush()
    }

    private func blkdebugFlush() -> BlockCompletion {
        breakpoints?.reach(.flushToOS)
        lock.lock()
        engine?.fire(.flushToOS)
        let generation = writeGeneration
        let formatGeneration = formatWriteGeneration
        // Without a format node, blkdebug's own flush_to_disk stands for it (one node).
        let formatDirty = formatNodeAbove ? formatGeneration != formatFlushedGeneration : generation != flushedGeneration
        lock.unlock()
        let dirty = generation != flushedGenerationLocked()
        guard dirty || formatDirty else { return .ok }
        let events: [BlkdebugEvent] = formatDirty ? [.flushToDisk] : []
        guard dirty else {
            // The format node fires flush_to_disk; blkdebug's node below has nothing to flush,
            // so no flush rule is checked and nothing is synced (block/io.c bdrv_co_flush).
            for e in events {
                breakpoints?.reach(e)
                lock.lock(); engine?.fire(e); lock.unlock()
            }
            markFormatNodeFlushed(formatGeneration)
            return .ok
        }
        let fault = decide(events, .flush, offset: 0, length: 0)
        if let fault, fault.errno != 0 { return completion(fault) }
        let e = image.sync()
        if e == 0 {
            lock.lock()
            if generation > flushedGeneration { flushedGeneration = generation }
            lock.unlock()
            markFormatNodeFlushed(formatGeneration)
        }
        return completion(fault, ioErrno: e)
    }

    /// bdrv_co_flush's `if (ret == 0) bs->flushed_gen = current_gen`, for the format node.
    private func markFormatNodeFlushed(_ generation: UInt64) {
        guard formatNodeAbove else { return }
        lock.lock()
        if generation > formatFlushedGeneration { formatFlushedGeneration = generation }
        lock.unlock()
    }

    /// blkdebug forwards a truncate to its file without checking rules or firing events
    /// (block/blkdebug.c `blkdebug_co_truncate`).
    public func resize(to size: Int64, preallocation: Preallocation) -> String? {
        image.resize(to: size, preallocation: preallocation)
    }

    /// The lower disk's allocation (SEEK_DATA/SEEK_HOLE on a file, an NBD upstream's
    /// base:allocation). blkdebug checks a block status query against its rules with iotype
    /// block-status and fires no event (block/blkdebug.c `blkdebug_co_block_status`); an
    /// injected error skips the query.
    public func blockStatus(offset: Int64, length: Int64) -> BlockStatusResult {
        let fault = decide([], .blockStatus, offset: offset, length: length)
        if let fault, fault.errno != 0 { return BlockStatusResult(completion: completion(fault), extents: []) }
        let (e, extents) = image.blockAllocation(offset: offset, length: length)
        return BlockStatusResult(completion: completion(fault, ioErrno: e), extents: extents)
    }
}
