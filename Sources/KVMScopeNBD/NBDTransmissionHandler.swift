import Foundation
import KVMScopeFaults
import NIOCore
import NIOSSL
import NIOPosix

/// The transmission phase of one connection: requests in, replies out, each request by one
/// call into the export's `BlockBackend`; replies to injected delays are scheduled, never slept on.
///
/// Back-pressure (issue 17): requests wait in `queue` and start in order only while the channel
/// is writable, fewer than `maxRequestsInFlight` are unanswered, and the request's bytes (its
/// read data or write payload, plus `requestOverheadBytes`) fit in this connection's and the
/// server's budget. While anything waits, `read()` is held back (like NIO's
/// `BackPressureHandler`), so a client that does not read its replies stops being read: its
/// requests stay in its own socket buffer, not in our memory.
public final class NBDTransmissionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = NBDTransmissionMessage
    public typealias OutboundIn = NBDServerMessage
    public typealias OutboundOut = NBDServerMessage

    private struct Pending {
        var request: NBDRequest
        /// A WRITE's payload once all of it has arrived (nil before, and when discarded); while
        /// it arrives it is `incoming`.
        var payload: ByteBuffer?
        var complete: Bool
        /// Bytes reserved for it (0: not yet).
        var reserved = 0
        /// A compact WRITE over the maximum payload, or (extended headers) a payload on a command
        /// that takes none: its parts are dropped and it gets EINVAL.
        var discardPayload = false
    }

    private let configuration: NBDServerConfiguration
    private let session: NBDSession
    private var context: ChannelHandlerContext?
    private var queue = CircularBuffer<Pending>()
    /// The last queued request is a WRITE whose payload is still arriving.
    private var receivingPayload = false
    /// That payload so far (nil until its first part, and when discarded). Kept out of `queue`:
    /// NIO's `CircularBuffer` subscript has only `get` and `set`, no `_modify`, so appending
    /// through `queue[last].payload!` held a second reference to the buffer, and each part (one
    /// socket read, at most 64 KiB with NIO's default `AdaptiveRecvByteBufferAllocator`) made
    /// `ByteBuffer` copy its whole storage (copy-on-write, the reserved 1 MiB) into a new one:
    /// about 16 copies of 1 MiB per 1 MiB write, memmove 48 % of the server's samples at depth
    /// 8. Here the buffer has one owner and grows in place.
    private var incoming: ByteBuffer?
    private var inFlight = 0
    private var reservedBytes = 0
    /// A reply held back by a delay or a [stall], with what it waits for, so that a change of
    /// rules (`NBDRulesChanged`) can let it go sooner.
    private struct HeldReply {
        var task: Scheduled<Void>
        var message: NBDServerMessage
        var reserved: Int
        var tally: ReplyTally
        var faults: [InjectedFault]
        var heldAt: NIODeadline
        var sendAt: NIODeadline
        var stall: FaultStall?
    }
    private var delayed: [Int: HeldReply] = [:]
    /// What a reply counts for in `summary`, counted once it is written (a reply held back when
    /// the connection closes was never an answer).
    private enum ReplyTally { case nothing, read(UInt64), write(UInt64), blockStatus, error }
    private var nextDelayID = 0
    private var readPending = false
    private var pumping = false
    /// A request's disk I/O is running on `configuration.ioThreads`; the next waits for it.
    private var ioBusy = false
    private var pumpAgain = false
    private var disconnectRequested = false
    private var closed = false
    private var writeTimer: Scheduled<Void>?
    private var requestTimer: Scheduled<Void>?
    private var summary = NBDConnectionSummary()
    /// [rate] connection-rate: this connection's own pipes (the engine is shared by all).
    private var connectionRates = ConnectionRatePipes()

    public init(configuration: NBDServerConfiguration, session: NBDSession) {
        self.configuration = configuration
        self.session = session
        summary.reachedTransmission = true
        summary.tls = session.tls
        summary.extendedHeaders = session.extendedHeaders
        if configuration.exports.count > 1 { summary.export = configuration.exports[session.exportIndex].name }
    }

    private var limits: NBDServerLimits { configuration.limits }
    private var backend: any BlockBackend { configuration.exports[session.exportIndex].backend }
    private var observer: (any NBDServerObserver)? { configuration.observer }
    private var client: String { session.client }

    // MARK: - lifecycle

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        teardown()
        self.context = nil
    }

    public func channelInactive(context: ChannelHandlerContext) {
        teardown()
        summary.connectedSeconds = Double((NIODeadline.now() - session.connectedAt).nanoseconds) / 1e9
        observer?.clientDisconnected(client, summary)
        context.fireChannelInactive()
    }

    /// Gives back every byte this connection holds: queued requests, delayed replies (their
    /// timers are cancelled, a delay may be hours), replies not yet written (their write promises
    /// fail when the channel closes, which releases them through `replyDone`).
    private func teardown() {
        guard !closed else { return }
        closed = true
        writeTimer?.cancel()
        requestTimer?.cancel()
        configuration.budget.forget(self)
        var bytes = 0
        while let p = queue.popFirst() { bytes += p.reserved }
        incoming = nil
        for (_, d) in delayed { d.task.cancel(); bytes += d.reserved; inFlight -= 1 }
        summary.unsentReplies += delayed.count
        delayed.removeAll()
        release(bytes)
    }

    private func release(_ bytes: Int) {
        guard bytes > 0 else { return }
        reservedBytes -= bytes
        configuration.budget.release(bytes)
    }

    private func close(_ context: ChannelHandlerContext, because reason: String) {
        if summary.closedBecause == nil { summary.closedBecause = reason }
        context.close(promise: nil)
    }

    public func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let e = error as? NBDTruncatedMessage {
            summary.truncated = e
            return
        }
        // A TLS client that closes its socket without TLS's close_notify (QEMU's NBD client does,
        // after NBD_CMD_DISC) has left like one that resets the connection.
        if let e = error as? NIOSSLError, e == .uncleanShutdown { return }
        if let e = error as? IOError, e.errnoCode == ECONNRESET || e.errnoCode == EPIPE {
            return   // the client went away; channelInactive reports it
        }
        let message = (error as? NBDProtocolError)?.description ?? "\(error)"
        observer?.protocolViolation(client, message)
        close(context, because: message)
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if (event as? IdleStateHandler.IdleStateEvent) == .all, let idle = limits.idleTimeout, inFlight == 0, queue.isEmpty {
            close(context, because: "idle for \(NBDPeer.seconds(idle))")
            return
        }
        if let change = event as? NBDRulesChanged {
            rulesChanged(context, change.tally)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    public func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            writeTimer?.cancel()
            writeTimer = nil
            pump()
        } else if writeTimer == nil {
            context.flush()
            armWriteTimer(context)
        }
        context.fireChannelWritabilityChanged()
    }

    /// While the socket is unwritable, the client must take some of its replies within
    /// `writeTimeout`: a slow reader that makes progress (fewer bytes queued than at the last
    /// check) gets another period, one that reads nothing is closed.
    private func armWriteTimer(_ context: ChannelHandlerContext, queuedBefore: Int? = nil) {
        let limit = limits.writeTimeout
        let queued = queuedBefore ?? queuedWriteBytes(context)
        writeTimer = context.eventLoop.scheduleTask(in: limit) { [self] in
            guard !closed, !context.channel.isWritable else { return }
            let now = queuedWriteBytes(context)
            if now < queued { return armWriteTimer(context, queuedBefore: now) }
            close(context, because: "read none of its replies for \(NBDPeer.seconds(limit)) (\(now) bytes waiting)")
        }
    }

    private func queuedWriteBytes(_ context: ChannelHandlerContext) -> Int {
        (try? context.channel.syncOptions?.getOption(ChannelOptions.bufferedWritableBytes)) ?? reservedBytes
    }

    // MARK: - reading, held back while requests wait

    public func read(context: ChannelHandlerContext) {
        if mayRead { context.read() } else { readPending = true }
    }

    /// Read on while nothing waits, or only the payload of a WRITE that has its bytes reserved.
    private var mayRead: Bool {
        if disconnectRequested || closed { return false }
        if queue.isEmpty { return true }
        return queue.count == 1 && !queue[queue.startIndex].complete && queue[queue.startIndex].reserved > 0
    }

    private func resumeReadingIfAllowed() {
        guard readPending, mayRead, let context else { return }
        readPending = false
        context.read()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case let .request(r):
            // proto.md: nothing may follow NBD_CMD_DISC; whatever does is ignored.
            guard !disconnectRequested else { receivingPayload = r.hasPayload; return }
            summary.requests += 1
            if r.hasPayload {
                let unwanted = r.type != NBD.Command.write.rawValue || r.length > UInt64(NBD.maximumPayload)
                queue.append(Pending(request: r, payload: nil, complete: false, discardPayload: unwanted))
                receivingPayload = true
                armRequestTimer(context, r)
            } else {
                queue.append(Pending(request: r, payload: nil, complete: true))
            }
        case var .payload(part):
            guard receivingPayload, !disconnectRequested, !queue.isEmpty else { return }
            let last = queue.index(before: queue.endIndex)
            if !queue[last].discardPayload {
                if incoming == nil {
                    // Full size only once reserved; before that it grows with what arrives.
                    let capacity = queue[last].reserved > 0 ? Int(queue[last].request.length) : part.readableBytes
                    incoming = context.channel.allocator.buffer(capacity: capacity)
                }
                incoming!.writeBuffer(&part)
            }
        case .payloadEnd:
            requestTimer?.cancel()
            requestTimer = nil
            guard receivingPayload else { return }
            receivingPayload = false
            let payload = incoming
            incoming = nil
            guard !disconnectRequested, !queue.isEmpty else { return }
            let last = queue.index(before: queue.endIndex)
            queue[last].payload = payload
            queue[last].complete = true
        }
        pump()
    }

    /// A WRITE's payload must arrive within `requestTimeout` (slowloris); time during which this
    /// side holds back reads does not count against the client.
    private func armRequestTimer(_ context: ChannelHandlerContext, _ r: NBDRequest) {
        let limit = limits.requestTimeout
        requestTimer = context.eventLoop.scheduleTask(in: limit) { [self] in
            guard receivingPayload, !closed else { return }
            if !mayRead { return armRequestTimer(context, r) }
            close(context, because: "a \(r.length)-byte write's payload did not arrive within \(NBDPeer.seconds(limit))")
        }
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
        context.fireChannelReadComplete()
    }

    // MARK: - starting requests

    private func cost(_ p: Pending) -> Int {
        let data: Int
        switch p.request.command {
        case .read?: data = p.request.length <= UInt64(NBD.maximumPayload) ? Int(p.request.length) : 0
        case .write?: data = p.discardPayload ? 0 : Int(p.request.length)
        case .blockStatus?:
            // The reply's descriptors, 8 bytes each: at most one per byte asked about, one with
            // REQ_ONE, never more than a chunk holds.
            let one = p.request.flags & NBD.CommandFlag.reqOne != 0
            // Extended descriptors are 16 bytes.
            let size = session.extendedHeaders ? 16 : 8
            data = size * (one ? 1 : min(Int(clamping: p.request.length), NBD.maximumBlockStatusDescriptors))
        default: data = 0
        }
        return data + NBDServerLimits.requestOverheadBytes
    }

    /// Starts queued requests while the limits allow; re-entrant calls (a reply written inside
    /// completes another) just ask for one more round.
    private func pump() {
        guard let context, !closed else { return }
        if pumping { pumpAgain = true; return }
        pumping = true
        defer { pumping = false }
        var started = false
        repeat {
            pumpAgain = false
            while !queue.isEmpty {
                let head = queue.startIndex
                guard !ioBusy, context.channel.isWritable, inFlight < limits.maxRequestsInFlight else { break }
                if queue[head].reserved == 0 {
                    let bytes = cost(queue[head])
                    guard reservedBytes + bytes <= limits.maxConnectionBytes else { break }
                    // The budget wakes us on our own event loop; the handler itself is not
                    // Sendable, so it crosses the @Sendable wake-up only loop-bound and weakly.
                    let wake = NIOLoopBound(WeakTransmissionHandler(self), eventLoop: context.eventLoop)
                    let reserved = configuration.budget.reserve(bytes, for: self, on: context.eventLoop) {
                        wake.value.handler?.pump()
                    }
                    guard reserved else { break }
                    reservedBytes += bytes
                    queue[head].reserved = bytes
                    // A payload still arriving grows to its full size at once, in place (`incoming`
                    // has one owner, so what already arrived is moved at most once). Only a payload
                    // that is kept has a buffer, and its length is at most the maximum payload; an
                    // effect length may be 64 bits.
                    if receivingPayload && head == queue.index(before: queue.endIndex) && incoming != nil {
                        incoming!.reserveCapacity(Int(queue[head].request.length))
                    }
                }
                guard queue[head].complete else { break }
                let p = queue.removeFirst()
                start(context, p)
                started = true
            }
        } while pumpAgain && !closed
        if started { context.flush() }
        resumeReadingIfAllowed()
        if disconnectRequested && inFlight == 0 && queue.isEmpty && !ioBusy && !closed { context.close(promise: nil) }
    }

    private func start(_ context: ChannelHandlerContext, _ p: Pending) {
        let r = p.request
        guard let command = r.command, command != .cache else {
            return sendError(context, p, .einval, "command \(r.type) is not supported")
        }
        if command == .disconnect {
            disconnectRequested = true
            release(p.reserved)
            return
        }
        // proto.md, "Command flags": with NBD_FLAG_SEND_FUA advertised (always), FUA "is valid for
        // all commands ... the server MUST accept all commands with this bit set (even by
        // ignoring the bit)"; a READ, FLUSH or BLOCK_STATUS writes nothing, so it changes nothing.
        var allowed = NBD.CommandFlag.fua
        switch command {
        case .read: if session.replyStyle.hasChunks { allowed |= NBD.CommandFlag.dontFragment }
        case .write: if session.extendedHeaders { allowed |= NBD.CommandFlag.payloadLength }
        case .writeZeroes: allowed |= NBD.CommandFlag.noHole
        case .blockStatus: allowed |= NBD.CommandFlag.reqOne
        default: break
        }
        if r.flags & ~allowed != 0 {
            return sendError(context, p, .einval, "flags 0x\(String(r.flags, radix: 16)) not valid for \(command.name)")
        }
        if command == .write && p.discardPayload {
            return sendError(context, p, .einval, "write of \(r.length) bytes exceeds the \(NBD.maximumPayload)-byte maximum")
        }
        if command == .read && r.length > UInt64(NBD.maximumPayload) {
            return sendError(context, p, .einval, "read of \(r.length) bytes exceeds the \(NBD.maximumPayload)-byte maximum")
        }
        // proto.md, NBD_CMD_FLUSH: "length and offset are reserved, and MUST be set to all-zero";
        // anything else is a malformed request (EINVAL), never a number to convert.
        if command == .flush && (r.offset != 0 || r.length != 0) {
            return sendError(context, p, .einval, "flush with offset \(r.offset) and length \(r.length) (both must be 0)")
        }
        // proto.md: a client MUST NOT send NBD_CMD_BLOCK_STATUS without a selected context, and
        // "servers SHOULD reply with NBD_EINVAL". A 0-byte query is unspecified ("SHOULD NOT
        // disconnect"): EINVAL too, as there is no descriptor of length 0 to answer with.
        if command == .blockStatus && session.allocationContextID == nil {
            return sendError(context, p, .einval, "block status without a metadata context (select base:allocation with NBD_OPT_SET_META_CONTEXT)")
        }
        if command == .blockStatus && r.length == 0 {
            return sendError(context, p, .einval, "block status of 0 bytes")
        }
        let size = UInt64(backend.size)
        let (end, overflow) = r.offset.addingReportingOverflow(r.length)
        if overflow || end > size {
            let e: NBD.WireError = (command == .write || command == .writeZeroes) ? .enospc : .einval
            return sendError(context, p, e, "\(command.name) at \(r.offset)+\(r.length) is beyond the end of the export (\(size) bytes)")
        }
        if backend.isReadOnly && (command == .write || command == .writeZeroes || command == .trim) {
            return sendError(context, p, .eperm, "the export is read-only")
        }
        // In range of an Int64-sized export now: end <= size <= Int64.max.
        guard let offset = Int64(exactly: r.offset), let length = Int64(exactly: r.length) else {
            return sendError(context, p, .einval, "\(command.name) at \(r.offset)+\(r.length) is out of range")
        }
        let fua = r.flags & NBD.CommandFlag.fua != 0
        if command == .blockStatus {
            // An lseek per run, no data: inline on the loop, like page-cache reads. Nothing of
            // this connection runs meanwhile (pump starts nothing while `ioBusy`), so it sees
            // every write answered before it.
            // A disk behind a peer (an NBD upstream) answers over the network: off the loop,
            // one request of the connection at a time as below.
            if let pool = configuration.ioThreads, backend.capabilities.callsWaitOnPeer {
                let backend = self.backend
                ioBusy = true
                pool.runIfActive(eventLoop: context.eventLoop) { backend.blockStatus(offset: offset, length: length) }
                    .whenComplete { [self] result in
                        ioBusy = false
                        switch result {
                        case let .success(status): finish(context, p, command, status.completion, extents: status.extents)
                        case .failure: finish(context, p, command, BlockCompletion(errno: ESHUTDOWN))
                        }
                        context.flush()
                        pump()
                    }
                return
            }
            let result = backend.blockStatus(offset: offset, length: length)
            return finish(context, p, command, result.completion, extents: result.extents)
        }
        let backend = self.backend, allocator = context.channel.allocator, payload = p.payload
        let io: @Sendable () -> (BlockCompletion, ByteBuffer?) = {
            switch command {
            case .read:
                var data = allocator.buffer(capacity: Int(r.length))
                var completion = BlockCompletion.ok
                if r.length > 0 {
                    data.writeWithUnsafeMutableBytes(minimumWritableBytes: Int(r.length)) { ptr in
                        completion = backend.read(offset: offset, into: UnsafeMutableRawBufferPointer(rebasing: ptr[0..<Int(r.length)]))
                        return Int(r.length)
                    }
                }
                return (completion, data)
            case .write:
                let completion = (payload ?? ByteBuffer()).withUnsafeReadableBytes { backend.write(offset: offset, from: $0, fua: fua) }
                return (completion, nil)
            case .writeZeroes:
                let mayUnmap = r.flags & NBD.CommandFlag.noHole == 0
                return (backend.writeZeroes(offset: offset, length: length, mayUnmap: mayUnmap, fua: fua), nil)
            case .trim:
                var completion = backend.discard(offset: offset, length: length)
                if completion.succeeded && fua { completion = backend.flush() }
                return (completion, nil)
            case .flush:
                return (backend.flush(), nil)
            case .disconnect, .cache, .blockStatus:
                return (BlockCompletion(errno: EINVAL), nil)   // answered above
            }
        }
        let done = { [self] (completion: BlockCompletion, data: ByteBuffer?) in
            finish(context, p, command, completion, data: data)
        }
        // What reaches the disk (FLUSH, and FUA requests, which flush) runs off the
        // event loop, so that a slow fsync holds up only this client, not the other connections of
        // its loop. Page-cache reads and writes stay on the loop: the thread hop costs more than
        // they do (release build, 4 KiB reads at depth 1: 11 000/s through the pool, 25 800/s inline).
        // A disk behind a peer (an NBD upstream) waits for a network round trip on every call:
        // all of them run off the loop.
        let reachesDisk = backend.capabilities.callsWaitOnPeer || command == .flush || (fua && command != .read)
        guard let pool = configuration.ioThreads, reachesDisk else {
            let (completion, data) = io()
            return done(completion, data)
        }
        // One request of a connection at a time: requests are applied in the order they came, as
        // when they ran inline, so a FLUSH covers every write answered before it (proto.md) and a
        // READ after a WRITE sees it.
        ioBusy = true
        pool.runIfActive(eventLoop: context.eventLoop, io).whenComplete { [self] result in
            ioBusy = false
            switch result {
            case let .success((completion, data)): done(completion, data)
            case .failure: done(BlockCompletion(errno: ESHUTDOWN), nil)   // the pool is shutting down
            }
            context.flush()
            pump()
        }
    }

    private func finish(_ context: ChannelHandlerContext, _ p: Pending, _ command: NBD.Command,
                        _ completion: BlockCompletion, data: ByteBuffer? = nil, extents: [BlockExtent] = []) {
        let r = p.request
        let completion = connectionRates.apply(completion, now: FaultRuleEngine.monotonicSeconds())
        var wire: NBD.WireError?
        if completion.errno != 0 { wire = NBD.WireError(hostErrno: completion.errno) }
        for fault in completion.faults {
            observer?.faultInjected(fault, client: client, command: command.name,
                                    wireError: fault.errno == 0 ? nil : NBD.WireError(hostErrno: fault.errno))
        }
        let message: NBDServerMessage
        var tally = ReplyTally.nothing
        if let wire {
            tally = .error
            let why = completion.faults.first.map { "injected by \($0.rule.location)" } ?? "I/O error on the image"
            message = errorMessage(r, wire, why)
        } else if command == .blockStatus {
            let descriptors = NBDBlockDescriptor.descriptors(for: extents, requested: r.length,
                                                             one: r.flags & NBD.CommandFlag.reqOne != 0)
            if descriptors.isEmpty {
                tally = .error
                message = errorMessage(r, .eio, "the backend reported no allocation for \(r.offset)+\(r.length)")
            } else {
                tally = .blockStatus
                message = session.replyStyle.blockStatus(r, contextID: session.allocationContextID ?? 0, descriptors)
            }
        } else if command == .read, let data {
            tally = .read(r.length)
            message = session.replyStyle.read(r, data)
        } else {
            if command == .write { tally = .write(r.length) }
            message = session.replyStyle.done(r)
        }
        inFlight += 1
        if completion.delayNanoseconds > 0 || completion.stall != nil {
            holdReply(context, message, reserved: p.reserved, tally: tally, completion: completion)
        } else {
            writeReply(context, message, reserved: p.reserved, tally: tally)
        }
    }

    /// Sends `message` after the completion's delay, then, for a [stall], once it is released:
    /// the event loop looks again every `FaultStall.pollNanoseconds` (a scheduled task, never a
    /// wait, so the loop's other connections and this one's other requests go on). Tracked in
    /// `delayed` so that closing the connection cancels it and gives its bytes back, and a change
    /// of rules shortens it.
    private func holdReply(_ context: ChannelHandlerContext, _ message: NBDServerMessage, reserved: Int, tally: ReplyTally,
                           completion: BlockCompletion) {
        let id = nextDelayID
        nextDelayID += 1
        let now = NIODeadline.now()
        let wait = TimeAmount.nanoseconds(Int64(min(completion.delayNanoseconds, UInt64(Int64.max))))
        delayed[id] = HeldReply(task: sendHeld(context, id, after: wait), message: message, reserved: reserved, tally: tally,
                                faults: completion.faults, heldAt: now, sendAt: now + wait, stall: completion.stall)
    }

    /// Scheduled `after` from now on the loop's own clock (`heldAt`/`sendAt` are only for
    /// working out by how much a change of rules shortens a wait).
    private func sendHeld(_ context: ChannelHandlerContext, _ id: Int, after wait: TimeAmount) -> Scheduled<Void> {
        context.eventLoop.scheduleTask(in: wait) { [self] in
            guard let held = delayed[id] else { return }
            if let stall = held.stall, !stall.isReleased() {
                delayed[id]?.task = sendHeld(context, id, after: .nanoseconds(Int64(FaultStall.pollNanoseconds)))
                return
            }
            delayed.removeValue(forKey: id)
            writeReply(context, held.message, reserved: held.reserved, tally: held.tally)
            context.flush()
        }
    }

    /// The rules changed (`nbd control`, SIGHUP): each held reply now waits, from when it was
    /// held, only for what the rules in force still ask of it (`BlockBackend.owedDelay`), so a
    /// removed [rate] or [delay] lets its waiters go at once and a shortened delay shortens
    /// their wait; a removed [stall] lets its reply go. No wait gets longer. `tally` counts the
    /// replies let go now and those that still wait, less.
    private func rulesChanged(_ context: ChannelHandlerContext, _ tally: NBDRulesChanged.Tally) {
        let backend = self.backend
        let now = NIODeadline.now()
        var released = 0, shortened = 0
        defer { tally.add(released: released, shortened: shortened) }
        for (id, held) in delayed {
            var next = held
            if let stall = held.stall, !backend.holdsStall(stall) { next.stall = nil }
            let owed = ConnectionRatePipes.delay(of: held.faults) { backend.owedDelay($0) }
            next.sendAt = min(held.sendAt, held.heldAt + .nanoseconds(Int64(min(owed, UInt64(Int64.max)))))
            guard next.sendAt < held.sendAt || (held.stall != nil && next.stall == nil) else { continue }
            held.task.cancel()
            if next.stall == nil && next.sendAt <= now { released += 1 } else { shortened += 1 }
            next.task = sendHeld(context, id, after: next.sendAt > now ? next.sendAt - now : .zero)
            delayed[id] = next
        }
    }

    /// Writes a reply; its bytes stay reserved until they are on the wire (or the write failed),
    /// and only then does it count in the summary.
    private func writeReply(_ context: ChannelHandlerContext, _ message: NBDServerMessage, reserved: Int, tally: ReplyTally) {
        let promise = context.eventLoop.makePromise(of: Void.self)
        promise.futureResult.whenComplete { [self] result in
            inFlight -= 1
            release(reserved)
            switch (result, tally) {
            case (.failure, _): summary.unsentReplies += 1
            case (.success, .nothing): break
            case let (.success, .read(bytes)): summary.reads += 1; summary.bytesRead += bytes
            case let (.success, .write(bytes)): summary.writes += 1; summary.bytesWritten += bytes
            case (.success, .blockStatus): summary.blockStatusQueries += 1
            case (.success, .error): summary.errorReplies += 1
            }
            pump()
        }
        context.write(wrapOutboundOut(message), promise: promise)
    }

    private func errorMessage(_ r: NBDRequest, _ error: NBD.WireError, _ text: String) -> NBDServerMessage {
        session.replyStyle.error(r, error, text)
    }

    private func sendError(_ context: ChannelHandlerContext, _ p: Pending, _ error: NBD.WireError, _ text: String) {
        inFlight += 1
        writeReply(context, errorMessage(p.request, error, text), reserved: p.reserved, tally: .error)
    }
}

/// A weak reference to a transmission handler, for wake-ups that must not keep it alive.
final class WeakTransmissionHandler {
    weak var handler: NBDTransmissionHandler?
    init(_ handler: NBDTransmissionHandler) { self.handler = handler }
}
