import Foundation
import KVMScopeFaults

/// An NBD client (fixed newstyle, proto.md) on one connection with blocking sockets and one
/// reader thread: callers on any thread send a request and wait for its reply, which the reader
/// matches to them by cookie, so requests from several threads are pipelined on the wire.
///
/// Why blocking and threads, not NIO: `BlockBackend` and `LowerDisk` calls are synchronous, and
/// `kvmscope io` and the NBD server's I/O thread pool (`NBDTransmissionHandler` runs a backend
/// whose `capabilities.callsWaitOnPeer` is set off its event loops, on `NIOThreadPool`) call them
/// from threads that may block. A NIO client would have to be waited for from those threads
/// anyway, and waiting on a NIO future from an event loop of the same group deadlocks; a
/// synchronous call on the server's event loop would stall every client of that loop for a
/// network round trip. So the server never calls this on an event loop, and this never needs one.
///
/// Never a hang: every socket wait is sliced (`NBDClientSocket`), and when a request has had no
/// answer (no byte received) for `timeout` seconds, or the upstream closes or breaks the
/// protocol, the connection is declared dead: one log line, every waiting request and every later
/// one fails with EIO (what QEMU's NBD client returns when it loses its server).
public final class NBDClient: @unchecked Sendable {
    /// What the upstream said about its export during the handshake.
    public struct Export: Sendable, Equatable {
        public var size: UInt64
        public var transmissionFlags: UInt16
        public var minimumBlockSize: UInt32 = 1
        public var preferredBlockSize: UInt32 = 4096
        /// The largest payload to send or ask for (the upstream's maximum, at most 32 MiB).
        public var maximumPayload: UInt32 = NBD.maximumPayload
        public var structuredReplies = false
        /// NBD_OPT_EXTENDED_HEADERS was acknowledged: 32-byte request and reply headers with
        /// 64-bit lengths both ways (proto.md "Request message", "Extended reply chunk message").
        public var extendedHeaders = false
        /// The id of `base:allocation` when the upstream agreed to it.
        public var allocationContext: UInt32?

        public func has(_ flag: UInt16) -> Bool { transmissionFlags & flag != 0 }
    }

    public let uri: NBDURI
    public let export: Export
    public let timeout: Double
    private let socket: NBDClientTransport
    private let log: @Sendable (String) -> Void
    /// What the death line says happens next ("every request to it now fails with EIO").
    private let afterDeath: String
    private let sendLock = NSLock()
    private let lock = NSLock()
    private var pending: [UInt64: Slot] = [:]
    private var nextCookie: UInt64 = 1
    private var failure: String?
    private var closing = false
    private var lastProgress = Date()
    private let slots: DispatchSemaphore
    private let readerDone = DispatchSemaphore(value: 0)

    /// One request waiting for its reply. `receiving` is set while the reader fills `buffer`:
    /// such a slot is completed only by the reader, so its buffer is never written after the
    /// caller returned.
    final class Slot {
        let command: NBD.Command
        let offset: UInt64
        let length: UInt64
        let buffer: UnsafeMutableRawBufferPointer?
        let done = DispatchSemaphore(value: 0)
        var errno: Int32 = 0
        var covered: UInt64 = 0
        var extents: [BlockExtent] = []
        var receiving = false
        var finished = false

        init(command: NBD.Command, offset: UInt64, length: UInt64, buffer: UnsafeMutableRawBufferPointer?) {
            self.command = command
            self.offset = offset
            self.length = length
            self.buffer = buffer
        }
    }

