/// Several files read as one stream, in order: a trace that `record --rotate` or the flight
/// recorder wrote in segments. Each part is opened only when the one before it ends.
public final class ConcatenatedByteStream: ByteStream {
    public let name: String
    public let knownSize: Int64?
    private var parts: [() throws -> ByteStream]
    private var current: ByteStream?

    /// `open` opens each part when its turn comes.
    public init(name: String, knownSize: Int64? = nil, parts: [() throws -> ByteStream]) {
        self.name = name; self.knownSize = knownSize; self.parts = parts
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        while true {
            if current == nil {
                guard !parts.isEmpty else { return 0 }
                current = try parts.removeFirst()()
            }
            let n = try current!.read(into: buffer)
            if n > 0 { return n }
            current = nil
        }
    }
}
