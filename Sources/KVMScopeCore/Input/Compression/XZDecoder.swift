import CLzma

/// xz through the system liblzma, with LZMA_CONCATENATED so that concatenated .xz streams
/// (`cat a.xz b.xz`) and stream padding read as xz -d reads them (lzma/container.h).
final class XZDecoder: StreamDecoder {
    /// xz -9 needs 65 MiB to decompress (xz(1), "Memory usage"); a file that asks for more
    /// than this was made with a custom dictionary or to exhaust memory.
    static let memoryLimit: UInt64 = 256 << 20
    private let stream: UnsafeMutablePointer<lzma_stream>
    private var ended = false

    init() throws(DecompressionProblem) {
        stream = .allocate(capacity: 1)
        stream.initialize(to: lzma_stream())   // all zero: what LZMA_STREAM_INIT spells out
        guard lzma_stream_decoder(stream, Self.memoryLimit, kvmscope_lzma_concatenated) == LZMA_OK else {
            stream.deallocate()
            throw .outOfMemory
        }
    }

    deinit {
        lzma_end(stream)
        stream.deallocate()
    }

    var atStreamBoundary: Bool { ended }

    func decode(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer,
                inputEnded: Bool) throws(DecompressionProblem) -> (consumed: Int, produced: Int) {
        if ended { return input.isEmpty ? (0, 0) : (input.count, 0) }  // LZMA_STREAM_END: only after LZMA_FINISH, at the end
        stream.pointee.next_in = input.isEmpty ? nil : input.baseAddress!.assumingMemoryBound(to: UInt8.self)
        stream.pointee.avail_in = input.count
        stream.pointee.next_out = output.baseAddress!.assumingMemoryBound(to: UInt8.self)
        stream.pointee.avail_out = output.count
        // With LZMA_CONCATENATED the decoder cannot know the last stream ended until it is told
        // the input did: LZMA_FINISH from then on.
        let ret = lzma_code(stream, inputEnded ? LZMA_FINISH : LZMA_RUN)
        let consumed = input.count - stream.pointee.avail_in
        let produced = output.count - stream.pointee.avail_out
        stream.pointee.next_in = nil
        stream.pointee.next_out = nil
        switch ret {
        case LZMA_OK, LZMA_BUF_ERROR:
            return (consumed, produced)
        case LZMA_STREAM_END:
            ended = true
            return (consumed, produced)
        case LZMA_MEMLIMIT_ERROR:
            throw .needsTooMuchMemory("more than \(Self.memoryLimit >> 20) MiB")
        case LZMA_MEM_ERROR:
            throw .outOfMemory
        case LZMA_FORMAT_ERROR:
            throw .corrupt("not the .xz format after its magic bytes")
        case LZMA_OPTIONS_ERROR:
            throw .corrupt("unsupported compression options")
        case LZMA_DATA_ERROR:
            throw .corrupt("compressed data is corrupt")
        default:
            throw .corrupt("liblzma error \(ret.rawValue)")
        }
    }
}
