import CZlib
import CZstd

/// One-shot decompression of a block whose decompressed size is known in advance, for file
/// formats that compress in self-contained chunks (trace-cmd's v7 `trace.dat`: every
/// compressed section and every chunk of CPU data is one zlib stream or one zstd frame, with
/// its compressed and decompressed sizes stored before it — trace-cmd's lib/trace-cmd
/// compress-zlib.c calls zlib's `uncompress`, compress-zstd.c libzstd's `ZSTD_decompressDCtx`).
/// The output buffer is the stated size, so a hostile size costs at most what the caller
/// allowed; a block that inflates to anything but exactly that size is refused.
public enum BlockDecompression {
    public enum Algorithm: String, Sendable {
        case zlib, zstd
    }

    public struct Failure: Error, Equatable, CustomStringConvertible {
        public let detail: String
        public var description: String { detail }
    }

    /// Decompresses `input` into exactly `size` bytes.
    public static func decompress(_ input: UnsafeRawBufferPointer, size: Int, algorithm: Algorithm) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: size)
        if size == 0 && input.isEmpty { return out }
        let produced: Int = try out.withUnsafeMutableBytes { dst in
            switch algorithm {
            case .zlib:
                var destLen = uLongf(size)
                let rc = uncompress(dst.baseAddress?.assumingMemoryBound(to: Bytef.self), &destLen,
                                    input.baseAddress?.assumingMemoryBound(to: Bytef.self), uLong(input.count))
                switch rc {
                case Z_OK: return Int(destLen)
                case Z_BUF_ERROR: throw Failure(detail: "zlib block larger than its stated \(size) bytes, or cut short")
                case Z_MEM_ERROR: throw Failure(detail: "zlib: out of memory")
                default: throw Failure(detail: "zlib block is corrupt (\(rc))")
                }
            case .zstd:
                guard let ctx = ZSTD_createDCtx() else { throw Failure(detail: "zstd: out of memory") }
                defer { ZSTD_freeDCtx(ctx) }
                let rc = ZSTD_decompressDCtx(ctx, dst.baseAddress, size, input.baseAddress, input.count)
                if ZSTD_isError(rc) != 0 {
                    throw Failure(detail: "zstd block is corrupt: " + String(cString: ZSTD_getErrorName(rc)))
                }
                return rc
            }
        }
        guard produced == size else {
            throw Failure(detail: "\(algorithm.rawValue) block holds \(produced) bytes, not its stated \(size)")
        }
        return out
    }
}