    /// Connects and negotiates (within `timeout` seconds); throws `NBDClientError` with one line.
    /// - maxInFlight: requests on the wire at once (callers beyond it wait their turn).
    /// - afterDeath: what the log line on losing the upstream says happens next.
    public init(uri: NBDURI, timeout: Double = 30, maxInFlight: Int = 64, afterDeath: String = "every request to it now fails with EIO",
                log: @escaping @Sendable (String) -> Void = { _ in }) throws {
        self.uri = uri
        self.timeout = timeout
        self.log = log
        self.afterDeath = afterDeath
        self.slots = DispatchSemaphore(value: max(1, maxInFlight))
        // Every failure names the URI: "nbd+unix:///?socket=/s: cannot connect to /s: ...".
        do {
            let tls = try uri.tls.map { _ in try NBDClientTLS.make(uri) }
            let plain = try NBDClientSocket.connect(uri.transport, timeout: timeout)
            var handshake = NBDClientHandshake(socket: plain, exportName: uri.exportName, deadline: Date().addingTimeInterval(timeout),
                                               tls: tls)
            export = try handshake.run()
            socket = handshake.socket
        } catch let e as NBDClientError {
            throw NBDClientError("\(uri): \(e.message)")
        }
        let thread = Thread { [self] in readLoop(); readerDone.signal() }
        thread.name = "kvmscope-nbd-upstream"
        thread.start()
    }

    deinit { close() }

    /// Why the connection is dead (nil while it works).
    public var deadBecause: String? {
        lock.lock(); defer { lock.unlock() }
        return failure
    }

    /// Sends NBD_CMD_DISC and closes the connection (requests still waiting fail with EIO).
    public func close() {
        lock.lock()
        let alive = failure == nil && !closing
        closing = true
        lock.unlock()
        guard alive else { return }
        var header: [UInt8] = []
        Self.appendRequest(&header, extended: export.extendedHeaders, flags: 0, command: .disconnect, cookie: 0, offset: 0, length: 0)
        sendLock.lock()
        _ = header.withUnsafeBytes { socket.sendAll($0, stillWaiting: { false }) }
        sendLock.unlock()
        fail("closed", quiet: true)
        readerDone.wait()
        readerDone.signal()
    }

    // MARK: - requests

    /// Sends one request and waits for its reply: errno 0 or the upstream's error as a host
    /// errno; EIO when the connection is (or goes) dead. `payload` for WRITE, `into` for READ
    /// (exactly `length` bytes), extents for BLOCK_STATUS. A length above 32 bits goes out only
    /// with extended headers; without them a BLOCK_STATUS length (a hint, proto.md) is cut to
    /// below 2 GiB, and any other is EINVAL.
    public func perform(_ command: NBD.Command, flags: UInt16 = 0, offset: UInt64, length: UInt64,
                        payload: UnsafeRawBufferPointer? = nil, into buffer: UnsafeMutableRawBufferPointer? = nil)
        -> (errno: Int32, extents: [BlockExtent]) {
        var length = length
        // QEMU's client asks at most INT_MAX aligned down to the block size in a compact block
        // status request (block/nbd.c nbd_client_co_block_status), not 4 GiB - 1: nbdkit 1.32
        // aborts on a count near 2^32 (protocol.c extents_to_block_descriptors: "Assertion
        // `e.length <= length' failed", seen with the memory plugin on an 8 GiB export).
        let compactStatusLength = UInt64(1 << 31) - UInt64(export.minimumBlockSize)   // a power of two, setBlockSizes checked
        if !export.extendedHeaders && command == .blockStatus && length > compactStatusLength {
            length = compactStatusLength
        }
        if !export.extendedHeaders && length > UInt64(UInt32.max) { return (EINVAL, []) }
        // The reader fills `buffer` from replies and reports runs as Int64: the sizes must hold.
        guard length <= UInt64(Int64.max),
              command != .read || buffer.map({ UInt64($0.count) == length }) == true,
              command != .write || UInt64(payload?.count ?? 0) == length else { return (EINVAL, []) }
        slots.wait()
        defer { slots.signal() }
        let slot = Slot(command: command, offset: offset, length: length, buffer: buffer)
        lock.lock()
        if failure != nil || closing { lock.unlock(); return (EIO, []) }
        let cookie = nextCookie
        nextCookie &+= 1
        if pending.isEmpty { lastProgress = Date() }
        pending[cookie] = slot
        lock.unlock()

        var header: [UInt8] = []
        header.reserveCapacity(32)
        Self.appendRequest(&header, extended: export.extendedHeaders, flags: flags, command: command, cookie: cookie,
                           offset: offset, length: length)
        sendLock.lock()
        var e = header.withUnsafeBytes { socket.sendAll($0, stillWaiting: sendMayWait) }
        if e == 0, let payload, payload.count > 0 { e = socket.sendAll(payload, stillWaiting: sendMayWait) }
        sendLock.unlock()
        if e != 0 {
            fail(e == ETIMEDOUT ? "did not take a \(command.name) request within \(Int(timeout)) s"
                               : "sending a \(command.name) request failed: \(String(cString: strerror(e)))")
        }
        slot.done.wait()
        return (slot.errno, slot.extents)
    }

