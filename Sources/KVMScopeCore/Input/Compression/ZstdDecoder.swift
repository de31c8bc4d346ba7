import CZstd

/// zstd through the system libzstd. ZSTD_decompressStream reads frame after frame (concatenated
/// files, skippable frames); its window is capped at libzstd's default limit, 2^27 = 128 MiB
/// (ZSTD_WINDOWLOG_LIMIT_DEFAULT in zstd.h), so a frame that asks for more is refused, not
/// allocated.
final class ZstdDecoder: StreamDecoder {
    private let context: OpaquePointer
    private var frameEnded = false

    init() throws(DecompressionProblem) {
        guard let c = ZSTD_createDCtx() else { throw .outOfMemory }
        context = c
    }

    deinit { ZSTD_freeDCtx(context) }

    var atStreamBoundary: Bool { frameEnded }

    func decode(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer,
                inputEnded: Bool) throws(DecompressionProblem) -> (consumed: Int, produced: Int) {
        var inBuffer = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: 0)
        var outBuffer = ZSTD_outBuffer(dst: output.baseAddress, size: output.count, pos: 0)
        let ret = ZSTD_decompressStream(context, &outBuffer, &inBuffer)
        if ZSTD_isError(ret) != 0 {
            let why = String(cString: ZSTD_getErrorName(ret))
            if ZSTD_getErrorCode(ret) == ZSTD_error_frameParameter_windowTooLarge {
                throw .needsTooMuchMemory(why)
            }
            if ZSTD_getErrorCode(ret) == ZSTD_error_memory_allocation { throw .outOfMemory }
            throw .corrupt(why)
        }
        // 0: a frame was completely decoded and flushed (zstd.h, ZSTD_decompressStream).
        if inBuffer.pos > 0 || outBuffer.pos > 0 { frameEnded = ret == 0 }
        return (inBuffer.pos, outBuffer.pos)
    }
}
