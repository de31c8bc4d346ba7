import Foundation

/// The client side of the fixed-newstyle handshake (proto.md "Fixed newstyle negotiation"):
/// NBD_OPT_EXTENDED_HEADERS, else NBD_OPT_STRUCTURED_REPLY; NBD_OPT_SET_META_CONTEXT for
/// `base:allocation` (when either is on), then NBD_OPT_GO with NBD_INFO_BLOCK_SIZE — or, from a
/// server that does not know NBD_OPT_GO (and so not extended headers), NBD_OPT_EXPORT_NAME.
struct NBDClientHandshake {
    /// The plain socket until NBD_OPT_STARTTLS is acknowledged, then TLS over it.
    private(set) var socket: NBDClientTransport
    private let plain: NBDClientSocket
    let exportName: String
    let deadline: Date
    /// From an `nbds` URI: TLS first, or no connection at all.
    let tls: NBDClientTLS?
    private var noZeroes = false

    /// Option replies are small (an info block, a context name); a longer one is not a real server.
    static let maximumReplyLength: UInt32 = 64 << 10
    /// Replies to one option (NBD_REP_META_CONTEXT or NBD_REP_INFO) before its ACK.
    static let maximumReplies = 64
    static let oldstyleMagic: UInt64 = 0x0000_4202_8186_1253
    static let repMetaContext: UInt32 = 4

    init(socket: NBDClientSocket, exportName: String, deadline: Date, tls: NBDClientTLS? = nil) {
        self.socket = socket
        plain = socket
        self.exportName = exportName
        self.deadline = deadline
        self.tls = tls
    }

    private func stillWaiting() -> Bool { Date() < deadline }

    private func receive(_ count: Int) throws -> [UInt8] {
        var b = [UInt8](repeating: 0, count: count)
        let e = b.withUnsafeMutableBytes { socket.receive(into: $0, stillWaiting: stillWaiting) }
        switch e {
        case 0: return b
        case ESHUTDOWN: throw NBDClientError("closed the connection during the handshake")
        case ETIMEDOUT: throw NBDClientError("handshake not finished in time")
        default: throw NBDClientError("handshake failed: \(String(cString: strerror(e)))")
        }
    }

    private func send(_ bytes: [UInt8]) throws {
        let e = bytes.withUnsafeBytes { socket.sendAll($0, stillWaiting: stillWaiting) }
        if e != 0 { throw NBDClientError("handshake failed: \(String(cString: strerror(e)))") }
    }

    private func sendOption(_ option: NBD.Option, _ data: [UInt8]) throws {
        var b: [UInt8] = []
        BigEndian.append(NBD.optionMagic, to: &b)
        BigEndian.append(option.rawValue, to: &b)
        BigEndian.append(UInt32(data.count), to: &b)
        try send(b + data)
    }

    /// One option reply: its type and data.
    private func receiveReply(for option: NBD.Option) throws -> (type: UInt32, data: [UInt8]) {
        let h = try receive(20)
        guard BigEndian.read(UInt64.self, h, at: 0) == NBD.optionReplyMagic else {
            throw NBDClientError("protocol error: bad option reply magic")
        }
        guard BigEndian.read(UInt32.self, h, at: 8) == option.rawValue else {
            throw NBDClientError("protocol error: a reply for option \(BigEndian.read(UInt32.self, h, at: 8)) to option \(option.rawValue)")
        }
        let type = BigEndian.read(UInt32.self, h, at: 12)
        let length = BigEndian.read(UInt32.self, h, at: 16)
        guard length <= Self.maximumReplyLength else { throw NBDClientError("protocol error: an option reply of \(length) bytes") }
        return (type, try receive(Int(length)))
    }

    private static func text(_ data: [UInt8]) -> String {
        let s = String(decoding: data.prefix(200), as: UTF8.self).filter { !$0.isNewline }
        return s.isEmpty ? "" : " (\(s))"
    }

