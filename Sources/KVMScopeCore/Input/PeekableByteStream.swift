/// Reads the first bytes of a stream for format detection and then replays them, so that
/// detection works on pipes and stdin (which cannot seek back) as well as on files.
public final class PeekableByteStream: ByteStream {
    /// The stream being replayed (to look through to what it is, e.g. a compressed file).
    public let base: ByteStream
    private var head: [UInt8] = []
    private var headOffset = 0
    public var name: String { base.name }
    public var knownSize: Int64? { base.knownSize }

    public init(_ base: ByteStream) { self.base = base }

    /// Up to `count` bytes from the start of the stream (fewer at end of input). Reads once.
    public func peek(_ count: Int = InputSample.size) throws -> [UInt8] {
        while head.count < count {
            var chunk = [UInt8](repeating: 0, count: count - head.count)
            let n = try chunk.withUnsafeMutableBytes { try base.read(into: $0) }
            if n == 0 { break }
            head += chunk[0..<n]
        }
        return Array(head.prefix(count))
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        if headOffset < head.count {
            let n = min(buffer.count, head.count - headOffset)
            head.withUnsafeBytes { src in
                buffer.baseAddress!.copyMemory(from: src.baseAddress! + headOffset, byteCount: n)
            }
            headOffset += n
            if headOffset == head.count { head = []; headOffset = 0 }
            return n
        }
        return try base.read(into: buffer)
    }

}