    private func sendMayWait() -> Bool {
        lock.lock(); defer { lock.unlock() }
        return failure == nil && Date().timeIntervalSince(lastProgress) < timeout
    }

    /// A request header (proto.md "Request message"): 28 bytes compact, 32 extended. With
    /// extended headers a WRITE "MUST use the flag NBD_CMD_FLAG_PAYLOAD_LEN" (its length is then
    /// the payload's); no other command here sends a payload. `length` fits 32 bits when compact
    /// (`perform` saw to it).
    static func appendRequest(_ b: inout [UInt8], extended: Bool, flags: UInt16, command: NBD.Command, cookie: UInt64,
                              offset: UInt64, length: UInt64) {
        BigEndian.append(extended ? NBD.extendedRequestMagic : NBD.requestMagic, to: &b)
        BigEndian.append(extended && command == .write ? flags | NBD.CommandFlag.payloadLength : flags, to: &b)
        BigEndian.append(command.rawValue, to: &b)
        BigEndian.append(cookie, to: &b)
        BigEndian.append(offset, to: &b)
        if extended { BigEndian.append(length, to: &b) } else { BigEndian.append(UInt32(truncatingIfNeeded: length), to: &b) }
    }

    /// Declares the connection dead: every request not being received into fails with EIO, the
    /// socket is shut down (which ends the one being received, and the reader).
    private func fail(_ reason: String, quiet: Bool = false) {
        lock.lock()
        guard failure == nil else { lock.unlock(); return }
        failure = reason
        var woken: [Slot] = []
        for (cookie, slot) in pending where !slot.receiving {
            pending[cookie] = nil
            woken.append(slot)
        }
        let wasClosing = closing
        lock.unlock()
        if !quiet && !wasClosing {
            log("upstream \(uri): \(reason); \(afterDeath)")
        }
        socket.shutdownBoth()
        for slot in woken { finish(slot, errno: EIO) }
    }

    private func finish(_ slot: Slot, errno: Int32) {
        guard !slot.finished else { return }
        slot.finished = true
        if slot.errno == 0 { slot.errno = errno }
        slot.done.signal()
    }

    // MARK: - replies (the reader thread)

    /// The reader waits for the next reply without limit while nothing is pending, and for at
    /// most `timeout` seconds without a byte while something is.
    private func readerMayWait() -> Bool {
        lock.lock(); defer { lock.unlock() }
        if failure != nil { return false }
        return pending.isEmpty || Date().timeIntervalSince(lastProgress) < timeout
    }

    private func progressed() {
        lock.lock(); lastProgress = Date(); lock.unlock()
    }

    private func receive(_ count: Int) throws -> [UInt8] {
        var b = [UInt8](repeating: 0, count: count)
        let e = b.withUnsafeMutableBytes { socket.receive(into: $0, stillWaiting: readerMayWait) }
        if e != 0 { throw ReadFailure(errno: e) }
        progressed()
        return b
    }

    private struct ReadFailure: Error { let errno: Int32 }
    private struct Violation: Error { let message: String }

    private func readLoop() {
        do {
            while true { try readReply() }
        } catch let e as ReadFailure {
            let why: String
            switch e.errno {
            case ESHUTDOWN: why = "closed the connection"
            case ETIMEDOUT: why = "sent no reply for \(Int(timeout)) s"
            default: why = "connection failed: \(String(cString: strerror(e.errno)))"
            }
            fail(why)
        } catch let v as Violation {
            fail("protocol error: \(v.message)")
        } catch {
            fail("\(error)")
        }
        // Whatever is left (a slot that was being received when the socket went down).
        lock.lock()
        let left = Array(pending.values)
        pending.removeAll()
        lock.unlock()
        for slot in left { finish(slot, errno: EIO) }
    }

