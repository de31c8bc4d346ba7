import NIOCore
import NIOEmbedded

/// What the byte-level suites (EmbeddedChannel) read off an NBD connection.
enum NBDTestWire {
    /// Everything the server has written so far.
    static func outbound(_ ch: EmbeddedChannel) throws -> [UInt8] {
        var all: [UInt8] = []
        while var b = try ch.readOutbound(as: ByteBuffer.self) { all += b.readBytes(length: b.readableBytes)! }
        return all
    }

    /// One option reply (proto.md "Option reply types"): magic, option, type, length, data.
    struct OptionReply: Equatable { var option: UInt32; var type: UInt32; var data: [UInt8] }

    static func optionReplies(_ b: [UInt8]) -> [OptionReply] {
        func u32(_ i: Int) -> UInt32 { b[i..<(i + 4)].reduce(0) { $0 << 8 | UInt32($1) } }
        var out: [OptionReply] = [], i = 0
        while i + 20 <= b.count {
            let n = Int(u32(i + 16))
            out.append(OptionReply(option: u32(i + 8), type: u32(i + 12), data: Array(b[(i + 20)..<min(b.count, i + 20 + n)])))
            i += 20 + n
        }
        return out
    }
}
