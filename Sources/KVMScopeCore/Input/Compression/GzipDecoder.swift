import CZlib

/// gzip through the system zlib. A file may hold several members one after the other (RFC 1952
/// §2.2: "A gzip file consists of a series of members"; `cat a.gz b.gz`, and what logrotate's
/// copies of appended files become): each is inflated in turn, as gzip -d does. Zero bytes
/// after the last member (tape/block padding) are ignored as gzip ignores them; anything else
/// after it is an error, not silently dropped.
final class GzipDecoder: StreamDecoder {
    private let stream: UnsafeMutablePointer<z_stream>
    /// The last member ended and no new one has started.
    private var betweenMembers = false
    /// Zero padding was seen after the last member: only more zeros may follow.
    private var inPadding = false

    init() throws(DecompressionProblem) {
        // zlib keeps a pointer to its z_stream (inflateStateCheck compares it), so it must not move.
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        guard kvmscope_inflate_init_gzip(stream) == Z_OK else {
            stream.deallocate()
            throw .outOfMemory
        }
    }

    deinit {
        inflateEnd(stream)
        stream.deallocate()
    }

    var atStreamBoundary: Bool { betweenMembers }

    func decode(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer,
                inputEnded: Bool) throws(DecompressionProblem) -> (consumed: Int, produced: Int) {
        var consumed = 0
        if betweenMembers {
            let b = input.bindMemory(to: UInt8.self)
            while consumed < b.count, b[consumed] == 0 { consumed += 1; inPadding = true }
            if consumed == b.count { return (consumed, 0) }
            if inPadding { throw .trailingGarbage }
            guard b[consumed] == 0x1F else { throw .trailingGarbage }
            if b.count - consumed < 2 {
                if inputEnded { throw .trailingGarbage }
                return (consumed, 0)
            }
            guard b[consumed + 1] == 0x8B else { throw .trailingGarbage }
            guard inflateReset(stream) == Z_OK else { throw .corrupt("inflateReset failed") }
            betweenMembers = false
        }
        let inCount = min(input.count - consumed, Int(UInt32.max))
        let outCount = min(output.count, Int(UInt32.max))
        stream.pointee.next_in = inCount == 0 ? nil
            : UnsafeMutablePointer(mutating: input.baseAddress!.assumingMemoryBound(to: Bytef.self) + consumed)
        stream.pointee.avail_in = UInt32(inCount)
        stream.pointee.next_out = output.baseAddress!.assumingMemoryBound(to: Bytef.self)
        stream.pointee.avail_out = UInt32(outCount)
        let ret = inflate(stream, Z_NO_FLUSH)
        consumed += inCount - Int(stream.pointee.avail_in)
        let produced = outCount - Int(stream.pointee.avail_out)
        stream.pointee.next_in = nil
        stream.pointee.next_out = nil
        switch ret {
        case Z_OK, Z_BUF_ERROR:       // Z_BUF_ERROR: no progress possible with this input; more is needed
            return (consumed, produced)
        case Z_STREAM_END:
            betweenMembers = true
            return (consumed, produced)
        case Z_MEM_ERROR:
            throw .outOfMemory
        case Z_NEED_DICT:
            throw .corrupt("the stream needs a preset dictionary, which gzip never uses")
        default:                      // Z_DATA_ERROR, Z_STREAM_ERROR
            let why = stream.pointee.msg.map { String(cString: $0) } ?? "zlib error \(ret)"
            throw .corrupt(why)
        }
    }
}