    private func slot(_ cookie: UInt64) throws -> Slot {
        lock.lock(); defer { lock.unlock() }
        guard let s = pending[cookie] else { throw Violation(message: "a reply for cookie \(cookie), which no request has") }
        s.receiving = true
        return s
    }

    private func complete(_ cookie: UInt64, _ slot: Slot, errno: Int32) {
        lock.lock()
        pending[cookie] = nil
        slot.receiving = false
        lock.unlock()
        finish(slot, errno: errno)
    }

    /// Receives `count` bytes into the slot's buffer at `at` (checked by the caller).
    private func receiveData(_ slot: Slot, at: Int, count: Int) throws {
        guard count > 0 else { return }
        let target = UnsafeMutableRawBufferPointer(rebasing: slot.buffer![at..<at + count])
        let e = socket.receive(into: target, stillWaiting: readerMayWait)
        if e != 0 { throw ReadFailure(errno: e) }
        progressed()
    }

    private func readReply() throws {
        if export.extendedHeaders { return try readExtendedReply() }
        let magicBytes = try receive(4)
        let magic = BigEndian.read(UInt32.self, magicBytes, at: 0)
        if magic == NBD.simpleReplyMagic {
            let h = try receive(12)
            let error = BigEndian.read(UInt32.self, h, at: 0)
            let cookie = BigEndian.read(UInt64.self, h, at: 4)
            let s = try slot(cookie)
            if s.command == .read && error == 0 {
                try receiveData(s, at: 0, count: Int(s.length))
            }
            if s.command == .blockStatus && error == 0 {
                throw Violation(message: "a simple reply to NBD_CMD_BLOCK_STATUS")
            }
            return complete(cookie, s, errno: Self.hostErrno(error))
        }
        if magic == NBD.extendedReplyMagic {
            throw Violation(message: "an extended reply header, but NBD_OPT_EXTENDED_HEADERS was not negotiated")
        }
        guard magic == NBD.structuredReplyMagic else {
            throw Violation(message: "reply magic 0x\(String(magic, radix: 16))")
        }
        let h = try receive(16)
        let cookie = BigEndian.read(UInt64.self, h, at: 4)
        try chunk(flags: BigEndian.read(UInt16.self, h, at: 0), type: BigEndian.read(UInt16.self, h, at: 2), cookie: cookie,
                  slot: try slot(cookie), length: UInt64(BigEndian.read(UInt32.self, h, at: 12)))
    }

    /// proto.md "Extended reply chunk message": every reply is a 32-byte chunk header ("the
    /// server MUST NOT use simple replies"), whose offset "MUST match the offset of the client's
    /// request" and whose length is 64 bits (checked per chunk type before anything is read).
    private func readExtendedReply() throws {
        // The magic first: a shorter simple reply must be named at once, not waited on for the
        // 32 bytes an extended header has.
        let magic = BigEndian.read(UInt32.self, try receive(4), at: 0)
        guard magic == NBD.extendedReplyMagic else {
            let what = magic == NBD.simpleReplyMagic ? "a simple reply" : magic == NBD.structuredReplyMagic ? "a structured reply"
                : "reply magic 0x\(String(magic, radix: 16))"
            throw Violation(message: "\(what) after extended headers were negotiated")
        }
        let h = try receive(28)
        let cookie = BigEndian.read(UInt64.self, h, at: 4)
        let s = try slot(cookie)
        let offset = BigEndian.read(UInt64.self, h, at: 12)
        guard offset == s.offset else {
            throw Violation(message: "a reply for cookie \(cookie) at offset \(offset), but its \(s.command.name) request was at \(s.offset)")
        }
        try chunk(flags: BigEndian.read(UInt16.self, h, at: 0), type: BigEndian.read(UInt16.self, h, at: 2), cookie: cookie,
                  slot: s, length: BigEndian.read(UInt64.self, h, at: 20))
    }

