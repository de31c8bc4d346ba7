import Foundation
import KVMScope
import KVMScopeNBD
import NIOCore
import NIOEmbedded

/// Invariant failures abort, so libFuzzer keeps the input as a crash.
enum FuzzNBDCheck {
    static func require(_ condition: @autoclosure () -> Bool, _ what: @autoclosure () -> String) {
        if !condition() {
            FileHandle.standardError.write(Data("fuzz invariant broken: \(what())\n".utf8))
            abort()
        }
    }
}

/// The NBD server's codecs and handler on an EmbeddedChannel, exactly the pipeline
/// NBDServer.start builds per connection, over a 64 KiB in-memory disk.
public enum NBDFuzz {
    static let diskSize = 64 * 1024

    /// Client bytes that negotiate fixed newstyle, structured replies, the base:allocation
    /// metadata context and GO for "disk" (NBD protocol.md, "Fixed newstyle negotiation",
    /// "Metadata querying"), so that block status requests are served.
    public static let handshake: [UInt8] = {
        var b: [UInt8] = []
        func be<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.bigEndian) { b += $0 } }
        be(UInt32(NBD.ClientFlag.fixedNewstyle | NBD.ClientFlag.noZeroes))
        be(NBD.optionMagic); be(NBD.Option.structuredReply.rawValue); be(UInt32(0))
        let name = Array("disk".utf8), context = Array(NBD.MetaContext.allocation.utf8)
        be(NBD.optionMagic); be(NBD.Option.setMetaContext.rawValue); be(UInt32(4 + name.count + 4 + 4 + context.count))
        be(UInt32(name.count)); b += name; be(UInt32(1)); be(UInt32(context.count)); b += context
        be(NBD.optionMagic); be(NBD.Option.go.rawValue); be(UInt32(4 + name.count + 2))
        be(UInt32(name.count)); b += name; be(UInt16(0))
        return b
    }()

    /// The same with NBD_OPT_EXTENDED_HEADERS instead of structured replies: 32-byte requests
    /// and extended reply chunks in transmission.
    public static let extendedHandshake: [UInt8] = {
        var b: [UInt8] = []
        func be<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.bigEndian) { b += $0 } }
        be(UInt32(NBD.ClientFlag.fixedNewstyle | NBD.ClientFlag.noZeroes))
        be(NBD.optionMagic); be(NBD.Option.extendedHeaders.rawValue); be(UInt32(0))
        b += handshake.dropFirst(4 + 16)   // SET_META_CONTEXT and GO, as above
        return b
    }()

    /// What the server answers to `handshake` (or `extendedHandshake`) alone.
    static let handshakeReplyBytes = converse([handshake[...]]).output.count
    static let extendedHandshakeReplyBytes = converse([extendedHandshake[...]]).output.count

    /// Feeds `chunks` to a fresh connection; returns everything the server wrote and whether
    /// it closed the connection.
    static func converse(_ chunks: [ArraySlice<UInt8>]) -> (output: [UInt8], closed: Bool) {
        let channel = EmbeddedChannel()
        var output: [UInt8] = []
        func drain() {
            while var b = try? channel.readOutbound(as: ByteBuffer.self) {
                output += b.readBytes(length: b.readableBytes) ?? []
            }
        }
        do {
            try channel.pipeline.syncOperations.configureNBDServerPipeline(
                configuration: NBDServerConfiguration(export: NBDExport(name: "disk", backend: MemoryBackend(size: diskSize))))
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        } catch {
            FuzzNBDCheck.require(false, "cannot set up the NBD pipeline: \(error)")
        }
        for chunk in chunks where channel.isActive {
            do { try channel.writeInbound(ByteBuffer(bytes: chunk)) } catch {
                // A protocol violation reaches errorCaught, which closes: the embedded channel
                // rethrows it here. Either way the connection must be closed now.
            }
            channel.pipeline.fireChannelReadComplete()
            channel.embeddedEventLoop.run()
            drain()
        }
        let closed = !channel.isActive
        _ = try? channel.finish()
        drain()
        return (output, closed)
    }

    /// Splits `body` into pieces whose sizes come from `sizes` (cycled; 0 → the rest), so the
    /// decoder sees messages cut at every possible place.
    static func chunks(_ body: ArraySlice<UInt8>, sizes: UInt8) -> [ArraySlice<UInt8>] {
        let step = Int(sizes)
        guard step > 0 else { return [body] }
        var out: [ArraySlice<UInt8>] = []
        var i = body.startIndex
        while i < body.endIndex {
            let end = min(i + step, body.endIndex)
            out.append(body[i..<end])
            i = end
        }
        return out
    }

    /// Handshake target: the whole conversation from the client's first byte. The first
    /// input byte sets the chunking. The output must not depend on how the bytes arrive.
    public static func runHandshake(_ bytes: [UInt8]) {
        guard let sizes = bytes.first else { return }
        let body = bytes.dropFirst()
        let chunked = converse(chunks(body, sizes: sizes))
        let whole = converse([body])
        // A protocol violation closes the connection; replies written but not yet flushed when
        // the violation arrives in the same read are dropped, so bytes split finer can only get
        // more of the answer out first. Otherwise the answer must not depend on the split.
        if whole.closed {
            FuzzNBDCheck.require(chunked.closed && chunked.output.starts(with: whole.output),
                                 "NBD: the server's answer depends on how the client's bytes were split (closed): whole \(hex(whole.output[...])), split \(hex(chunked.output[...])) closed \(chunked.closed)")
        } else {
            FuzzNBDCheck.require(chunked.output == whole.output && !chunked.closed,
                                 "NBD: the server's answer depends on how the client's bytes were split")
        }
        let greeting = 8 + 8 + 2
        FuzzNBDCheck.require(whole.output.count >= greeting, "NBD: no greeting")
    }

    /// Requests target: after a fixed handshake (structured replies on), the input is the
    /// transmission phase. Every request gets exactly one reply chunk, in order, with its
    /// cookie; requests are framed here independently of the decoder to check that.
    public static func runRequests(_ bytes: [UInt8]) {
        guard let sizes = bytes.first else { return }
        if sizes & 0x80 != 0 { return runExtendedRequests(bytes) }
        let body = bytes.dropFirst()
        let setup = handshakeReplyBytes
        var pieces = [handshake[...]]
        pieces += chunks(body, sizes: sizes)
        let (output, closed) = converse(pieces)
        let expected = expectedCookies(body)
        FuzzNBDCheck.require(expected.requests.count == expected.cookies.count, "NBD fuzz: request bookkeeping")
        var replies: [UInt64] = []
        var simple: [Bool] = []
        var i = setup
        // Replies: structured chunks (always DONE: one chunk per request), or simple replies,
        // which the spec allows for every command but READ once structured replies are on
        // (NBD doc/proto.md "Structured reply chunk message types"); those carry no data.
        while i + 16 <= output.count {
            let magic = be(UInt32.self, output, i)
            if magic == NBD.simpleReplyMagic {
                replies.append(be(UInt64.self, output, i + 8))
                simple.append(true)
                i += 16
                continue
            }
            FuzzNBDCheck.require(magic == NBD.structuredReplyMagic && i + 20 <= output.count,
                                 "NBD: reply \(replies.count) has magic 0x\(String(magic, radix: 16))")
            let flags = be(UInt16.self, output, i + 4)
            FuzzNBDCheck.require(flags == NBD.replyFlagDone, "NBD: reply chunk without DONE")
            let type = be(UInt16.self, output, i + 6)
            let length = Int(be(UInt32.self, output, i + 16))
            if type == NBD.replyTypeBlockStatus {
                let k = replies.count
                FuzzNBDCheck.require(k < expected.requests.count && expected.requests[k].type == NBD.Command.blockStatus.rawValue,
                                     "NBD: a block status chunk answers request \(k), which is not a block status query")
                if k < expected.requests.count { checkBlockStatus(output, at: i + 20, length: length, request: expected.requests[k]) }
            }
            replies.append(be(UInt64.self, output, i + 8))
            simple.append(false)
            i += 20 + length
        }
        FuzzNBDCheck.require(i == output.count, "NBD: reply stream does not end on a chunk boundary: \(hex(output[setup...]))")
        // After a bad magic the connection closes; replies not flushed by then are dropped
        // (see runHandshake), so only those may be missing.
        if expected.badMagic {
            FuzzNBDCheck.require(expected.cookies.starts(with: replies),
                                 "NBD: replies \(replies.count) are not the first of \(expected.cookies.count) requests")
        } else {
            FuzzNBDCheck.require(replies == expected.cookies,
                                 "NBD: replies \(replies.count) for \(expected.cookies.count) requests (or out of order)")
        }
        for (k, isRead) in expected.isRead.prefix(replies.count).enumerated() {
            FuzzNBDCheck.require(!(isRead && simple[k]), "NBD: a simple reply to a READ after structured replies were negotiated")
        }
        if expected.stopsConnection { FuzzNBDCheck.require(closed, "NBD: a bad magic or disconnect left the connection open") }
    }

    /// Requests target with extended headers (a first byte with bit 7 set; the rest of it sets
    /// the chunking): every request gets exactly one extended chunk, DONE, in order, echoing
    /// its cookie and offset; there are no simple or structured replies at all.
    static func runExtendedRequests(_ bytes: [UInt8]) {
        let body = bytes.dropFirst()
        let setup = extendedHandshakeReplyBytes
        var pieces = [extendedHandshake[...]]
        pieces += chunks(body, sizes: bytes[0] & 0x7f)
        let (output, closed) = converse(pieces)
        let expected = expectedExtendedRequests(body)
        var replies: [(cookie: UInt64, offset: UInt64)] = []
        var i = setup
        while i + 32 <= output.count {
            let magic = be(UInt32.self, output, i)
            FuzzNBDCheck.require(magic == NBD.extendedReplyMagic, "NBD extended: reply \(replies.count) has magic 0x\(String(magic, radix: 16))")
            FuzzNBDCheck.require(be(UInt16.self, output, i + 4) == NBD.replyFlagDone, "NBD extended: reply chunk without DONE")
            let type = be(UInt16.self, output, i + 6)
            let length = be(UInt64.self, output, i + 24)
            FuzzNBDCheck.require(length <= UInt64(output.count - i - 32), "NBD extended: chunk length \(length) past the output")
            guard length <= UInt64(output.count - i - 32) else { return }
            let k = replies.count
            FuzzNBDCheck.require(type != NBD.replyTypeBlockStatus, "NBD extended: a compact block status chunk")
            if type == NBD.replyTypeBlockStatusExtended {
                FuzzNBDCheck.require(k < expected.requests.count && expected.requests[k].type == NBD.Command.blockStatus.rawValue,
                                     "NBD extended: a block status chunk answers request \(k), which is not a block status query")
                if k < expected.requests.count { checkExtendedBlockStatus(output, at: i + 32, length: Int(length), request: expected.requests[k]) }
            }
            replies.append((be(UInt64.self, output, i + 8), be(UInt64.self, output, i + 16)))
            i += 32 + Int(length)
        }
        FuzzNBDCheck.require(i == output.count, "NBD extended: reply stream does not end on a chunk boundary: \(hex(output[setup...]))")
        let got = replies.map(\.cookie), want = expected.requests.map(\.cookie)
        if expected.closes {
            FuzzNBDCheck.require(want.starts(with: got), "NBD extended: replies \(got.count) are not the first of \(want.count) requests")
            FuzzNBDCheck.require(closed, "NBD extended: a violation or disconnect left the connection open")
        } else {
            FuzzNBDCheck.require(got == want, "NBD extended: replies \(got.count) for \(want.count) requests (or out of order)")
        }
        for (r, q) in zip(replies, expected.requests) {
            FuzzNBDCheck.require(r.offset == q.offset, "NBD extended: reply offset \(r.offset) for a request at \(q.offset)")
        }
    }

    /// Extended framing (proto.md extension-ext-header): 32-byte headers, a payload when
    /// PAYLOAD_LEN is set or the request is a WRITE (as QEMU reads one), a payload over the
    /// maximum or a compact header closes. Requests up to the first such or NBD_CMD_DISC.
    static func expectedExtendedRequests(_ body: ArraySlice<UInt8>)
        -> (requests: [(type: UInt16, flags: UInt16, cookie: UInt64, offset: UInt64, length: UInt64)], closes: Bool) {
        let b = Array(body)
        var requests: [(type: UInt16, flags: UInt16, cookie: UInt64, offset: UInt64, length: UInt64)] = []
        var i = 0
        while i + 4 <= b.count {
            guard be(UInt32.self, b, i) == NBD.extendedRequestMagic else { return (requests, true) }
            guard i + 32 <= b.count else { break }
            let flags = be(UInt16.self, b, i + 4), type = be(UInt16.self, b, i + 6)
            let cookie = be(UInt64.self, b, i + 8), offset = be(UInt64.self, b, i + 16), length = be(UInt64.self, b, i + 24)
            if type == NBD.Command.disconnect.rawValue { return (requests, true) }
            var payload = 0
            if flags & NBD.CommandFlag.payloadLength != 0 || type == NBD.Command.write.rawValue {
                if length > UInt64(NBD.maximumPayload) { return (requests, true) }
                // Answered once its whole payload has arrived; replies go out in order.
                guard UInt64(b.count - i - 32) >= length else { break }
                payload = Int(length)
            }
            requests.append((type, flags, cookie, offset, length))
            i += 32 + payload
        }
        return (requests, false)
    }

    /// NBD_REPLY_TYPE_BLOCK_STATUS_EXT: context id, a count that matches the chunk, descriptors
    /// of nonzero 64-bit length with the status's high half zero (base:allocation), none past
    /// the request, one with REQ_ONE.
    static func checkExtendedBlockStatus(_ output: [UInt8], at start: Int, length: Int,
                                         request: (type: UInt16, flags: UInt16, cookie: UInt64, offset: UInt64, length: UInt64)) {
        FuzzNBDCheck.require(length >= 24 && (length - 8) % 16 == 0, "NBD extended: block status chunk of \(length) bytes")
        guard length >= 24 else { return }
        FuzzNBDCheck.require(be(UInt32.self, output, start) == NBD.MetaContext.allocationID, "NBD extended: block status with another context id")
        let count = (length - 8) / 16
        FuzzNBDCheck.require(Int(be(UInt32.self, output, start + 4)) == count, "NBD extended: descriptor count does not match the chunk")
        if request.flags & NBD.CommandFlag.reqOne != 0 { FuzzNBDCheck.require(count == 1, "NBD extended: \(count) descriptors with REQ_ONE") }
        var sum: UInt64 = 0
        for d in 0..<count {
            let n = be(UInt64.self, output, start + 8 + 16 * d), status = be(UInt64.self, output, start + 16 + 16 * d)
            FuzzNBDCheck.require(n > 0, "NBD extended: a block status descriptor of length 0")
            FuzzNBDCheck.require(status & ~3 == 0, "NBD extended: base:allocation status 0x\(String(status, radix: 16))")
            let (s2, o) = sum.addingReportingOverflow(n)
            FuzzNBDCheck.require(!o, "NBD extended: descriptor lengths overflow")
            sum = s2
        }
        FuzzNBDCheck.require(sum <= request.length, "NBD extended: block status descriptors cover \(sum) of \(request.length) bytes")
    }

    /// proto.md, NBD_REPLY_TYPE_BLOCK_STATUS: the context id SET_META_CONTEXT gave, one or more
    /// descriptors of nonzero length, exactly one with REQ_ONE, none past the request (kvmscope
    /// never answers beyond it), at most the documented number.
    static func checkBlockStatus(_ output: [UInt8], at start: Int, length: Int, request: (type: UInt16, flags: UInt16, length: UInt32)) {
        FuzzNBDCheck.require(length >= 12 && (length - 4) % 8 == 0 && start + length <= output.count,
                             "NBD: block status chunk of \(length) bytes")
        guard length >= 12, start + length <= output.count else { return }
        FuzzNBDCheck.require(be(UInt32.self, output, start) == NBD.MetaContext.allocationID, "NBD: block status with another context id")
        let count = (length - 4) / 8
        FuzzNBDCheck.require(count <= NBD.maximumBlockStatusDescriptors, "NBD: \(count) descriptors in one chunk")
        if request.flags & NBD.CommandFlag.reqOne != 0 { FuzzNBDCheck.require(count == 1, "NBD: \(count) descriptors with REQ_ONE") }
        var sum: UInt64 = 0
        for d in 0..<count {
            let n = be(UInt32.self, output, start + 4 + 8 * d)
            let flags = be(UInt32.self, output, start + 8 + 8 * d)
            FuzzNBDCheck.require(n > 0, "NBD: a block status descriptor of length 0")
            FuzzNBDCheck.require(flags & ~3 == 0, "NBD: base:allocation flags 0x\(String(flags, radix: 16))")
            sum += UInt64(n)
        }
        FuzzNBDCheck.require(sum <= UInt64(request.length), "NBD: block status descriptors cover \(sum) of \(request.length) bytes")
    }

    static func hex(_ b: ArraySlice<UInt8>) -> String { b.prefix(256).map { String(format: "%02x", $0) }.joined() }

    static func be<T: FixedWidthInteger>(_: T.Type, _ b: [UInt8], _ at: Int) -> T {
        var v: T = 0
        for k in 0..<MemoryLayout<T>.size { v = v << 8 | T(b[at + k]) }
        return v
    }

    /// The cookies of the requests the server must answer: whole requests up to the first
    /// bad magic or NBD_CMD_DISC (requests.md: "the server MUST NOT reply to DISC").
    static func expectedCookies(_ body: ArraySlice<UInt8>)
        -> (cookies: [UInt64], isRead: [Bool], requests: [(type: UInt16, flags: UInt16, length: UInt32)], stopsConnection: Bool, badMagic: Bool) {
        let b = Array(body)
        var cookies: [UInt64] = []
        var isRead: [Bool] = []
        var requests: [(type: UInt16, flags: UInt16, length: UInt32)] = []
        var i = 0
        while i + 28 <= b.count {
            guard be(UInt32.self, b, i) == NBD.requestMagic else { return (cookies, isRead, requests, true, true) }
            let type = be(UInt16.self, b, i + 6)
            let flags = be(UInt16.self, b, i + 4)
            let cookie = be(UInt64.self, b, i + 8)
            let length = Int(be(UInt32.self, b, i + 24))
            if type == NBD.Command.disconnect.rawValue { return (cookies, isRead, requests, true, false) }
            if type == NBD.Command.write.rawValue {
                // Answered once its whole payload has arrived (EINVAL after skipping it when
                // over NBD.maximumPayload); replies go out in request order, so nothing after
                // an unfinished WRITE is answered either.
                guard i + 28 + length <= b.count else { break }
                i += length
            }
            cookies.append(cookie)
            isRead.append(type == NBD.Command.read.rawValue)
            requests.append((type, flags, UInt32(length)))
            i += 28
        }
        return (cookies, isRead, requests, false, false)
    }
}