    mutating func run() throws -> NBDClient.Export {
        let greeting = try receive(16)
        guard BigEndian.read(UInt64.self, greeting, at: 0) == NBD.nbdMagic else {
            throw NBDClientError("is not an NBD server (no NBDMAGIC greeting)")
        }
        let second = BigEndian.read(UInt64.self, greeting, at: 8)
        if second == Self.oldstyleMagic { throw NBDClientError("speaks oldstyle NBD, which kvmscope's client does not") }
        guard second == NBD.optionMagic else { throw NBDClientError("protocol error: unknown greeting") }
        let serverFlags = BigEndian.read(UInt16.self, try receive(2), at: 0)
        guard serverFlags & NBD.HandshakeFlag.fixedNewstyle != 0 else {
            throw NBDClientError("does not offer fixed newstyle negotiation, which kvmscope's client needs")
        }
        noZeroes = serverFlags & NBD.HandshakeFlag.noZeroes != 0
        var clientFlags: [UInt8] = []
        BigEndian.append(NBD.ClientFlag.fixedNewstyle | (noZeroes ? NBD.ClientFlag.noZeroes : 0), to: &clientFlags)
        try send(clientFlags)
        if let tls { try startTLS(tls) }

        var export = NBDClient.Export(size: 0, transmissionFlags: 0)
        // Extended headers first, as QEMU's client does (nbd/client.c nbd_start_negotiate): they
        // take precedence over structured replies (proto.md "NBD_OPT_EXTENDED_HEADERS"). A server
        // from before them (qemu-nbd < 8.2, nbdkit < 1.36) answers NBD_REP_ERR_UNSUP; any error
        // reply means compact headers, and structured replies are asked for instead.
        try sendOption(.extendedHeaders, [])
        let eh = try receiveReply(for: .extendedHeaders)
        guard eh.type == NBD.Reply.ack || eh.type & NBD.Reply.errorBit != 0 else {
            throw NBDClientError("protocol error: reply type \(eh.type) to NBD_OPT_EXTENDED_HEADERS")
        }
        export.extendedHeaders = eh.type == NBD.Reply.ack
        if !export.extendedHeaders {
            try sendOption(.structuredReply, [])
            let sr = try receiveReply(for: .structuredReply)
            export.structuredReplies = sr.type == NBD.Reply.ack
        }
        if export.structuredReplies || export.extendedHeaders { export.allocationContext = try negotiateAllocation() }

        var go: [UInt8] = []
        BigEndian.append(UInt32(exportName.utf8.count), to: &go)
        go += Array(exportName.utf8)
        BigEndian.append(UInt16(1), to: &go)
        BigEndian.append(NBD.Info.blockSize, to: &go)
        try sendOption(.go, go)
        var haveExport = false
        for _ in 0..<Self.maximumReplies {
            let r = try receiveReply(for: .go)
            switch r.type {
            case NBD.Reply.info:
                guard r.data.count >= 2 else { throw NBDClientError("protocol error: an empty NBD_REP_INFO") }
                let info = BigEndian.read(UInt16.self, r.data, at: 0)
                if info == NBD.Info.export {
                    guard r.data.count == 12 else { throw NBDClientError("protocol error: NBD_INFO_EXPORT of \(r.data.count) bytes") }
                    export.size = BigEndian.read(UInt64.self, r.data, at: 2)
                    export.transmissionFlags = BigEndian.read(UInt16.self, r.data, at: 10)
                    haveExport = true
                } else if info == NBD.Info.blockSize {
                    guard r.data.count == 14 else { throw NBDClientError("protocol error: NBD_INFO_BLOCK_SIZE of \(r.data.count) bytes") }
                    try export.setBlockSizes(min: BigEndian.read(UInt32.self, r.data, at: 2),
                                             preferred: BigEndian.read(UInt32.self, r.data, at: 6),
                                             max: BigEndian.read(UInt32.self, r.data, at: 10))
                }
            case NBD.Reply.ack:
                guard haveExport else { throw NBDClientError("protocol error: NBD_OPT_GO acknowledged without NBD_INFO_EXPORT") }
                return try export.validated()
            case NBD.Reply.errUnsup:
                // proto.md: a server that acknowledges extended headers "MUST also support
                // NBD_OPT_GO", and the client "MUST NOT use NBD_OPT_EXPORT_NAME" after them.
                if export.extendedHeaders {
                    throw NBDClientError("protocol error: NBD_OPT_GO refused after NBD_OPT_EXTENDED_HEADERS was acknowledged")
                }
                // A server from before NBD_OPT_GO (proto.md: fall back to NBD_OPT_EXPORT_NAME).
                return try exportName(export)
            case NBD.Reply.errUnknown:
                throw NBDClientError("has no export named '\(exportName)'\(Self.text(r.data))")
            case NBD.Reply.errTLSReqd:
                throw NBDClientError("requires TLS\(Self.text(r.data)): use nbds:// or nbds+unix:// (tls-certificates=DIR for its CA)")
            case NBD.Reply.errPolicy:
                throw NBDClientError("refused the export by policy\(Self.text(r.data))")
            default:
                if r.type & NBD.Reply.errorBit != 0 {
                    throw NBDClientError("refused NBD_OPT_GO (error 0x\(String(r.type, radix: 16)))\(Self.text(r.data))")
                }
                // An unknown non-error reply: proto.md says to ignore what is not understood.
            }
        }
        throw NBDClientError("protocol error: more than \(Self.maximumReplies) replies to NBD_OPT_GO")
    }