    /// One structured or extended reply chunk (proto.md "Structured reply types"); `length` is
    /// the header's, bounded here for each type before any byte of the payload is read.
    private func chunk(flags: UInt16, type: UInt16, cookie: UInt64, slot s: Slot, length: UInt64) throws {
        let extended = export.extendedHeaders
        switch type {
        case NBD.ReplyType.none:
            guard length == 0 else { throw Violation(message: "NBD_REPLY_TYPE_NONE with \(length) bytes") }
        case NBD.ReplyType.offsetData:
            guard s.command == .read, length > 8, length - 8 <= s.length else {
                throw Violation(message: "NBD_REPLY_TYPE_OFFSET_DATA of \(length) bytes for \(s.command.name) of \(s.length)")
            }
            let offset = BigEndian.read(UInt64.self, try receive(8), at: 0)
            let count = length - 8
            guard offset >= s.offset, offset - s.offset <= s.length, count <= s.length - (offset - s.offset) else {
                throw Violation(message: "read data at \(offset)+\(count) outside the request \(s.offset)+\(s.length)")
            }
            try receiveData(s, at: Int(offset - s.offset), count: Int(count))
            s.covered += count
        case NBDClient.replyTypeOffsetHole:
            guard s.command == .read, length == 12 else { throw Violation(message: "NBD_REPLY_TYPE_OFFSET_HOLE of \(length) bytes") }
            let b = try receive(12)
            let offset = BigEndian.read(UInt64.self, b, at: 0)
            let count = UInt64(BigEndian.read(UInt32.self, b, at: 8))
            guard offset >= s.offset, offset - s.offset <= s.length, count <= s.length - (offset - s.offset) else {
                throw Violation(message: "hole at \(offset)+\(count) outside the request \(s.offset)+\(s.length)")
            }
            let at = Int(offset - s.offset)
            memset(s.buffer!.baseAddress! + at, 0, Int(count))
            s.covered += count
        case NBDClient.replyTypeBlockStatus:
            // proto.md: "a server may only use this type if extended headers were not negotiated".
            guard !extended else { throw Violation(message: "NBD_REPLY_TYPE_BLOCK_STATUS after extended headers were negotiated") }
            guard s.command == .blockStatus, length >= 12, (length - 4) % 8 == 0, length <= NBDClient.maximumStatusReply else {
                throw Violation(message: "NBD_REPLY_TYPE_BLOCK_STATUS of \(length) bytes for \(s.command.name)")
            }
            let b = try receive(Int(length))
            let context = BigEndian.read(UInt32.self, b, at: 0)
            if context == export.allocationContext && s.extents.isEmpty {
                s.extents = Self.extents(b, requested: s.length)
                if s.extents.isEmpty { s.errno = EIO }
            }
        case NBDClient.replyTypeBlockStatusExtended:
            // proto.md: "MUST NOT be used unless extended headers were negotiated"; *length* is
            // 8 + 16 per descriptor, and the descriptor count field says how many.
            guard extended else { throw Violation(message: "NBD_REPLY_TYPE_BLOCK_STATUS_EXT without extended headers") }
            guard s.command == .blockStatus, length >= 24, (length - 8) % 16 == 0, length <= NBDClient.maximumStatusReplyExtended else {
                throw Violation(message: "NBD_REPLY_TYPE_BLOCK_STATUS_EXT of \(length) bytes for \(s.command.name)")
            }
            let b = try receive(Int(length))
            let context = BigEndian.read(UInt32.self, b, at: 0)
            let count = BigEndian.read(UInt32.self, b, at: 4)
            guard UInt64(count) == (length - 8) / 16 else {
                throw Violation(message: "NBD_REPLY_TYPE_BLOCK_STATUS_EXT of \(length) bytes says \(count) descriptors")
            }
            if context == export.allocationContext && s.extents.isEmpty {
                s.extents = try Self.extendedExtents(b, requested: s.length)
                if s.extents.isEmpty { s.errno = EIO }
            }
        default:
            guard type & (1 << 15) != 0 else {
                throw Violation(message: "unknown reply chunk type \(type)")
            }
            // NBD_REPLY_TYPE_ERROR, _ERROR_OFFSET and error types this client does not know:
            // all begin with the error value (proto.md "Structured reply types").
            guard length >= 4, length <= UInt64(NBDClient.maximumErrorReply) else { throw Violation(message: "error chunk of \(length) bytes") }
            let b = try receive(Int(length))
            let error = BigEndian.read(UInt32.self, b, at: 0)
            if s.errno == 0 { s.errno = error == 0 ? EIO : Self.hostErrno(error) }
        }
        guard flags & NBD.replyFlagDone != 0 else {
            lock.lock(); s.receiving = false; lock.unlock()
            return
        }
        if s.errno == 0 && s.command == .read && s.covered != s.length {
            s.errno = EIO   // proto.md: a successful read reply covers the whole request
        }
        if s.errno == 0 && s.command == .blockStatus && s.extents.isEmpty { s.errno = EIO }
        complete(cookie, s, errno: 0)
    }

