/// A decorator that turns a compressed stream into the bytes it holds, streaming: memory is
/// one input buffer plus the decoder's fixed state, whatever the input or output size. Readers
/// above it (line splitters, format detection) see only decompressed bytes.
public final class DecompressingByteStream: ByteStream {
    public let format: CompressionFormat
    public var name: String { base.name }
    /// Unknown: the decompressed size is not in the input's header (gzip's ISIZE is mod 2^32).
    public var knownSize: Int64? { nil }
    private let base: ByteStream
    private let decoder: any StreamDecoder
    private let input: UnsafeMutableRawBufferPointer
    private var start = 0, end = 0
    private var inputEnded = false
    private var finished = false
    /// Compressed bytes read so far (for the bench's ratio, and progress).
    public private(set) var compressedBytesRead: Int64 = 0

    public static let inputBufferSize = 256 << 10

    public init(_ base: ByteStream, format: CompressionFormat) throws {
        self.base = base
        self.format = format
        do {
            switch format {
            case .gzip: decoder = try GzipDecoder()
            case .xz: decoder = try XZDecoder()
            case .zstd: decoder = try ZstdDecoder()
            }
        } catch let problem as DecompressionProblem {
            throw KVMScopeError.badCompressedInput(path: base.name, format: format.rawValue, detail: problem.detail)
        }
        input = .allocate(byteCount: Self.inputBufferSize, alignment: 16)
    }

    deinit { input.deallocate() }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard buffer.count > 0, !finished else { return 0 }
        do {
            return try decodeSome(into: buffer)
        } catch let problem as DecompressionProblem {
            throw KVMScopeError.badCompressedInput(path: base.name, format: format.rawValue, detail: problem.detail)
        }
    }

    private func decodeSome(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        while true {
            let (consumed, produced) = try decoder.decode(
                UnsafeRawBufferPointer(rebasing: input[start..<end]), into: buffer, inputEnded: inputEnded)
            start += consumed
            if produced > 0 { return produced }
            if start == end {
                if inputEnded {
                    guard decoder.atStreamBoundary else { throw DecompressionProblem.truncated }
                    finished = true
                    return 0
                }
                start = 0
                end = 0
                try refill()
            } else if consumed == 0 {
                // The decoder needs more bytes than are buffered (a gzip magic split by a read).
                if inputEnded { throw decoder.atStreamBoundary ? DecompressionProblem.trailingGarbage : .truncated }
                let pending = end - start
                if start > 0 { input.baseAddress!.copyMemory(from: input.baseAddress! + start, byteCount: pending) }
                start = 0
                end = pending
                guard end < input.count else { throw DecompressionProblem.corrupt("the decoder made no progress") }
                try refill()
            }
        }
    }

    private func refill() throws {
        let n = try base.read(into: UnsafeMutableRawBufferPointer(rebasing: input[end...]))
        if n == 0 { inputEnded = true } else { end += n; compressedBytesRead += Int64(n) }
    }
}