    /// NBD_OPT_STARTTLS as the first option (proto.md "Client-side requirements": a client that
    /// wants TLS "SHOULD send NBD_OPT_STARTTLS as the first option", so that no option is haggled
    /// in the clear, and "SHOULD terminate the session if the NBD_OPT_STARTTLS replies with an
    /// error": an `nbds` URI never goes on in the clear). After the ACK every byte is TLS.
    private mutating func startTLS(_ tls: NBDClientTLS) throws {
        try sendOption(.startTLS, [])
        let r = try receiveReply(for: .startTLS)
        guard r.type == NBD.Reply.ack else {
            let what = r.type == NBD.Reply.errUnsup ? "does not offer TLS (NBD_REP_ERR_UNSUP to NBD_OPT_STARTTLS)"
                : r.type == NBD.Reply.errPolicy ? "refused NBD_OPT_STARTTLS by policy"
                : "refused NBD_OPT_STARTTLS (reply 0x\(String(r.type, radix: 16)))"
            throw NBDClientError("\(what)\(Self.text(r.data)); the URI asks for TLS, so kvmscope does not go on in the clear")
        }
        guard r.data.isEmpty else { throw NBDClientError("protocol error: NBD_OPT_STARTTLS acknowledged with \(r.data.count) bytes of data") }
        socket = try NBDClientTLSTransport.start(over: plain, tls: tls, deadline: deadline)
    }

    /// NBD_OPT_SET_META_CONTEXT with one query: the id of base:allocation, nil if refused.
    private func negotiateAllocation() throws -> UInt32? {
        let query = Array("base:allocation".utf8)
        var d: [UInt8] = []
        BigEndian.append(UInt32(exportName.utf8.count), to: &d)
        d += Array(exportName.utf8)
        BigEndian.append(UInt32(1), to: &d)
        BigEndian.append(UInt32(query.count), to: &d)
        d += query
        try sendOption(.setMetaContext, d)
        var id: UInt32?
        for _ in 0..<Self.maximumReplies {
            let r = try receiveReply(for: .setMetaContext)
            if r.type == Self.repMetaContext, r.data.count > 4, Array(r.data[4...]) == query {
                id = BigEndian.read(UInt32.self, r.data, at: 0)
            } else if r.type == NBD.Reply.ack || r.type & NBD.Reply.errorBit != 0 {
                return r.type == NBD.Reply.ack ? id : nil
            }
        }
        throw NBDClientError("protocol error: more than \(Self.maximumReplies) replies to NBD_OPT_SET_META_CONTEXT")
    }

    private func exportName(_ partial: NBDClient.Export) throws -> NBDClient.Export {
        try sendOption(.exportName, Array(exportName.utf8))
        let b = try receive(noZeroes ? 10 : 134)
        var export = partial
        export.size = BigEndian.read(UInt64.self, b, at: 0)
        export.transmissionFlags = BigEndian.read(UInt16.self, b, at: 8)
        // Meta contexts are negotiated for NBD_OPT_GO only; with EXPORT_NAME none is active.
        export.allocationContext = nil
        return try export.validated()
    }
}

extension NBDClient.Export {
    /// proto.md "Block size constraints": powers of two, min <= 64 KiB, min <= preferred <= max.
    mutating func setBlockSizes(min: UInt32, preferred: UInt32, max: UInt32) throws {
        func pow2(_ v: UInt32) -> Bool { v != 0 && v & (v - 1) == 0 }
        guard pow2(min), min <= 65536, pow2(preferred), preferred >= min, max >= preferred || max >= min else {
            throw NBDClientError("protocol error: block sizes min \(min), preferred \(preferred), max \(max) break proto.md's rules")
        }
        minimumBlockSize = min
        preferredBlockSize = preferred
        // Whole minimum blocks, at most the 32 MiB every server must take.
        let cap = Swift.min(max, NBD.maximumPayload)
        maximumPayload = Swift.max(min, cap - cap % min)
    }

    func validated() throws -> NBDClient.Export {
        guard size <= UInt64(Int64.max) else { throw NBDClientError("announces a size of \(size) bytes, beyond what kvmscope handles") }
        var e = self
        // Without NBD_FLAG_HAS_FLAGS the other bits mean nothing (proto.md).
        if e.transmissionFlags & NBD.TransmissionFlag.hasFlags == 0 { e.transmissionFlags = 0 }
        return e
    }
}