    static let replyTypeOffsetHole: UInt16 = 2
    static let replyTypeBlockStatus: UInt16 = 5
    static let replyTypeBlockStatusExtended: UInt16 = 6
    /// A block-status chunk for one context: 4 + 8 bytes per run; more than 128 Ki runs is not a
    /// real server (QEMU's sends at most 128 Ki, nbd/server.c NBD_MAX_BLOCK_STATUS_EXTENTS).
    static let maximumStatusReply: UInt64 = 4 + 8 * (128 << 10)
    /// The same 128 Ki runs as NBD_REPLY_TYPE_BLOCK_STATUS_EXT: 8 + 16 bytes per run.
    static let maximumStatusReplyExtended: UInt64 = 8 + 16 * (128 << 10)
    static let maximumErrorReply: UInt32 = 64 << 10

    /// base:allocation descriptors as runs, cut at the requested length (the last one may go
    /// past it) and stopped at a zero-length one (proto.md: lengths are non-zero).
    static func extents(_ b: [UInt8], requested: UInt64) -> [BlockExtent] {
        var out: [BlockExtent] = []
        var total: UInt64 = 0
        var at = 4
        while at + 8 <= b.count && total < requested {
            let length = UInt64(BigEndian.read(UInt32.self, b, at: at))
            let flags = BigEndian.read(UInt32.self, b, at: at + 4)
            at += 8
            guard length > 0 else { break }
            let run = min(length, requested - total)
            out.append(BlockExtent(length: Int64(run), isHole: flags & 1 != 0, readsAsZeroes: flags & 2 != 0))
            total += run
        }
        return out
    }

    /// NBD_REPLY_TYPE_BLOCK_STATUS_EXT's 64-bit (length, status) descriptors after the context
    /// id and count, as `extents` does. base:allocation is a 32-bit context: proto.md says the
    /// high half of its status "MUST be all zeroes", so other bits are a broken server.
    /// `requested` is at most Int64.max (`perform`), so every run fits an Int64.
    static func extendedExtents(_ b: [UInt8], requested: UInt64) throws -> [BlockExtent] {
        var out: [BlockExtent] = []
        var total: UInt64 = 0
        var at = 8
        while at + 16 <= b.count && total < requested {
            let length = BigEndian.read(UInt64.self, b, at: at)
            let status = BigEndian.read(UInt64.self, b, at: at + 8)
            at += 16
            guard status >> 32 == 0 else {
                throw Violation(message: "base:allocation status 0x\(String(status, radix: 16)) has bits above 32")
            }
            guard length > 0 else { break }
            let run = min(length, requested - total)
            out.append(BlockExtent(length: Int64(run), isHole: status & 1 != 0, readsAsZeroes: status & 2 != 0))
            total += run
        }
        return out
    }

    /// An NBD error value as a host errno: the values proto.md defines are Linux's numbers;
    /// others are to be treated as EINVAL (proto.md "Error values").
    static func hostErrno(_ wire: UInt32) -> Int32 {
        switch wire {
        case 0: return 0
        case 1, 5, 12, 22, 28, 75, 95, 108: return Int32(wire)
        default: return EINVAL
        }
    }
}
